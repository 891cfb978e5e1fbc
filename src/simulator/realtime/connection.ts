/**
 * What both brokers' sessions share: one WebSocket, the app key it is bound to, its pings, sending with a bound on
 * what a slow client may leave unread, and ending the session in one place so every end is counted once.
 */
import type { RawData, WebSocket } from 'ws';
import type { Clock } from '../../core/clock';
import type { ApprovalKeyBook } from '../approval-keys';
import type { TokenLedger } from '../ledger';
import type { SimulatedProvider } from '../types';
import type { Market, Pace } from './market';
import type { RealtimeStatsBook } from './stats';
import type { RealtimeDropReason, RealtimeRegistration, RealtimeSessionInfo, ResolvedRealtimeOptions } from './types';

/** The book of sessions as the connections use it (session-book.ts keeps it, and lists the connections). */
export interface SessionRegistry {
  holderOf(provider: SimulatedProvider, appKey: string): RealtimeConnection | undefined;
  attributed(connection: RealtimeConnection): void;
  bound(connection: RealtimeConnection): void;
  closed(connection: RealtimeConnection): void;
}

/** What a session needs from the simulator around it. */
export interface RealtimeServices {
  clock: Clock;
  options: ResolvedRealtimeOptions;
  pace(): Pace;
  stats: RealtimeStatsBook;
  market: Market<RealtimeConnection>;
  sessions: SessionRegistry;
  approvalKeys: ApprovalKeyBook;
  ledger: TokenLedger;
}

// Close code of a normal end (RFC 6455). Simulator choice for every end the broker decides on with a close frame:
// the brokers' own codes are not published.
const NORMAL_CLOSURE = 1000;

export abstract class RealtimeConnection {
  private static lastId = 0;
  readonly id = ++RealtimeConnection.lastId;
  readonly openedAt: number;
  /** The app key this connection acts for: set when it is bound, or when a refusal names the key it asked for. */
  appKey: string | undefined;
  boundAt: number | undefined;
  closedAt: number | undefined;
  closedBy: RealtimeDropReason | undefined;
  /** Pings sent since the last answer. */
  private unanswered = 0;

  protected constructor(
    readonly provider: SimulatedProvider,
    protected readonly ws: WebSocket,
    protected readonly services: RealtimeServices,
  ) {
    this.openedAt = services.clock.now();
    ws.on('message', (data, isBinary) => {
      if (this.closedAt === undefined) this.onMessage(isBinary ? '' : rawText(data));
    });
    ws.on('close', () => this.end('client', 'drop'));
    ws.on('error', () => this.end('client', 'drop'));
  }

  get open(): boolean {
    return this.closedAt === undefined;
  }

  abstract registrations(): RealtimeRegistration[];
  protected abstract onMessage(text: string): void;
  /** The broker's keep-alive message, as text. */
  protected abstract pingMessage(): string;
  /** Called once when the session ends, to give its registrations back to the market. */
  protected abstract released(): void;

  /** One beat of the keep-alive: drop a session that left too many pings unanswered, else ping it. */
  heartbeat(): void {
    if (!this.open) return;
    if (this.unanswered >= this.services.options.pingUnansweredLimit) {
      this.end('pingpong', 'drop');
      return;
    }
    if (this.send(this.pingMessage())) {
      this.unanswered++;
      this.services.stats.add(this.appKey, 'pingsSent');
    }
  }

  protected pingAnswered(): void {
    this.unanswered = 0;
    this.services.stats.add(this.appKey, 'pingsAnswered');
  }

  /**
   * Sends if the socket is open and the client keeps up; a client this far behind is dropped, as a broker would
   * rather lose one reader than hold its frames. Returns whether the text went out.
   */
  send(text: string): boolean {
    if (!this.open || this.ws.readyState !== this.ws.OPEN) return false;
    if (this.ws.bufferedAmount > this.services.options.maxBufferedBytes) {
      this.end('slow', 'drop');
      return false;
    }
    this.ws.send(text);
    return true;
  }

  /** Binds the connection to `appKey` as its one session (the rules of who may hold a key are the caller's). */
  protected bind(appKey: string): void {
    const now = this.services.clock.now();
    this.appKey = appKey;
    this.boundAt = now;
    this.services.sessions.bound(this);
    this.services.stats.add(appKey, 'sessions');
  }

  /**
   * Ends the session once, whoever ends it: 'close' sends a normal close frame first, 'drop' cuts the socket as a
   * failed network or a broker that stops answering would.
   */
  end(reason: RealtimeDropReason, how: 'close' | 'drop'): void {
    if (!this.open) return;
    this.closedAt = this.services.clock.now();
    this.closedBy = reason;
    this.released();
    this.services.sessions.closed(this);
    this.services.stats.closed(this.appKey, reason);
    if (how === 'close') this.ws.close(NORMAL_CLOSURE);
    else this.ws.terminate();
  }

  info(): RealtimeSessionInfo {
    const info: RealtimeSessionInfo = { id: this.id, provider: this.provider, openedAt: this.openedAt, registrations: this.registrations() };
    if (this.appKey !== undefined) info.appKey = this.appKey;
    if (this.boundAt !== undefined) info.boundAt = this.boundAt;
    if (this.closedAt !== undefined) info.closedAt = this.closedAt;
    if (this.closedBy !== undefined) info.closedBy = this.closedBy;
    return info;
  }
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8');
}

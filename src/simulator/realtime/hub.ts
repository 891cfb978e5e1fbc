/**
 * The simulated brokers' WebSockets, hooked onto the simulator's HTTP server (`upgrade`): KIS at `/tryitout` and
 * `/tryitout/{TR_ID}`, Kiwoom at `/api/dostk/websocket`. It owns the market's pump (data frames for every stream
 * somebody registered) and the keep-alive beat, both on the simulator's clock, and the control a test needs: the
 * frame rate, a fill, killing a key's session, what was seen.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Clock } from '../../core/clock';
import type { ApprovalKeyBook } from '../approval-keys';
import type { TokenLedger } from '../ledger';
import { encryptRecord } from './cipher';
import type { RealtimeConnection, RealtimeServices } from './connection';
import { kisDataFrame } from './kis-messages';
import { kisLayout, kisRecord } from './kis-records';
import { KisSession } from './kis-session';
import { kiwoomReal } from './kiwoom-messages';
import { kiwoomRealType } from './kiwoom-records';
import { KiwoomSession } from './kiwoom-session';
import { Market, type Pace, type Stream } from './market';
import { checkFrameRate, resolveRealtimeOptions } from './options';
import { SessionBook, type SessionFilter } from './session-book';
import { RealtimeStatsBook } from './stats';
import { Ticker } from './ticker';
import type { RealtimeOptions, RealtimeSessionInfo, RealtimeStats, ResolvedRealtimeOptions } from './types';

const KIS_PATH = /^\/tryitout(?:\/[A-Za-z0-9]+)?\/?$/;
const KIWOOM_PATH = '/api/dostk/websocket';
// Client messages are a few hundred bytes; simulator choice: anything above this is cut off by the library.
const MAX_CLIENT_MESSAGE_BYTES = 64 * 1024;
const FILL_TR_IDS = ['H0STCNI0', 'H0STCNI9'] as const;

interface RealtimeDependencies {
  clock: Clock;
  approvalKeys: ApprovalKeyBook;
  ledger: TokenLedger;
}

export class RealtimeSimulator {
  private readonly options: ResolvedRealtimeOptions;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CLIENT_MESSAGE_BYTES });
  private readonly statsBook = new RealtimeStatsBook();
  private readonly sessions: SessionBook;
  private readonly market = new Market<RealtimeConnection>();
  private readonly services: RealtimeServices;
  private readonly pump: Ticker;
  private readonly keepAlive: Ticker;
  private pace: Pace;

  constructor(
    private readonly deps: RealtimeDependencies,
    options: RealtimeOptions = {},
  ) {
    this.options = resolveRealtimeOptions(options);
    this.pace = { framesPerSecond: this.options.framesPerSecond, recordsPerFrame: this.options.recordsPerFrame };
    this.sessions = new SessionBook(this.statsBook, this.options.reconnectSpacingMs);
    this.services = {
      clock: deps.clock,
      options: this.options,
      pace: () => ({ ...this.pace }),
      stats: this.statsBook,
      market: this.market,
      sessions: this.sessions,
      approvalKeys: deps.approvalKeys,
      ledger: deps.ledger,
    };
    this.pump = new Ticker(
      deps.clock,
      () => (this.pace.framesPerSecond > 0 ? 1000 / this.pace.framesPerSecond : Infinity),
      () => this.sendFrames(),
    );
    this.keepAlive = new Ticker(
      deps.clock,
      () => this.options.pingIntervalMs,
      () => this.ping(),
    );
  }

  /** For the HTTP server's `upgrade` event: a broker path becomes a session, anything else a 404. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const path = new URL(req.url ?? '/', 'http://simulator').pathname;
    const open = KIS_PATH.test(path) ? KisSession : path === KIWOOM_PATH ? KiwoomSession : undefined;
    if (open === undefined) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      const session = new open(ws, this.services);
      this.sessions.opened(session);
      ws.on('close', () => this.stopWhenIdle());
      this.pump.start();
      this.keepAlive.start();
    });
  }

  /** Changes the market's pace at once; 0 frames per second pauses it. */
  setFrameRate(framesPerSecond: number, recordsPerFrame = this.pace.recordsPerFrame): void {
    checkFrameRate(framesPerSecond, recordsPerFrame);
    this.pace = { framesPerSecond, recordsPerFrame };
    this.pump.wake();
  }

  /**
   * One fill for the HTS id: an encrypted H0STCNI0/H0STCNI9 notice to every session that registered it, each under
   * its own session's key. Returns how many sessions it went to.
   */
  fill(htsId: string): number {
    const now = this.deps.clock.now();
    let delivered = 0;
    for (const trId of FILL_TR_IDS) {
      const stream = this.market.find('kis', trId, htsId);
      const layout = kisLayout(trId);
      if (!stream || stream.subscribers.size === 0 || !layout) continue;
      const record = kisRecord(layout, htsId, this.market.take(stream, 1, now), now);
      for (const session of stream.subscribers) {
        if (!(session instanceof KisSession)) continue;
        if (!session.send(kisDataFrame(true, trId, 1, encryptRecord(session.cipher, record)))) continue;
        this.counted(session, 1);
        this.statsBook.add(session.appKey, 'fillNoticesSent');
        delivered++;
      }
    }
    return delivered;
  }

  /** Ends the key's open sessions as the broker would ('drop': the socket cut; 'close': a close frame). */
  kill(appKey: string, how: 'drop' | 'close' = 'drop'): number {
    const victims = this.sessions.openConnections().filter((c) => c.appKey === appKey && c.boundAt !== undefined);
    for (const session of victims) session.end('killed', how);
    return victims.length;
  }

  sessionList(filter: SessionFilter = {}): RealtimeSessionInfo[] {
    return this.sessions.list(filter);
  }

  stats(appKey?: string): RealtimeStats {
    return this.statsBook.stats(appKey);
  }

  /** Forgets everything: sessions end, streams restart at 1, counts go to 0, the pace returns to the options'. */
  reset(): void {
    this.endAll();
    this.market.clear();
    this.sessions.clear();
    this.statsBook.clear();
    this.pace = { framesPerSecond: this.options.framesPerSecond, recordsPerFrame: this.options.recordsPerFrame };
  }

  /** Ends every session (the simulator's HTTP server is closing); no timer is left behind. */
  close(): void {
    this.endAll();
    this.stopWhenIdle();
    this.wss.close();
  }

  private endAll(): void {
    for (const connection of this.sessions.openConnections()) connection.end('reset', 'drop');
  }

  private stopWhenIdle(): void {
    if (this.sessions.openConnections().length > 0) return;
    this.pump.stop();
    this.keepAlive.stop();
  }

  private ping(): void {
    for (const connection of this.sessions.openConnections()) connection.heartbeat();
  }

  private sendFrames(): void {
    const now = this.deps.clock.now();
    const count = this.pace.recordsPerFrame;
    for (const stream of [...this.market.listened()]) {
      const first = this.market.take(stream, count, now);
      const frame = stream.provider === 'kis' ? kisFrame(stream, first, count, now) : kiwoomFrame(stream, first, count, now);
      if (frame === undefined) continue;
      for (const session of [...stream.subscribers]) if (session.send(frame)) this.counted(session, count);
    }
  }

  private counted(session: RealtimeConnection, records: number): void {
    this.statsBook.add(session.appKey, 'framesSent');
    this.statsBook.add(session.appKey, 'recordsSent', records);
  }
}

function kisFrame(stream: Stream<RealtimeConnection>, first: number, count: number, now: number): string | undefined {
  const layout = kisLayout(stream.id);
  if (!layout) return undefined;
  const records = Array.from({ length: count }, (_, i) => kisRecord(layout, stream.key, first + i, now));
  return kisDataFrame(false, stream.id, count, records.join('^'));
}

function kiwoomFrame(stream: Stream<RealtimeConnection>, first: number, count: number, now: number): string | undefined {
  const type = kiwoomRealType(stream.id);
  if (!type) return undefined;
  const entries = Array.from({ length: count }, (_, i) => ({
    type: stream.id,
    name: type.name,
    item: stream.key,
    values: type.values(stream.key, first + i, now),
  }));
  return kiwoomReal(entries);
}

/**
 * What the KIS and Kiwoom sessions share: one account's upstream session, its registration book, the clients
 * attached to it, fan-out that hands each client the broker's bytes as they came (one slow client is closed by
 * its own bound, never waited for), and the counts the metrics and alerts read.
 */
import type { Clock } from '../core/clock';
import type { AccountRef, EventBus } from '../core/events';
import type { GatewayAccount } from '../gateway/types';
import type { ClientConnection } from './client';
import { RegistrationBook } from './registrations';
import type { UpstreamHooks, UpstreamPolicy, UpstreamPort } from './upstream';
import type { RelayCarriers } from './carriers';
import type { RealtimeConnectReason, RealtimeEndReason, RealtimeRefusalReason, RealtimeSnapshot } from '../core/realtime-vocabulary';

export interface SessionContext {
  account: GatewayAccount;
  clock: Clock;
  random: () => number;
  policy: UpstreamPolicy;
  bus: EventBus;
  /** Client name → HTS ids whose fill notices it may receive. */
  fills: Readonly<Record<string, readonly string[]>>;
  /**
   * With replicas (a Redis store): the session's registrations go to the replica that holds the app key's one
   * session, and its frames come back from it (relay-link.ts); alone, the session holds its own upstream.
   */
  relay?: RelayCarriers;
}

export abstract class SharedSession {
  readonly clients = new Set<ClientConnection>();
  readonly book: RegistrationBook<ClientConnection>;
  protected abstract readonly upstream: UpstreamPort;
  private framesIn = 0;
  private framesOut = 0;
  private downSince: number | null = null;
  private fullSince: number | null = null;
  private lastEnd: RealtimeEndReason | null = null;

  protected constructor(
    protected readonly ctx: SessionContext,
    limit: number,
  ) {
    this.book = new RegistrationBook(limit);
  }

  get ref(): AccountRef {
    return this.ctx.account.ref;
  }

  /** The hooks the upstream calls: state changes become events, a lost session resets the book. */
  protected upstreamHooks(): UpstreamHooks {
    return {
      ready: () => this.reconcile(),
      lost: (reason) => {
        this.book.lost();
        this.upstreamLost(reason);
      },
      state: (state, reason, detail) => {
        if (reason !== undefined && reason !== 'idle' && reason !== 'shutdown') this.lastEnd = reason;
        this.ctx.bus.emit('realtime.session', { account: this.ref, state, reason: reason ?? null, message: detail ?? null });
        this.trackDown();
      },
      connecting: (reason: RealtimeConnectReason) => this.ctx.bus.emit('realtime.connect', { account: this.ref, reason }),
    };
  }

  /** Opens the upstream session at once when `keepOpen` asks for it; otherwise waits for the first registration. */
  begin(): void {
    this.reconcile();
  }

  /** A provider's own reaction to a lost session (before the replay). */
  protected upstreamLost(_reason: RealtimeEndReason): void {}

  /** Sends what the book says is due, and tells the upstream whether anything is wanted. */
  protected reconcile(): void {
    this.upstream.setWanted(this.book.size > 0);
    if (this.upstream.isReady) this.sendWork();
    this.trackDown();
    this.trackFull();
  }

  protected abstract sendWork(): void;

  attach(connection: ClientConnection): void {
    if (this.clients.has(connection)) return;
    this.clients.add(connection);
    connection.whenClosed(() => this.detach(connection));
  }

  protected detach(connection: ClientConnection): void {
    if (!this.clients.delete(connection)) return;
    this.book.removeClient(connection);
    this.forgetClient(connection);
    this.reconcile();
  }

  /** A provider's per-client state, dropped when the client leaves. */
  protected forgetClient(_connection: ClientConnection): void {}

  /** The broker's frame, as it came, to each target; each client's own bound decides for it alone. */
  protected fanOut(data: Buffer, targets: Iterable<ClientConnection>): void {
    this.framesIn++;
    for (const client of targets) if (client.send(data)) this.framesOut++;
  }

  /** An answer of the sidecar's own (not counted as a frame of the broker's). */
  protected answer(client: ClientConnection, text: string | Buffer): void {
    client.send(text);
  }

  protected refused(client: ClientConnection, reason: RealtimeRefusalReason, code: string): void {
    this.ctx.bus.emit('realtime.refused', { account: this.ref, client: client.client ?? null, reason, code });
  }

  /** The keep-alive the broker would send, to every client: `text` in the broker's own shape. */
  keepAlive(text: string, silentAfterMs: number): void {
    const now = this.ctx.clock.monotonic();
    for (const client of [...this.clients]) {
      if (now - client.lastHeardAt > silentAfterMs) client.close('silent', 'no answer to the keep-alive');
      else client.send(text);
    }
  }

  snapshot(): RealtimeSnapshot {
    const queueBytes: Record<string, number> = {};
    for (const client of this.clients) {
      if (client.client === undefined) continue;
      queueBytes[client.client] = Math.max(queueBytes[client.client] ?? 0, client.queuedBytes);
    }
    const snapshot: RealtimeSnapshot = {
      account: this.ref,
      state: this.upstream.state,
      registrations: this.book.size,
      limit: this.book.limit,
      clients: this.clients.size,
      queueBytes,
      lastFrameAt: this.upstream.lastFrameAt ?? null,
      downSince: this.downSince,
      fullSince: this.fullSince,
      lastEnd: this.lastEnd,
      framesIn: this.framesIn,
      framesOut: this.framesOut,
    };
    this.framesIn = 0;
    this.framesOut = 0;
    return snapshot;
  }

  stop(): void {
    this.upstream.stop();
  }

  private trackDown(): void {
    const wanted = this.book.size > 0 || this.ctx.policy.keepOpen;
    if (!wanted || this.upstream.state === 'open') this.downSince = null;
    else this.downSince ??= this.ctx.clock.now();
  }

  private trackFull(): void {
    if (!this.book.full) this.fullSince = null;
    else this.fullSince ??= this.ctx.clock.now();
  }
}

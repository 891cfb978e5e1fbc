/**
 * The one WebSocket session an app key may hold at the broker, as the sidecar keeps it: opened when something is
 * wanted (or always, with keepOpen), closed `idleClose` after nothing is, and otherwise kept alive whatever the
 * clients do.
 *
 * - Pacing (pacing.ts): no connection within a second of the last one opening or closing, a capped, jittered
 *   backoff after sessions that ended early, never a loop. Client activity never brings a connect forward.
 * - Liveness: every frame counts (data, the broker's keep-alive, a pong). Quiet for a third of `stallTimeout`, the
 *   sidecar sends a WebSocket ping (the official client's websockets library pings every 20 s, so the broker
 *   answers them); quiet for all of it, the session is stalled and replaced.
 * - Requests (registrations) go out one at a time, `registrationSpacing` apart; a provider whose answers name no
 *   request (Kiwoom) waits for each answer before the next.
 *
 * The provider's subclass (KisUpstream in kis-session.ts, KiwoomUpstream in kiwoom-session.ts) says how to get in
 * (a credential, a login) and reads the frames; the session above it (session.ts) owns the registrations. With
 * replicas (replicas.ts), the one replica that holds the lease runs it, and its hooks' `gate` says when a
 * connection may open: never while that replica cannot prove its lease (lease.ts).
 */
import WebSocket from 'ws';
import type { Clock } from '../core/clock';
import { earliestCloseAt, earliestConnectAt, HEALTHY_AFTER_MS, reconnectDelayMs, type ReconnectPolicy } from './pacing';
import type { RealtimeConnectReason, RealtimeEndReason, RealtimeUpstreamState } from '../core/realtime-vocabulary';

export interface UpstreamPolicy {
  reconnect: ReconnectPolicy;
  stallTimeoutMs: number;
  idleCloseMs: number;
  keepOpen: boolean;
  registrationSpacingMs: number;
  afterReplacedMs: number;
}

export interface UpstreamHooks {
  /** Registrations may be sent (KIS: the socket is open; Kiwoom: the login was accepted). */
  ready(): void;
  /** The session ended: whatever the broker held for it is gone. */
  lost(reason: RealtimeEndReason): void;
  state(state: RealtimeUpstreamState, reason: RealtimeEndReason | undefined, detail: string | undefined): void;
  connecting(reason: RealtimeConnectReason): void;
  /**
   * How long before a connection may open (0: now). Asked before each connect, and again once the credential is
   * in hand: the replica holding the lease answers from its proof of it (replicas.ts); alone, always 0.
   */
  gate?(): number;
}

/** What a session needs of whatever carries its registrations: the broker's socket, or the holder's relay. */
export interface UpstreamPort {
  readonly state: RealtimeUpstreamState;
  readonly isReady: boolean;
  readonly lastFrameAt: number | undefined;
  setWanted(wanted: boolean): void;
  stop(): void;
}

interface Outgoing {
  text: string;
  /** Called with the answer's text when the provider's answers are matched by order (Kiwoom). */
  answered?: (text: string) => void;
}

/** The handshake: the broker answers its upgrade in milliseconds; a connection not up by then is a failed one. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
// The broker's frames are records of a few hundred bytes; a burst is split over several frames (official).
const MAX_UPSTREAM_FRAME_BYTES = 1024 * 1024;

export abstract class Upstream implements UpstreamPort {
  private current: WebSocket | undefined;
  private stateNow: RealtimeUpstreamState = 'idle';
  private wanted = false;
  private ready = false;
  private failures = 0;
  private lastEnd: RealtimeEndReason | undefined;
  private lastConnectAt: number | undefined;
  private lastCloseAt: number | undefined;
  private openedAt: number | undefined;
  /** Monotonic ms of the last frame of any kind from the broker. */
  private lastFrameMono = 0;
  /** Wall-clock ms of the last frame, for the metric. */
  lastFrameAt: number | undefined;
  /** A pending connect or idle close. */
  private timer: AbortController | undefined;
  private readonly queue: Outgoing[] = [];
  private inFlight: Outgoing | undefined;
  private pumping = false;
  private stopped = false;

  protected constructor(
    protected readonly clock: Clock,
    private readonly random: () => number,
    protected readonly policy: UpstreamPolicy,
    private readonly url: string,
    protected readonly hooks: UpstreamHooks,
  ) {}

  get state(): RealtimeUpstreamState {
    return this.stateNow;
  }

  get isReady(): boolean {
    return this.ready;
  }

  /** The credential to open a session with (a KIS approval key, a Kiwoom token), or when to ask again. */
  protected abstract credential(): Promise<string | { retryAfterMs: number }>;
  /** The socket is open: KIS is ready at once, Kiwoom logs in first. */
  protected abstract opened(credential: string): void;
  /** A text frame from the broker, its bytes as they came. */
  protected abstract received(data: Buffer, text: string): void;

  /** Something is wanted (registrations, or keepOpen), or nothing any more. */
  setWanted(wanted: boolean): void {
    if (this.stopped) return;
    const want = wanted || this.policy.keepOpen;
    if (want === this.wanted) return;
    this.wanted = want;
    if (want) {
      if (this.stateNow === 'open' || this.stateNow === 'connecting')
        this.cancelTimer(); // an idle close pending
      else if (this.stateNow === 'idle') this.scheduleConnect(this.lastEnd === undefined || this.lastEnd === 'idle' ? 'first' : undefined);
      return;
    }
    if (this.stateNow === 'down') {
      this.cancelTimer();
      this.setState('idle', undefined, 'nothing is registered');
    } else if (this.stateNow === 'open' || this.stateNow === 'connecting') {
      const at = Math.max(this.clock.monotonic() + this.policy.idleCloseMs, earliestCloseAt(this.openedAt ?? this.clock.monotonic()));
      this.after(at, () => this.end('idle', 'nothing registered for the idle time'));
    }
  }

  /** Queues a request; it goes out in turn, once the session is ready. */
  protected enqueue(message: Outgoing): void {
    this.queue.push(message);
    void this.pump();
  }

  /** Sends at once, out of turn (keep-alive answers, the login). */
  protected sendNow(text: string): void {
    if (this.current?.readyState === WebSocket.OPEN) this.current.send(text);
  }

  protected pongNow(data: Buffer): void {
    if (this.current?.readyState === WebSocket.OPEN) this.current.pong(data);
  }

  /** The answer to the request in flight (providers whose answers name no request). */
  protected takeAnswer(text: string): boolean {
    const waiting = this.inFlight;
    if (!waiting?.answered) return false;
    this.inFlight = undefined;
    waiting.answered(text);
    void this.pump();
    return true;
  }

  /** Registrations may go: called by the provider once in (KIS at open, Kiwoom at its login's answer). */
  protected markReady(): void {
    if (this.ready || this.current === undefined) return;
    this.ready = true;
    this.setState('open', undefined, undefined);
    this.hooks.ready();
    void this.pump();
  }

  /** Ends the current session (or attempt) for `reason`, and plans the next if one is wanted. */
  protected end(reason: RealtimeEndReason, detail?: string): void {
    const ws = this.current;
    if (ws === undefined) return;
    this.current = undefined;
    ws.removeAllListeners();
    ws.on('error', () => undefined);
    const now = this.clock.monotonic();
    let closedAt = now;
    // A lost lease closes at once, paced or not: another replica may open the key's session as soon as it lapses.
    if (ws.readyState === WebSocket.OPEN && reason !== 'dropped' && reason !== 'stalled' && reason !== 'lease_lost') {
      // The sidecar closes a session it refuses to go on with (a refused approval key or login) no sooner than a
      // second after it opened: connect and close a second apart, whoever ends it; the next connect counts from then.
      const wait = Math.max(0, earliestCloseAt(this.openedAt ?? now) - now);
      closedAt = now + wait;
      if (wait === 0) ws.close(1000);
      else void this.clock.sleep(wait).then(() => ws.close(1000));
    } else {
      ws.terminate();
    }
    const lived = this.openedAt === undefined ? 0 : now - this.openedAt;
    this.lastCloseAt = closedAt;
    this.openedAt = undefined;
    this.ready = false;
    this.queue.length = 0;
    this.inFlight = undefined;
    this.cancelTimer();
    const expected = reason === 'idle' || reason === 'shutdown' || reason === 'lease_lost';
    this.failures = expected ? 0 : lived >= HEALTHY_AFTER_MS ? 1 : this.failures + 1;
    this.lastEnd = reason;
    this.hooks.lost(reason);
    if (this.stopped || !this.wanted) {
      this.setState('idle', reason, detail);
      return;
    }
    this.setState('down', reason, detail);
    this.scheduleConnect(undefined, reason === 'replaced' ? this.policy.afterReplacedMs : undefined);
  }

  /** Stops for good: the session closed, nothing planned (`lease_lost`: the replica gave the session up). */
  stop(reason: 'shutdown' | 'lease_lost' = 'shutdown'): void {
    this.stopped = true;
    this.wanted = false;
    this.cancelTimer();
    this.end(reason);
    if (this.stateNow !== 'idle') this.setState('idle', reason, undefined);
  }

  private scheduleConnect(reason: RealtimeConnectReason | undefined, delayMs?: number): void {
    const now = this.clock.monotonic();
    const delay = delayMs ?? (this.failures === 0 ? 0 : reconnectDelayMs(this.failures, this.policy.reconnect, this.random));
    const at = earliestConnectAt(now, delay, this.lastConnectAt, this.lastCloseAt);
    const last = this.lastEnd;
    const why: RealtimeConnectReason =
      reason ?? (last === undefined || last === 'idle' || last === 'shutdown' || last === 'lease_lost' || last === 'holder_lost' ? 'first' : last);
    this.after(at, () => void this.connect(why));
  }

  private async connect(reason: RealtimeConnectReason): Promise<void> {
    if (this.stopped || !this.wanted || this.current !== undefined) return;
    if (this.heldBack(reason)) return;
    this.setState('connecting', undefined, undefined);
    this.lastConnectAt = this.clock.monotonic();
    this.hooks.connecting(reason);
    const credential = await this.credential().catch(() => ({ retryAfterMs: this.policy.reconnect.initialDelayMs }));
    if (this.stopped || !this.wanted) {
      this.setState('idle', undefined, undefined);
      return;
    }
    // The credential may have taken a while: the gate is asked again right before the socket opens.
    if (this.heldBack(reason)) return;
    if (typeof credential !== 'string') {
      this.failures++;
      this.lastEnd = 'no_credential';
      this.lastCloseAt = this.clock.monotonic();
      this.setState('down', 'no_credential', 'no approval key or token from the broker now');
      this.scheduleConnect(undefined, Math.max(credential.retryAfterMs, reconnectDelayMs(this.failures, this.policy.reconnect, this.random)));
      return;
    }
    const ws = new WebSocket(this.url, { perMessageDeflate: false, handshakeTimeout: HANDSHAKE_TIMEOUT_MS, maxPayload: MAX_UPSTREAM_FRAME_BYTES });
    this.current = ws;
    ws.on('open', () => {
      if (this.current !== ws) return;
      this.openedAt = this.clock.monotonic();
      this.frameSeen();
      void this.watch(ws);
      this.opened(credential);
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (this.current !== ws) return;
      this.frameSeen();
      if (!isBinary) this.received(data, data.toString('utf8'));
    });
    ws.on('ping', () => this.frameSeen());
    ws.on('pong', () => this.frameSeen());
    ws.on('close', (code) => {
      // 1006: the socket ended without a close frame (cut, reset), which is not the broker closing the session.
      if (this.current !== ws) return;
      if (this.openedAt === undefined) this.end('connect_failed', `closed before it opened (${code})`);
      else this.end(code === 1006 ? 'dropped' : 'closed', code === 1006 ? 'the connection was cut' : `closed by the broker (${code})`);
    });
    ws.on('error', (error) => {
      if (this.current === ws) this.end(this.openedAt === undefined ? 'connect_failed' : 'dropped', error.message);
    });
  }

  /** Whether the gate holds the connection back; if so it is tried again when the gate says. */
  private heldBack(reason: RealtimeConnectReason): boolean {
    const wait = this.hooks.gate?.() ?? 0;
    if (wait <= 0) return false;
    if (this.stateNow === 'connecting') this.setState('down', undefined, undefined);
    this.after(this.clock.monotonic() + wait, () => void this.connect(reason));
    return true;
  }

  private frameSeen(): void {
    this.lastFrameMono = this.clock.monotonic();
    this.lastFrameAt = this.clock.now();
  }

  /** The stall watch of one session: pings when quiet, replaces it when silent too long. */
  private async watch(ws: WebSocket): Promise<void> {
    const pingAfter = Math.floor(this.policy.stallTimeoutMs / 3);
    let pingedAt = -Infinity;
    while (this.current === ws) {
      await this.clock.sleep(Math.min(pingAfter, 1_000));
      if (this.current !== ws) return;
      const now = this.clock.monotonic();
      const quiet = now - this.lastFrameMono;
      if (quiet >= this.policy.stallTimeoutMs) {
        this.end('stalled', `no frame from the broker for ${Math.round(quiet / 1000)} s`);
        return;
      }
      if (quiet >= pingAfter && now - pingedAt >= pingAfter && ws.readyState === WebSocket.OPEN) {
        pingedAt = now;
        ws.ping();
      }
    }
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.ready && this.inFlight === undefined && this.queue.length > 0) {
        const next = this.queue.shift()!;
        const ws = this.current;
        if (ws?.readyState !== WebSocket.OPEN) return;
        if (next.answered) this.inFlight = next;
        ws.send(next.text);
        if (this.policy.registrationSpacingMs > 0) await this.clock.sleep(this.policy.registrationSpacingMs);
      }
    } finally {
      this.pumping = false;
    }
  }

  private after(atMono: number, run: () => void): void {
    this.cancelTimer();
    const controller = new AbortController();
    this.timer = controller;
    void this.clock.sleep(Math.max(0, atMono - this.clock.monotonic()), controller.signal).then(() => {
      if (controller.signal.aborted || this.timer !== controller) return;
      this.timer = undefined;
      run();
    });
  }

  private cancelTimer(): void {
    this.timer?.abort();
    this.timer = undefined;
  }

  private setState(state: RealtimeUpstreamState, reason: RealtimeEndReason | undefined, detail: string | undefined): void {
    if (state === this.stateNow && reason === undefined) return;
    this.stateNow = state;
    this.hooks.state(state, reason, detail);
  }
}

/**
 * One client's WebSocket to the endpoint, with the bound that keeps one client from spoiling the others: what
 * the client has not read yet (ws's buffer, after the kernel's) may be at most `maxQueueBytes`, and the oldest
 * frame not yet handed to the kernel at most `maxQueueDelayMs` old. Past either, the client is closed with
 * CLOSE_SLOW and its queue freed: frames are never held back or dropped for the others, and the sidecar's memory
 * for a client never passes its bound (plus the one frame that crossed it).
 */
import type { WebSocket } from 'ws';
import type { Clock } from '../core/clock';
import type { RealtimeClientCloseReason } from '../core/realtime-vocabulary';

/** Close codes (4000-4999: the application's own): what each means is in the reason text too. */
export const CLOSE_CODES = {
  /** The client fell behind its queue's bound. */
  slow: 4008,
  /** No valid message in time, or the keep-alive went unanswered. */
  silent: 4000,
  /** Its credential was refused and it never presented a good one. */
  refused: 4003,
  /** Its place was needed by a newcomer (it had not authenticated). */
  evicted: 4009,
  /** The sidecar is stopping. */
  shutdown: 1001,
} as const satisfies Record<Exclude<RealtimeClientCloseReason, 'left'>, number>;

interface ClientBounds {
  maxQueueBytes: number;
  maxQueueDelayMs: number;
}

export class ClientConnection {
  readonly connectedAt: number;
  /** The gateway client it authenticated as, and the account it acts on; undefined until then. */
  client: string | undefined;
  account: string | undefined;
  /** When its credential was last refused while it had none accepted (it is then held open, not closed at once). */
  refusedAt: number | undefined;
  lastHeardAt: number;
  closedBy: RealtimeClientCloseReason | undefined;
  /** What it had queued when it was closed (its bound decides for a slow one). */
  queuedAtClose = 0;
  /** Send times of frames not yet written to the kernel, oldest first (a ring would do; frames are few per client). */
  private readonly unflushed: number[] = [];
  private unflushedHead = 0;
  private onClosed: Array<(reason: RealtimeClientCloseReason) => void> = [];

  constructor(
    readonly ws: WebSocket,
    readonly remoteAddress: string | undefined,
    private readonly clock: Clock,
    private readonly bounds: ClientBounds,
  ) {
    this.connectedAt = clock.monotonic();
    this.lastHeardAt = this.connectedAt;
    ws.on('pong', () => this.heard());
    ws.on('close', () => this.ended('left'));
    ws.on('error', () => this.ended('left'));
  }

  get open(): boolean {
    return this.closedBy === undefined;
  }

  get authenticated(): boolean {
    return this.client !== undefined;
  }

  /** Bytes waiting in the sidecar for this client (ws's buffer). */
  get queuedBytes(): number {
    return this.open ? this.ws.bufferedAmount : 0;
  }

  whenClosed(listener: (reason: RealtimeClientCloseReason) => void): void {
    this.onClosed.push(listener);
  }

  heard(): void {
    this.lastHeardAt = this.clock.monotonic();
  }

  /**
   * Sends a frame (the broker's bytes as they came, or an answer); closes the client instead when it is past its
   * bound. Returns whether the frame was handed over.
   */
  send(data: Buffer | string): boolean {
    if (!this.open || this.ws.readyState !== this.ws.OPEN) return false;
    if (this.overBound()) {
      this.close('slow', `client too slow: more than ${this.bounds.maxQueueBytes} bytes or ${this.bounds.maxQueueDelayMs} ms behind`);
      return false;
    }
    this.unflushed.push(this.clock.monotonic());
    this.ws.send(data, { binary: false }, () => {
      this.unflushedHead++;
      // Compact now and then, so the array never holds more than the frames in flight.
      if (this.unflushedHead > 1024 && this.unflushedHead * 2 > this.unflushed.length) {
        this.unflushed.splice(0, this.unflushedHead);
        this.unflushedHead = 0;
      }
    });
    return true;
  }

  /** How long the oldest frame not yet written to the kernel has waited (0 when none). */
  oldestUnflushedMs(): number {
    const oldest = this.unflushed[this.unflushedHead];
    return oldest === undefined ? 0 : this.clock.monotonic() - oldest;
  }

  /** Past the bytes or the time bound: the sweep closes such a client even when no new frame comes for it. */
  overBound(): boolean {
    return this.ws.bufferedAmount > this.bounds.maxQueueBytes || this.oldestUnflushedMs() > this.bounds.maxQueueDelayMs;
  }

  /** Closes with the reason's code; a slow client's queue is dropped at once rather than flushed. */
  close(reason: Exclude<RealtimeClientCloseReason, 'left'>, text: string): void {
    if (!this.open) return;
    this.queuedAtClose = this.ws.bufferedAmount;
    if (reason === 'slow' || reason === 'evicted') {
      this.ws.close(CLOSE_CODES[reason], text.slice(0, 120));
      // A client that does not read would never read the close frame either: the socket goes now.
      this.ws.terminate();
    } else {
      this.ws.close(CLOSE_CODES[reason], text.slice(0, 120));
      // The close handshake is the client's to finish; one that never answers is cut.
      setTimeout(() => this.ws.terminate(), 5_000).unref();
    }
    this.ended(reason);
  }

  private ended(reason: RealtimeClientCloseReason): void {
    if (this.closedBy !== undefined) return;
    this.closedBy = reason;
    this.unflushed.length = 0;
    this.unflushedHead = 0;
    const listeners = this.onClosed;
    this.onClosed = [];
    for (const listener of listeners) listener(reason);
  }
}

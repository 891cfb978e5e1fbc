import type { AbortWatch } from '../core/call-abort';
import type { BudgetMode, SidecarEvents } from '../core/events';
import { FairQueue, once, type Slot } from './fair-queue';
import { MemorySlotLog, type Reservation, type SlotTiming } from './slot-log';
import type { RedisSlotLog } from './redis-slot-log';

/**
 * The broker's per-second call budget, one per app key (Kiwoom: per app key and api-id), which every request to
 * the broker takes a slot of: the gateway's clients' calls and the sidecar's own (token, revoke, approval key,
 * proof). In one process the slots are counted in memory; with a shared store, in Redis, by every replica
 * together (slot-log.ts says why a slot lasts until a second after its call's answer, and why that holds across
 * replicas whatever their event loops' lag).
 *
 * Redis out of reach: each replica counts alone, and keeps to its share, the limit divided by the replicas it last
 * saw alive (never fewer than two: a shared store means replicas), after a quiet time in which the calls the
 * others were granted before the outage have left and been counted. Back in touch, it hands Redis the slots it
 * counted alone, and keeps to its share a little longer, until every replica has had time to reconnect and do the
 * same. Modes change once each way, with an event.
 */

export type BudgetModeChange = SidecarEvents['budget.mode'];

/** Where a call's slot is counted: `log` is the app key's (with the api-id's budget); `queue` names its waiters. */
export interface BudgetKey {
  log: string;
  queue: string;
}

interface SlotRequest {
  key: BudgetKey;
  limit: number;
  /** The longest the call may be in flight (its timeouts): its slot counts at least that long if never settled. */
  pendingMs: number;
  /** Who waits, for the turns of the fair queue. */
  client: string;
  signal?: AbortWatch;
}

interface CallBudgetOptions {
  /** How long a slot counts after its answer: the broker's second plus a margin. */
  windowMs: number;
  maxWaitMs: number;
  /** Milliseconds on a monotonic clock (performance.now in production). */
  now: () => number;
  onMode?: (change: BudgetModeChange) => void;
  /** How often what no longer counts is forgotten (tests shorten it). */
  sweepMs?: number;
}

/** A replica's event loop may hold a granted call this long before it leaves (measured: 0.2 s on a loaded host). */
const SEND_LAG_ALLOWANCE_MS = 1_000;
const HEARTBEAT_MS = 1_000;
/** A replica that has not beaten for this long is gone. */
const REPLICA_TTL_MS = 3_000;
/** The store's Redis connection retries at least every 5 s: by then every live replica is back and has handed over its slots. */
const REJOIN_MS = 10_000;
/** What is no longer counted is forgotten this often, so memory follows the keys in use, not every key ever seen. */
const SWEEP_MS = 10_000;

export class CallBudget {
  private readonly queues = new Map<string, FairQueue>();
  private readonly local: MemorySlotLog;
  private modeNow: BudgetMode;
  private replicasSeen = 2;
  private fallbackSince = 0;
  private rejoinedAt = 0;
  private destroyed = false;
  private started = false;
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly options: CallBudgetOptions,
    private readonly shared?: RedisSlotLog,
  ) {
    this.local = new MemorySlotLog(options.now);
    this.modeNow = shared ? 'shared' : 'local';
    this.every(options.sweepMs ?? SWEEP_MS, () => this.sweep());
  }

  /**
   * Starts the heartbeats in Redis, once the store's connection is up (or known down): a beat before would find
   * no connection yet and take the start for an outage.
   */
  start(): void {
    if (!this.shared || this.destroyed || this.started) return;
    this.started = true;
    this.every(HEARTBEAT_MS, () => void this.beat());
    void this.beat();
  }

  get mode(): BudgetMode {
    return this.modeNow;
  }

  /** Waits for a slot, in turn with the other clients waiting on the same key. */
  take(request: SlotRequest): Promise<Slot> {
    if (this.destroyed) return Promise.resolve({ granted: false, waitedMs: 0, retryAfterMs: 0 });
    const { key, limit, pendingMs } = request;
    const timing: SlotTiming = { windowMs: this.options.windowMs, pendingMs };
    let queue = this.queues.get(key.queue);
    // A queue is kept while idle (the sweep drops it after a while): a key in use makes none per call.
    // Counted in this process and nobody waiting: a free slot is granted at once, without the queue's turns (on the
    // gateway's path for every call; the queue, its promise chain and its closures cost ~30 µs).
    if (!this.shared && !queue?.length && !request.signal?.aborted) {
      const reservation = this.local.reserveNow(key.log, limit, timing);
      if (reservation.granted) return Promise.resolve({ granted: true, waitedMs: 0, answered: once(() => void this.settle(key.log, reservation.id, timing)) });
      // Full: the one reservation made was refused, nothing to undo; the call waits its turn below.
    }
    if (!queue) {
      queue = new FairQueue({
        reserve: () => this.reserve(key.log, limit, timing),
        settle: (id) => void this.settle(key.log, id, timing),
        cancel: (id) => void this.cancel(key.log, id),
        now: this.options.now,
        maxWaitMs: this.options.maxWaitMs,
        limit,
      });
      this.queues.set(key.queue, queue);
    }
    return queue.enqueue(request.client, request.signal);
  }

  /** Calls waiting now, by queue. */
  waiting(): Map<string, number> {
    return new Map([...this.queues].map(([key, queue]) => [key, queue.length]));
  }

  /** Queues and keys held now: bounded by the keys in use, whatever the clients send. */
  get footprint(): { queues: number; keys: number } {
    return { queues: this.queues.size, keys: this.local.size };
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  destroy(): void {
    this.destroyed = true;
    for (const timer of this.timers) clearInterval(timer);
    for (const queue of this.queues.values()) queue.close();
    this.queues.clear();
  }

  /** What is no longer counted, and the queues nobody waits in, are dropped. */
  private sweep(): void {
    void this.local.size;
    const sweepMs = this.options.sweepMs ?? SWEEP_MS;
    for (const [name, queue] of this.queues) if (queue.length === 0 && queue.idleForMs() >= sweepMs) this.queues.delete(name);
  }

  private async reserve(key: string, limit: number, timing: SlotTiming): Promise<Reservation> {
    if (!this.shared) return this.local.reserveNow(key, limit, timing);
    if (this.modeNow === 'fallback') return this.reserveAlone(key, limit, timing);
    if (this.modeNow === 'rejoining') {
      if (this.options.now() >= this.rejoinedAt + REJOIN_MS) this.setMode('shared', 'every replica has had time to return: the shared budget is whole again');
      else {
        const share = this.shareOf(limit, timing);
        const room = this.local.room(key, share.limit, share.windowMs);
        if (!room.free) return { granted: false, retryInMs: room.retryInMs };
      }
    }
    try {
      const reservation = await this.shared.reserve(key, limit, timing);
      if (reservation.granted) this.local.add(key, reservation.id, this.options.now() + timing.pendingMs + timing.windowMs);
      return reservation;
    } catch (error) {
      this.enterFallback(error);
      return this.reserveAlone(key, limit, timing);
    }
  }

  /** Counting alone: nothing until the quiet time is over, then this replica's share. */
  private reserveAlone(key: string, limit: number, timing: SlotTiming): Reservation {
    const quietUntil = this.fallbackSince + timing.windowMs + SEND_LAG_ALLOWANCE_MS;
    const now = this.options.now();
    if (now < quietUntil) return { granted: false, retryInMs: Math.ceil(quietUntil - now) };
    const share = this.shareOf(limit, timing);
    return this.local.reserveNow(key, share.limit, { ...timing, windowMs: share.windowMs });
  }

  /** The limit divided among the replicas: a whole number per window, the window stretched when less than one. */
  private shareOf(limit: number, timing: SlotTiming): { limit: number; windowMs: number } {
    const replicas = Math.max(2, this.replicasSeen);
    if (limit >= replicas) return { limit: Math.floor(limit / replicas), windowMs: timing.windowMs };
    return { limit: 1, windowMs: timing.windowMs * Math.ceil(replicas / limit) };
  }

  private async settle(key: string, id: string, timing: SlotTiming): Promise<void> {
    await this.local.settle(key, id, timing);
    if (!this.shared || this.modeNow === 'fallback') return;
    // A settle that fails leaves the slot counting until its pending time is out: the safe side.
    await this.shared.settle(key, id, timing).catch((error: unknown) => this.enterFallback(error));
  }

  private async cancel(key: string, id: string): Promise<void> {
    await this.local.cancel(key, id);
    if (this.shared && this.modeNow !== 'fallback') await this.shared.cancel(key, id).catch(() => undefined);
  }

  private async beat(): Promise<void> {
    if (!this.shared || this.destroyed) return;
    try {
      const replicas = await this.shared.heartbeat(REPLICA_TTL_MS);
      if (this.modeNow === 'rejoining' && this.options.now() >= this.rejoinedAt + REJOIN_MS) {
        this.setMode('shared', 'every replica has had time to return: the shared budget is whole again');
      }
      if (this.modeNow === 'fallback') {
        await this.shared.adopt(this.local.remaining());
        this.rejoinedAt = this.options.now();
        this.replicasSeen = Math.max(this.replicasSeen, replicas);
        this.setMode(
          'rejoining',
          `the shared call budget is counted in Redis again; this replica keeps to its share for ${REJOIN_MS / 1000} s more, while the others return`,
        );
      } else {
        this.replicasSeen = replicas;
      }
    } catch (error) {
      this.enterFallback(error);
    }
  }

  private enterFallback(error: unknown): void {
    if (this.modeNow === 'fallback' || this.destroyed) return;
    this.fallbackSince = this.options.now();
    const replicas = Math.max(2, this.replicasSeen);
    this.setMode(
      'fallback',
      `the shared call budget cannot be counted in Redis (${(error as Error).message}); this replica keeps to 1/${replicas} of each limit, after ${(this.options.windowMs + SEND_LAG_ALLOWANCE_MS) / 1000} s without calls`,
    );
  }

  private setMode(mode: BudgetMode, message: string): void {
    this.modeNow = mode;
    this.options.onMode?.({ mode, replicas: Math.max(2, this.replicasSeen), message });
  }

  private every(ms: number, action: () => void): void {
    const timer = setInterval(action, ms);
    timer.unref();
    this.timers.push(timer);
  }
}

import type { Redis } from 'ioredis';
import type { ReserveResult, SlidingWindowRateLimiterBackend } from 'sliding-window-rate-limiter' with { 'resolution-mode': 'import' };

/**
 * One per-second call budget per app key (Kiwoom: per app key and api-id), shared by every client of the
 * gateway and, with `store: redis`, by every replica. The counting is sliding-window-rate-limiter's: a log of
 * grants per key (in memory, or a sorted set in Redis timed by the Redis server's clock), so no one-second window,
 * wherever the broker starts its own, ever holds more than the limit. The window is a second plus a margin for
 * the way between a grant and the broker's count.
 *
 * Besides, in each process, a call holds its place until a second after the broker answered it (`answered()`),
 * not only a window after its grant. The broker counts a call when it arrives, which is after the grant and
 * before the answer; so the call that next takes that place arrives at least a second after it, however long
 * the way there took. Counted from the grant alone, a loaded host (or a broker slow to count) let calls granted
 * in one window arrive in the next, and the simulator saw 25 in one second. Between replicas, the shared count
 * (from the grant, plus the margin) is what holds.
 *
 * In front of it, a fair queue: calls wait per client, and the clients take turns, so one client sending a
 * thousand calls does not starve another sending one. A call waits at most `maxWaitMs`, then is refused with
 * how long to wait; it is never sent past the budget.
 */

/** `answered`: call it once, when the broker answered the call or it failed on the way. */
type BudgetAnswer = { granted: true; waitedMs: number; answered: () => void } | { granted: false; waitedMs: number; retryAfterMs: number };

/** How long a call holds its place after its answer: the broker's window. */
export const BROKER_WINDOW_MS = 1_000;

interface Waiter {
  client: string;
  arrivedAt: number;
  deadline: number;
  resolve(answer: BudgetAnswer): void;
}

interface BudgetOptions {
  windowMs: number;
  maxWaitMs: number;
  /** Milliseconds on a monotonic clock (performance.now in production). */
  now(): number;
  /** When the shared counter (Redis) fails and the local one takes over, and when it is back. */
  onShared?(up: boolean, message: string): void;
}

/** Loads the limiter library (an ES module) once. */
async function limiterLibrary() {
  return import('sliding-window-rate-limiter');
}

export class CallBudget {
  private readonly queues = new Map<string, FairQueue>();
  private sharedUp = true;
  private destroyed = false;

  private constructor(
    private readonly options: BudgetOptions,
    private readonly local: SlidingWindowRateLimiterBackend,
    private readonly shared: SlidingWindowRateLimiterBackend | undefined,
  ) {}

  /** `redis`: the store's connection, for a budget shared by the replicas; none for a budget of this process. */
  static async create(options: BudgetOptions, redis?: { client: Redis; keyPrefix: string; timeoutMs: number }): Promise<CallBudget> {
    const { SlidingWindowRateLimiter } = await limiterLibrary();
    const local = SlidingWindowRateLimiter.createLimiter({ interval: options.windowMs });
    const shared =
      redis &&
      SlidingWindowRateLimiter.createLimiter({
        interval: options.windowMs, // The library declares its own augmented ioredis type; the store's client is the same class.
        redis: redis.client as never,
        operationTimeout: redis.timeoutMs,
      });
    return new CallBudget(options, local, shared);
  }

  /** Waits for a slot of `key`'s budget, in turn with the other clients waiting on it. */
  take(key: string, limit: number, client: string, signal?: AbortSignal): Promise<BudgetAnswer> {
    if (this.destroyed) return Promise.resolve({ granted: false, waitedMs: 0, retryAfterMs: 0 });
    let queue = this.queues.get(key);
    if (!queue) {
      queue = new FairQueue(() => this.reserve(key, limit), this.options, limit);
      this.queues.set(key, queue);
    }
    return queue.enqueue(client, signal);
  }

  /** Calls waiting now, by budget key. */
  waiting(): Map<string, number> {
    return new Map([...this.queues].map(([key, queue]) => [key, queue.length]));
  }

  /** True once destroyed: the gateway is stopping, and nothing waits for a slot any more. */
  get isDestroyed(): boolean {
    return this.destroyed;
  }

  destroy(): void {
    this.destroyed = true;
    for (const queue of this.queues.values()) queue.close();
    this.local.destroy();
    // The Redis connection is the store's: it closes it.
  }

  private async reserve(key: string, limit: number): Promise<ReserveResult> {
    if (this.shared) {
      try {
        const result = await this.shared.reserve(key, limit);
        if (!this.sharedUp) this.setShared(true, 'the shared call budget is counted in Redis again');
        return result;
      } catch (error) {
        // Without Redis the replicas cannot count together: each counts its own calls against the whole
        // limit, and says so. Refusing every call instead would stop trading for a counter.
        if (this.sharedUp)
          this.setShared(false, `the shared call budget cannot be counted in Redis (${(error as Error).message}); counting this replica's calls only`);
      }
    }
    return this.local.reserve(key, limit);
  }

  private setShared(up: boolean, message: string): void {
    this.sharedUp = up;
    this.options.onShared?.(up, message);
  }
}

/** The waiting calls of one budget key, served a client at a time in turn. */
class FairQueue {
  private readonly byClient = new Map<string, Waiter[]>();
  private pumping = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  /** Granted calls not yet a second past their answer, in this process. */
  private held = 0;
  private readonly holds = new Set<NodeJS.Timeout>();
  length = 0;

  constructor(
    private readonly reserve: () => Promise<ReserveResult>,
    private readonly options: BudgetOptions,
    private readonly limit: number,
  ) {}

  enqueue(client: string, signal?: AbortSignal): Promise<BudgetAnswer> {
    const arrivedAt = this.options.now();
    return new Promise<BudgetAnswer>((resolve) => {
      const waiter: Waiter = { client, arrivedAt, deadline: arrivedAt + this.options.maxWaitMs, resolve };
      const list = this.byClient.get(client);
      if (list) list.push(waiter);
      else this.byClient.set(client, [waiter]);
      this.length++;
      signal?.addEventListener('abort', () => this.remove(waiter, { granted: false, waitedMs: this.options.now() - arrivedAt, retryAfterMs: 0 }), {
        once: true,
      });
      void this.pump();
    });
  }

  /** Everyone still waiting is told no at once: a stop must not wait for a slot. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const hold of this.holds) clearTimeout(hold);
    this.wake?.();
    const now = this.options.now();
    for (const list of [...this.byClient.values()])
      for (const waiter of [...list]) this.remove(waiter, { granted: false, waitedMs: now - waiter.arrivedAt, retryAfterMs: 0 });
  }

  private remove(waiter: Waiter, answer: BudgetAnswer): void {
    const list = this.byClient.get(waiter.client);
    const index = list?.indexOf(waiter) ?? -1;
    if (!list || index < 0) return;
    list.splice(index, 1);
    if (list.length === 0) this.byClient.delete(waiter.client);
    this.length--;
    waiter.resolve(answer);
  }

  /** The next client in turn: the first in the map; served, it goes to the back. */
  private next(): Waiter | undefined {
    for (const list of this.byClient.values()) return list[0];
    return undefined;
  }

  private refuseOverdue(now: number): void {
    for (const list of [...this.byClient.values()]) {
      for (const waiter of [...list]) {
        // How long until this caller could expect a slot: the calls ahead of it, at the limit's pace.
        if (waiter.deadline <= now)
          this.remove(waiter, { granted: false, waitedMs: now - waiter.arrivedAt, retryAfterMs: Math.ceil((this.length * 1000) / this.limit) });
      }
    }
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.closed) {
        this.refuseOverdue(this.options.now());
        const waiter = this.next();
        if (!waiter) return;
        if (this.held >= this.limit) {
          // Every place held by a call in flight or answered less than a second ago: the first to end wakes us.
          await this.sleep(Math.max(0, this.earliestDeadline() - this.options.now()) + 1);
          continue;
        }
        const result = await this.reserve();
        const now = this.options.now();
        if (result.token !== undefined) {
          // Granted to the client in turn (still waiting: an abort may have taken it meanwhile, then the
          // slot goes to the next in line at the next turn, it is not lost).
          if (this.byClient.get(waiter.client)?.[0] === waiter) {
            this.held++;
            this.remove(waiter, { granted: true, waitedMs: now - waiter.arrivedAt, answered: once(() => this.release()) });
            const rest = this.byClient.get(waiter.client);
            if (rest) {
              this.byClient.delete(waiter.client);
              this.byClient.set(waiter.client, rest);
            }
          }
          continue;
        }
        // Spent: sleep until a slot frees, or until the first waiter's deadline, whichever comes first.
        const untilFree = Math.max(1, result.reset ?? 5);
        const untilDeadline = Math.max(0, this.earliestDeadline() - now);
        await this.sleep(Math.min(untilFree, untilDeadline + 1));
      }
    } finally {
      this.pumping = false;
    }
  }

  /** A second after the answer, the place is free again in this process. */
  private release(): void {
    const hold = setTimeout(() => {
      this.holds.delete(hold);
      this.held--;
      clearTimeout(this.timer);
      this.wake?.();
    }, BROKER_WINDOW_MS);
    hold.unref();
    this.holds.add(hold);
  }

  private earliestDeadline(): number {
    let earliest = Infinity;
    for (const list of this.byClient.values()) for (const waiter of list) earliest = Math.min(earliest, waiter.deadline);
    return earliest;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }
}

function once(action: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    action();
  };
}

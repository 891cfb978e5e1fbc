import { onAbort, type AbortWatch } from '../core/call-abort';
import type { Reservation } from './slot-log';

/**
 * The calls waiting for one budget key, served a client at a time in turn, so one client sending a thousand calls
 * does not starve another sending one. A call waits at most `maxWaitMs`, then is refused with how long to wait;
 * it is never sent past the budget. A slot granted to a caller that left meanwhile goes to the next in line.
 */

export type Slot = { granted: true; waitedMs: number; answered: () => void } | { granted: false; waitedMs: number; retryAfterMs: number };

interface Waiter {
  client: string;
  arrivedAt: number;
  deadline: number;
  resolve(slot: Slot): void;
}

interface QueueDeps {
  /** Asks the budget for a slot now. */
  reserve(): Promise<Reservation>;
  /** The slot's call was answered. */
  settle(id: string): void;
  /** The slot was never used. */
  cancel(id: string): void;
  /** Milliseconds on a monotonic clock. */
  now(): number;
  maxWaitMs: number;
  /** The key's limit, for the Retry-After of a refused call. */
  limit: number;
}

export class FairQueue {
  private readonly byClient = new Map<string, Waiter[]>();
  private pumping = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  /** When the last waiter left (monotonic ms). */
  private emptySince = 0;
  length = 0;

  constructor(private readonly deps: QueueDeps) {}

  enqueue(client: string, signal?: AbortWatch): Promise<Slot> {
    const arrivedAt = this.deps.now();
    if (this.closed || signal?.aborted) return Promise.resolve({ granted: false, waitedMs: 0, retryAfterMs: 0 });
    return new Promise<Slot>((resolve) => {
      const waiter: Waiter = { client, arrivedAt, deadline: arrivedAt + this.deps.maxWaitMs, resolve };
      const list = this.byClient.get(client);
      if (list) list.push(waiter);
      else this.byClient.set(client, [waiter]);
      this.length++;
      if (signal) onAbort(signal, () => this.remove(waiter, { granted: false, waitedMs: this.deps.now() - arrivedAt, retryAfterMs: 0 }));
      void this.pump();
    });
  }

  /** How long nobody has waited here (0 while someone does). */
  idleForMs(): number {
    return this.length > 0 ? 0 : this.deps.now() - this.emptySince;
  }

  /** Everyone still waiting is told no at once: a stop must not wait for a slot. */
  close(): void {
    this.closed = true;
    this.stopSleeping();
    const now = this.deps.now();
    for (const list of [...this.byClient.values()])
      for (const waiter of [...list]) this.remove(waiter, { granted: false, waitedMs: now - waiter.arrivedAt, retryAfterMs: 0 });
  }

  private remove(waiter: Waiter, slot: Slot): boolean {
    const list = this.byClient.get(waiter.client);
    const index = list?.indexOf(waiter) ?? -1;
    if (!list || index < 0) return false;
    list.splice(index, 1);
    if (list.length === 0) this.byClient.delete(waiter.client);
    if (--this.length === 0) this.emptySince = this.deps.now();
    waiter.resolve(slot);
    return true;
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
          this.remove(waiter, { granted: false, waitedMs: now - waiter.arrivedAt, retryAfterMs: Math.ceil((this.length * 1000) / this.deps.limit) });
      }
    }
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.closed) {
        this.refuseOverdue(this.deps.now());
        if (!this.next()) return;
        let reservation: Reservation;
        try {
          reservation = await this.deps.reserve();
        } catch {
          // The budget could not decide (it reports why): nothing is granted; look again shortly.
          reservation = { granted: false, retryInMs: 50 };
        }
        if (reservation.granted) {
          this.grant(reservation.id);
          continue;
        }
        const untilDeadline = Math.max(0, this.earliestDeadline() - this.deps.now());
        await this.sleep(Math.min(reservation.retryInMs, untilDeadline + 1));
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Gives a slot to the client in turn (who may have left while the budget answered: then to the next one). */
  private grant(id: string): void {
    const waiter = this.next();
    if (!waiter) {
      this.deps.cancel(id);
      return;
    }
    this.remove(waiter, { granted: true, waitedMs: this.deps.now() - waiter.arrivedAt, answered: once(() => this.deps.settle(id)) });
    const rest = this.byClient.get(waiter.client);
    if (rest) {
      this.byClient.delete(waiter.client);
      this.byClient.set(waiter.client, rest);
    }
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

  private stopSleeping(): void {
    clearTimeout(this.timer);
    this.wake?.();
  }
}

/** `action` on the first call only: a slot's `answered` settles it once, whoever calls it again. */
export function once(action: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    action();
  };
}

/**
 * The count behind the call budget: per key, a log of slots, each counted from its grant until a window after
 * the broker answered its call. The broker counts a call when it arrives, which is after the grant and before
 * the answer; a slot that lasts until `windowMs` after the answer therefore covers the second that follows the
 * call's arrival, however long the call took to leave (a busy event loop, a slow connect) or to be answered. So
 * no one-second window at the broker, wherever it starts, ever holds more calls than the limit: for any two calls
 * in one such window, the later one's grant saw the earlier one's slot still counted.
 *
 * A slot not yet settled (its call in flight) counts until `pendingMs + windowMs` after its grant: longer than any
 * call can take, so that a process that dies mid-call frees its slots at last.
 *
 * Each slot is stored as the moment it stops counting (`until`); a settled slot's `until` is at most a window
 * ahead, an unsettled one's further: that tells them apart without a flag, here and in Redis (redis-slot-log.ts).
 */

export interface SlotTiming {
  /** How long a slot counts after its call was answered: the broker's second, plus a margin. */
  windowMs: number;
  /** How long a slot counts at most before it is settled: longer than any call can be in flight. */
  pendingMs: number;
}

export type Reservation = { granted: true; id: string } | { granted: false; retryInMs: number };

export interface SlotLog {
  /** A slot of `key` if fewer than `limit` count now, or how long until one may free. */
  reserve(key: string, limit: number, timing: SlotTiming): Promise<Reservation>;
  /** The slot's call was answered (or failed): it counts for one more window from now. */
  settle(key: string, id: string, timing: SlotTiming): Promise<void>;
  /** The slot was never used (its caller left before the call was sent): it stops counting at once. */
  cancel(key: string, id: string): Promise<void>;
}

/** Below this many slots a key is not passed over before a grant under the limit. */
const MIN_PASS_SIZE = 64;

/** While every counted slot is still in flight, nobody knows when one frees: look again this soon. */
export const POLL_WHILE_IN_FLIGHT_MS = 25;

/** How long until a slot may free, from the earliest `until` among the counted ones. */
function retryIn(soonestUntil: number, now: number, windowMs: number): number {
  // An `until` within a window from now is a settled slot's: it frees exactly then.
  return soonestUntil <= now + windowMs ? Math.max(1, Math.ceil(soonestUntil - now)) : POLL_WHILE_IN_FLIGHT_MS;
}

/**
 * The log in this process's memory, on a monotonic clock. It counts alone when there is no shared store, and
 * keeps this process's own slots beside a shared log, for the time the shared one cannot be reached.
 */
export class MemorySlotLog implements SlotLog {
  private readonly slots = new Map<string, Map<string, number>>();
  /** Per key, the size at which the next pass over its slots is due (see reserveNow). */
  private readonly pruneAt = new Map<string, number>();
  private sequence = 0;

  constructor(
    private readonly now: () => number,
    private readonly idPrefix = 'local',
  ) {}

  reserve(key: string, limit: number, timing: SlotTiming): Promise<Reservation> {
    return Promise.resolve(this.reserveNow(key, limit, timing));
  }

  reserveNow(key: string, limit: number, timing: SlotTiming): Reservation {
    const now = this.now();
    // Fewer slots than the limit, lapsed ones included: granted without a pass over them. A pass is due at the limit,
    // or when the key has doubled since the last one, so each call costs O(1) on average whatever the limit.
    const held = this.slots.get(key)?.size ?? 0;
    const counted = held < limit && held < (this.pruneAt.get(key) ?? MIN_PASS_SIZE) ? this.slots.get(key) : this.counted(key, now);
    if (!counted || counted.size < limit) {
      const id = `${this.idPrefix}:${++this.sequence}`;
      this.add(key, id, now + timing.pendingMs + timing.windowMs);
      return { granted: true, id };
    }
    return { granted: false, retryInMs: retryIn(Math.min(...counted.values()), now, timing.windowMs) };
  }

  /** Whether a slot of `key` would be free under `limit` now, without taking it. */
  room(key: string, limit: number, windowMs: number): { free: true } | { free: false; retryInMs: number } {
    const now = this.now();
    const counted = this.counted(key, now);
    return counted.size < limit ? { free: true } : { free: false, retryInMs: retryIn(Math.min(...counted.values()), now, windowMs) };
  }

  settle(key: string, id: string, timing: SlotTiming): Promise<void> {
    this.add(key, id, this.now() + timing.windowMs);
    return Promise.resolve();
  }

  cancel(key: string, id: string): Promise<void> {
    this.drop(key, id);
    return Promise.resolve();
  }

  /** Records a slot granted elsewhere (the shared log), with the moment it stops counting here. */
  add(key: string, id: string, until: number): void {
    let slots = this.slots.get(key);
    if (!slots) this.slots.set(key, (slots = new Map<string, number>()));
    slots.set(id, until);
  }

  drop(key: string, id: string): void {
    const slots = this.slots.get(key);
    slots?.delete(id);
    if (slots?.size === 0) {
      this.slots.delete(key);
      this.pruneAt.delete(key);
    }
  }

  /** Every slot that still counts, with how long it has left: what this process hands the shared log on its return. */
  remaining(): Array<{ key: string; id: string; leftMs: number }> {
    const now = this.now();
    const all: Array<{ key: string; id: string; leftMs: number }> = [];
    for (const key of [...this.slots.keys()]) for (const [id, until] of this.counted(key, now)) all.push({ key, id, leftMs: until - now });
    return all;
  }

  /** Keys with slots still counting: the log never holds more than the keys in use in the last minute or so. */
  get size(): number {
    for (const key of [...this.slots.keys()]) this.counted(key, this.now());
    return this.slots.size;
  }

  /** The slots of `key` that count at `now`, the others dropped (and the key, once it has none). */
  private counted(key: string, now: number): Map<string, number> {
    const slots = this.slots.get(key);
    if (!slots) return new Map<string, number>();
    for (const [id, until] of slots) if (until <= now) slots.delete(id);
    this.pruneAt.set(key, Math.max(MIN_PASS_SIZE, 2 * slots.size));
    if (slots.size === 0) {
      this.slots.delete(key);
      this.pruneAt.delete(key);
    }
    return slots;
  }
}

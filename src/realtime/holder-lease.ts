/**
 * Which replica holds an app key's one real-time session: the fenced lease of store/redis-lease.ts, taken by
 * whichever replica finds it free, renewed every quarter of its ttl, and the rules that keep two sessions from
 * ever being open at the broker at once.
 *
 * - Proof: a renewal sent at `t` proves the lease until `t + ttl - renewEvery` (monotonic, on this replica): the
 *   lease in Redis lives at least until `t + ttl`, and a quarter of the ttl is left as margin. A session is opened
 *   only while proven (`gateMs`), so no replica opens one on a lease it may have lost.
 * - Handover: a new holder opens its session no sooner than `handoverMs` after it took the lease. Its predecessor's
 *   session closed at the latest when that one's proof ran out, before the lease lapsed: waiting a second and a
 *   margin keeps the broker's connect/close spacing across replicas too.
 * - Redis out of reach: a holder keeps a session that is open for `outageHold` past its last proof, so its clients
 *   go on receiving; it opens none. The others cannot take the lease meanwhile, and when Redis comes back (maybe
 *   empty) they leave it alone for the outage hold and a ttl, the time the old holder has to take it back.
 */
import type { Clock } from '../core/clock';
import type { RealtimeLeaseChange } from '../core/realtime-vocabulary';
import type { LeaseHolder, RedisLease } from '../store/redis-lease';

export interface LeaseTiming {
  ttlMs: number;
  renewEveryMs: number;
  /** How often a replica without the lease looks at it. */
  pollEveryMs: number;
  handoverMs: number;
  outageHoldMs: number;
}

/** The broker's spacing between a session's close and the next connect (docs/brokers.md#kis-pacing), and a margin. */
const HANDOVER_MS = 1_000 + 100;

export function leaseTiming(ttlMs: number, outageHoldMs: number): LeaseTiming {
  const renewEveryMs = Math.max(100, Math.round(ttlMs / 4));
  return { ttlMs, renewEveryMs, pollEveryMs: Math.min(250, renewEveryMs), handoverMs: HANDOVER_MS, outageHoldMs };
}

interface Holding {
  fence: number;
  /** Wall clock when taken (the lease-age metric), monotonic when taken (the handover). */
  acquiredAt: number;
  acquiredMono: number;
  /** Monotonic: when the last renewal that found the lease ours was sent. */
  provenSentAt: number;
}

export interface LeaseChange {
  change: RealtimeLeaseChange;
  fence: number | null;
  detail: string | null;
  /** Acquired from another replica seen holding it (a failover or a handover), not found free from the start. */
  takeover: boolean;
}

/** What the lease discipline needs of Redis (store/redis-lease.ts; a fake in the unit tests). */
export type FencedLease = Pick<RedisLease, 'takeFenced' | 'holder' | 'renew' | 'release'>;

export class HolderLease {
  private holding: Holding | undefined;
  private redisUp = true;
  /** Another replica held the lease when Redis went away: taken by nobody else before this (monotonic). */
  private cautionUntil = 0;
  private sawOutage = false;
  /** The last other replica seen holding the lease (kept while it is free, until this replica takes it). */
  private other: LeaseHolder | undefined;

  constructor(
    private readonly lease: FencedLease,
    private readonly fenceKey: string,
    readonly timing: LeaseTiming,
    private readonly clock: Clock,
    private readonly changed: (change: LeaseChange) => void,
  ) {}

  get fence(): number | undefined {
    return this.holding?.fence;
  }

  get acquiredAt(): number | undefined {
    return this.holding?.acquiredAt;
  }

  get reachable(): boolean {
    return this.redisUp;
  }

  /** How long until the next tick: a holder renews, the others look. */
  get nextTickMs(): number {
    return this.holding ? this.timing.renewEveryMs : this.timing.pollEveryMs;
  }

  /** One step: a holder renews (or takes back a lease Redis lost); the others take the lease if it is free. */
  async tick(): Promise<void> {
    const sentAt = this.clock.monotonic();
    try {
      if (this.holding) await this.renew(sentAt);
      else await this.look(sentAt);
    } catch (error) {
      if (this.redisUp) {
        this.redisUp = false;
        this.sawOutage = true;
        this.changed({ change: 'outage', fence: this.holding?.fence ?? null, detail: (error as Error).message, takeover: false });
      }
    }
    this.check();
  }

  private reached(): void {
    if (this.redisUp) return;
    this.redisUp = true;
    this.changed({ change: 'reachable', fence: this.holding?.fence ?? null, detail: null, takeover: false });
  }

  private async renew(sentAt: number): Promise<void> {
    const holding = this.holding!;
    const renewed = await this.lease.renew(this.timing.ttlMs);
    this.reached();
    if (this.holding !== holding) return;
    if (renewed) {
      holding.provenSentAt = sentAt;
      return;
    }
    // Not ours any more: Redis lost it (restarted empty), or it lapsed while this replica could not renew. Free, it
    // is taken back (the session goes on); held by another, the session is given up at once.
    const taken = await this.lease.takeFenced(this.timing.ttlMs, this.fenceKey);
    if (this.holding !== holding) return;
    if ('fence' in taken) {
      holding.fence = taken.fence;
      holding.provenSentAt = sentAt;
      this.changed({ change: 'retaken', fence: taken.fence, detail: null, takeover: false });
      return;
    }
    this.drop(`another replica holds the lease (fence ${taken.holder?.fence ?? 'unknown'})`);
  }

  private async look(sentAt: number): Promise<void> {
    const now = this.clock.monotonic();
    if (this.sawOutage) {
      // Back from an outage, the lease is read before anything is taken: found empty (Redis lost it) while another
      // replica held it before, it is left to that one for the outage hold and a ttl, the time it has to take it back.
      const holder = await this.lease.holder();
      this.reached();
      this.sawOutage = false;
      if (holder === undefined && this.other !== undefined) this.cautionUntil = now + this.timing.outageHoldMs + this.timing.ttlMs;
      this.seen(holder);
      return;
    }
    const taken = now >= this.cautionUntil ? await this.lease.takeFenced(this.timing.ttlMs, this.fenceKey) : { holder: await this.lease.holder() };
    this.reached();
    if ('fence' in taken) {
      this.holding = { fence: taken.fence, acquiredAt: this.clock.now(), acquiredMono: sentAt, provenSentAt: sentAt };
      // Another replica was seen holding it: the deployment's session was that one's (its clients were served).
      const takeover = this.other !== undefined;
      this.other = undefined;
      this.changed({ change: 'acquired', fence: taken.fence, detail: null, takeover });
      return;
    }
    this.seen(taken.holder);
  }

  /** The last holder seen is kept while the lease is free (a takeover, the caution after an outage need it). */
  private seen(holder: LeaseHolder | undefined): void {
    if (holder === undefined) return;
    this.cautionUntil = 0;
    this.other = holder;
  }

  /**
   * Gives the lease up when it could not be proven for the outage hold. Unproven for less, an open session is kept
   * (its clients go on receiving) but none is opened (`gateMs`).
   */
  check(): void {
    const holding = this.holding;
    if (!holding) return;
    const hold = Math.max(this.timing.outageHoldMs, this.timing.ttlMs - this.timing.renewEveryMs);
    if (this.clock.monotonic() >= holding.provenSentAt + hold) this.drop('the lease could not be proven for the outage hold');
  }

  private proven(now: number): boolean {
    return this.holding !== undefined && now < this.holding.provenSentAt + this.timing.ttlMs - this.timing.renewEveryMs;
  }

  /** How long before a session may open: only while the lease is proven, and after the handover. */
  gateMs(): number {
    const now = this.clock.monotonic();
    if (!this.holding || !this.proven(now)) return this.timing.pollEveryMs;
    return Math.max(0, this.holding.acquiredMono + this.timing.handoverMs - now);
  }

  private drop(detail: string): void {
    const fence = this.holding?.fence ?? null;
    this.holding = undefined;
    this.changed({ change: 'lost', fence, detail, takeover: false });
  }

  /** At shutdown, once the session is closed: the lease is given back so another replica takes over at once. */
  async release(): Promise<void> {
    if (!this.holding) return;
    const fence = this.holding.fence;
    this.holding = undefined;
    await this.lease.release().catch(() => false);
    this.changed({ change: 'released', fence, detail: null, takeover: false });
  }
}

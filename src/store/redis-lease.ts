/**
 * A lease in Redis, held by one owner at a time: the discipline of the token's issuance lease (redis-store.ts), and
 * of the real-time session's (realtime/holder-lease.ts), in one place. Taken with SET NX PX; renewed and given back
 * only by its owner, each by a script that compares the value first, so an owner whose lease lapsed and was taken by
 * a peer can neither extend nor delete the peer's.
 *
 * A fenced lease also draws a fencing number when it is taken: above every number drawn before, and at least the
 * Redis server's clock in ms, so it keeps growing even after Redis lost its data (a restart without persistence).
 * Whoever reads what a holder wrote keeps the highest number seen and ignores anything older: a holder that lost its
 * lease while paused cannot be heard over its successor.
 */
import type { Redis } from 'ioredis';

// Deletes the lease only if this owner still holds it.
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
// Extends the lease only if this owner still holds it; 0 when it does not (lapsed, taken, or Redis lost it).
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
// KEYS lease, fence counter; ARGV owner, ttl. The fencing number when taken, 0 when another holds it.
const TAKE_FENCED = `if not redis.call('set', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]), 'NX') then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = redis.call('INCR', KEYS[2])
if n < now then
  n = now
  redis.call('SET', KEYS[2], n)
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. n, 'PX', tonumber(ARGV[2]))
return n`;

type Scripted = Redis & {
  leaseRelease(key: string, value: string): Promise<number>;
  leaseRenew(key: string, value: string, ttlMs: number): Promise<number>;
  leaseTakeFenced(key: string, fence: string, owner: string, ttlMs: number): Promise<number>;
};

/** Defines the scripts once per connection (every lease on it shares them). */
function scripted(client: Redis): Scripted {
  const redis = client as Scripted;
  if (typeof (client as unknown as Partial<Scripted>).leaseRelease !== 'function') {
    redis.defineCommand('leaseRelease', { numberOfKeys: 1, lua: RELEASE });
    redis.defineCommand('leaseRenew', { numberOfKeys: 1, lua: RENEW });
    redis.defineCommand('leaseTakeFenced', { numberOfKeys: 2, lua: TAKE_FENCED });
  }
  return redis;
}

/** Who holds a fenced lease, read from its value (`owner fence`). */
export interface LeaseHolder {
  owner: string;
  fence: number;
}

function readHolder(value: string | null): LeaseHolder | undefined {
  const match = value === null ? null : /^(.+) (\d{1,16})$/.exec(value);
  return match ? { owner: match[1]!, fence: Number(match[2]) } : undefined;
}

export class RedisLease {
  private readonly redis: Scripted;
  /** What this owner wrote when it took the lease: renewals and the release compare with it. */
  private value: string;

  /** Every command may throw while Redis is out of reach: the caller decides what an outage means for it. */
  constructor(
    client: Redis,
    private readonly key: string,
    private readonly owner: string,
  ) {
    this.redis = scripted(client);
    this.value = owner;
  }

  /** Takes the lease if nobody holds it; otherwise how long until the holder's lapses. */
  async take(ttlMs: number): Promise<true | { busyForMs: number }> {
    if ((await this.redis.set(this.key, this.owner, 'PX', ttlMs, 'NX')) === 'OK') {
      this.value = this.owner;
      return true;
    }
    return { busyForMs: Math.max(100, await this.redis.pttl(this.key).catch(() => 1_000)) };
  }

  /** Takes the lease with a fencing number drawn from `fenceKey`; otherwise who holds it (undefined: nobody any more). */
  async takeFenced(ttlMs: number, fenceKey: string): Promise<{ fence: number } | { holder: LeaseHolder | undefined }> {
    const fence = await this.redis.leaseTakeFenced(this.key, fenceKey, this.owner, ttlMs);
    if (fence > 0) {
      this.value = `${this.owner} ${fence}`;
      return { fence };
    }
    return { holder: readHolder(await this.redis.get(this.key)) };
  }

  /** Who holds the fenced lease now (undefined: nobody). */
  async holder(): Promise<LeaseHolder | undefined> {
    return readHolder(await this.redis.get(this.key));
  }

  /** Extends the lease by `ttlMs` from now; false when this owner no longer holds it. */
  async renew(ttlMs: number): Promise<boolean> {
    return (await this.redis.leaseRenew(this.key, this.value, ttlMs)) === 1;
  }

  /** Gives the lease back if this owner still holds it. */
  async release(): Promise<boolean> {
    return (await this.redis.leaseRelease(this.key, this.value)) === 1;
  }
}

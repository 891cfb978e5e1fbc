/**
 * The replicas' wants in Redis (relay-wire.ts says what a want is): each replica's a hash, replaced whole at each
 * publication and expiring with the ttl, and a sorted set of heartbeats, so that a replica that died takes its wants
 * with it within the ttl and the holder unregisters what nobody wants any more. Both read Redis's own clock (TIME),
 * so the replicas' clocks need not agree. A notice on a channel tells the holder to read them now.
 */
import type { Redis } from 'ioredis';
import { readWants, wantFields, type Want } from './relay-wire';

// KEYS this replica's wants, the heartbeats; ARGV me, ttl, notice channel, then field, value, ...
const PUBLISH_WANTS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('DEL', KEYS[1])
if #ARGV > 3 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 4))
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
end
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) * 2)
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1`;
// KEYS the heartbeats; ARGV ttl. The replicas that beat within the ttl.
const LIVE = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf')`;

type Scripted = Redis & {
  relayWants(wants: string, replicas: string, me: string, ttl: string, channel: string, ...fields: string[]): Promise<number>;
  relayLive(replicas: string, ttl: number): Promise<string[]>;
};

interface WantsKeys {
  replicas: string;
  wantsOf(replica: string): string;
  wantsNotice: string;
}

export class WantsStore {
  private readonly redis: Scripted;

  /** Every command may throw while Redis is out of reach: the caller keeps what it had. */
  constructor(
    client: Redis,
    private readonly keys: WantsKeys,
    private readonly ttlMs: number,
  ) {
    this.redis = client as Scripted;
    if (typeof (client as unknown as Partial<Scripted>).relayWants !== 'function') {
      this.redis.defineCommand('relayWants', { numberOfKeys: 2, lua: PUBLISH_WANTS });
      this.redis.defineCommand('relayLive', { numberOfKeys: 1, lua: LIVE });
    }
  }

  /** A replica's wants, in place of what it published before, with its heartbeat; the holder is told. */
  async publish(replica: string, wants: Iterable<Want>): Promise<void> {
    const { keys } = this;
    await this.redis.relayWants(keys.wantsOf(replica), keys.replicas, replica, String(this.ttlMs), keys.wantsNotice, ...wantFields(wants));
  }

  /** The wants of every replica whose heartbeat is within the ttl, but `me`. */
  async others(me: string): Promise<Map<string, Map<string, Want>>> {
    const live = await this.redis.relayLive(this.keys.replicas, this.ttlMs);
    const pipeline = this.redis.pipeline();
    for (const replica of live) pipeline.hgetall(this.keys.wantsOf(replica));
    const answers = (await pipeline.exec()) ?? [];
    const out = new Map<string, Map<string, Want>>();
    live.forEach((replica, i) => {
      const [error, hash] = answers[i] ?? [null, {}];
      if (!error && replica !== me) out.set(replica, readWants(hash as Record<string, string>));
    });
    return out;
  }

  /** At shutdown: the replica's wants and heartbeat go at once, not after the ttl. */
  async remove(replica: string): Promise<void> {
    await Promise.all([this.redis.del(this.keys.wantsOf(replica)).catch(() => 0), this.redis.zrem(this.keys.replicas, replica).catch(() => 0)]);
  }
}

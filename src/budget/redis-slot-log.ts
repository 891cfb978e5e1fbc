import type { Redis } from 'ioredis';
import { POLL_WHILE_IN_FLIGHT_MS, type Reservation, type SlotLog, type SlotTiming } from './slot-log';

/**
 * The slot log of slot-log.ts in Redis, shared by the replicas: one sorted set per budget key, each member a slot
 * and its score the moment it stops counting, on the Redis server's clock (TIME), so the replicas' own clocks do
 * not matter. Every decision is one script, atomic: a count and a grant cannot be split by another replica's.
 * Beside it, the replicas' heartbeats, from which each knows how many share the budget (for its fallback share).
 */

const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// Keeps the key at least `ms` longer (never shortens what another slot needs).
const KEEP = `local function keep(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end`;

// KEYS[1] the budget key; ARGV limit, windowMs, pendingMs, id. Returns -1 when granted, else ms until a slot may free.
const RESERVE = `${NOW}
${KEEP}
local window = tonumber(ARGV[2])
local pending = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + pending + window, ARGV[4])
  keep(KEYS[1], pending + window + 1000)
  return -1
end
local soonest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
if soonest <= now + window then return math.max(1, soonest - now) end
return ${POLL_WHILE_IN_FLIGHT_MS}`;

// KEYS[1]; ARGV windowMs, id. Unconditional: a slot that lapsed before its answer counts again, to be safe.
const SETTLE = `${NOW}
${KEEP}
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
keep(KEYS[1], tonumber(ARGV[1]) + 1000)
return 1`;

// KEYS[1]; ARGV id, leftMs, id, leftMs, ...: this replica's slots counted while it could not reach Redis.
const ADOPT = `${NOW}
${KEEP}
for i = 1, #ARGV, 2 do
  local left = tonumber(ARGV[i + 1])
  redis.call('ZADD', KEYS[1], now + left, ARGV[i])
  keep(KEYS[1], left + 1000)
end
return 1`;

// KEYS[1] the replicas' set; ARGV id, ttlMs. Returns how many replicas beat within the ttl.
const HEARTBEAT = `${NOW}
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZCARD', KEYS[1])`;

type Scripted = Redis & {
  budgetReserve(key: string, limit: number, windowMs: number, pendingMs: number, id: string): Promise<number>;
  budgetSettle(key: string, windowMs: number, id: string): Promise<number>;
  budgetAdopt(key: string, ...pairs: Array<string | number>): Promise<number>;
  budgetHeartbeat(key: string, id: string, ttlMs: number): Promise<number>;
};

export class RedisSlotLog implements SlotLog {
  private readonly client: Scripted;
  private sequence = 0;

  /** `keyPrefix`: the store's, so deployments on one Redis keep apart; `replica`: this process's id in slot ids. */
  constructor(
    client: Redis,
    private readonly keyPrefix: string,
    private readonly replica: string,
  ) {
    this.client = client as Scripted;
    // defineCommand is idempotent per name on a client; the store may share this connection.
    this.client.defineCommand('budgetReserve', { numberOfKeys: 1, lua: RESERVE });
    this.client.defineCommand('budgetSettle', { numberOfKeys: 1, lua: SETTLE });
    this.client.defineCommand('budgetAdopt', { numberOfKeys: 1, lua: ADOPT });
    this.client.defineCommand('budgetHeartbeat', { numberOfKeys: 1, lua: HEARTBEAT });
  }

  private redisKey(key: string): string {
    return `${this.keyPrefix}budget:${key}`;
  }

  async reserve(key: string, limit: number, timing: SlotTiming): Promise<Reservation> {
    const id = `${this.replica}:${++this.sequence}`;
    const answer = await this.client.budgetReserve(this.redisKey(key), limit, timing.windowMs, timing.pendingMs, id);
    return answer < 0 ? { granted: true, id } : { granted: false, retryInMs: answer };
  }

  async settle(key: string, id: string, timing: SlotTiming): Promise<void> {
    await this.client.budgetSettle(this.redisKey(key), timing.windowMs, id);
  }

  async cancel(key: string, id: string): Promise<void> {
    await this.client.zrem(this.redisKey(key), id);
  }

  /** Hands Redis the slots this replica counted alone, with the time each has left. */
  async adopt(slots: ReadonlyArray<{ key: string; id: string; leftMs: number }>): Promise<void> {
    const byKey = new Map<string, Array<string | number>>();
    for (const { key, id, leftMs } of slots) {
      const pairs = byKey.get(key) ?? [];
      pairs.push(id, Math.ceil(leftMs));
      byKey.set(key, pairs);
    }
    for (const [key, pairs] of byKey) await this.client.budgetAdopt(this.redisKey(key), ...pairs);
  }

  /** This replica is alive; the answer is how many are (itself included). */
  heartbeat(ttlMs: number): Promise<number> {
    return this.client.budgetHeartbeat(`${this.keyPrefix}budget-replicas`, this.replica, ttlMs);
  }
}

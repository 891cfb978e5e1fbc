import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RedisConnection } from './redis-connection';
import type { RedisStoreConfig } from '../config/types';
import { StateError } from '../core/errors';
import { accountStateSchema, type AccountState } from './account-state';
import type { FileStateStore } from './file-store';
import { RedisLease } from './redis-lease';
import type { IssuanceLease, LoadResult, StateStore, StoreHealth } from './state-store';

/**
 * Account states shared by several replicas through Redis, each replica keeping its own copy in its state
 * directory. Issuance is guarded by a lease per account (redis-lease.ts: SET NX PX, released only by its owner), and a new
 * state is announced on a channel so every replica writes its files at once.
 *
 * The rule when Redis cannot be reached: keep serving the last good token from the local copy, report it, and
 * issue nothing. A peer that still reaches Redis may hold a newer token this replica cannot see; issuing blind
 * would race it into EGW00133, or hand the apps a second token (and the account holder a second KakaoTalk
 * notice) for nothing, since KIS answers with the same token within six hours anyway.
 */

// Shares a state only if the shared copy is missing or older (after Redis lost its data, or a save was lost).
const OFFER = `local current = redis.call('get', KEYS[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' and tonumber(decoded.revision or 0) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('set', KEYS[1], ARGV[1])
redis.call('publish', KEYS[2], ARGV[3])
return 1`;

// How long start-up waits for Redis's first answer before it serves from the local copy. A reachable Redis answers
// in milliseconds; a slow one costs nothing but a moment, since the replica syncs as soon as Redis is ready. A
// port that accepts and never answers would otherwise hold the start (no HTTP, no files, no SIGTERM) for good.
// Not an outage by itself: that is a refused or failed connection, or no answer within the connect timeout.
const START_WAIT_MS = 300;

type Scripted = Redis & {
  offerState(key: string, channel: string, json: string, revision: number, account: string): Promise<number>;
};

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

interface RedisStoreDeps {
  now: () => number;
  /** Told when Redis becomes unreachable or reachable again. */
  onHealth: (health: StoreHealth) => void;
}

export class RedisStateStore implements StateStore {
  readonly shared = true;
  private readonly client: Scripted;
  private readonly subscriber: Redis;
  private readonly owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private readonly listeners = new Set<(account: string) => void>();
  private readonly channel: string;
  private healthState: StoreHealth;
  /** False until the first connection attempt has an outcome. */
  private healthKnown = false;
  /** The accounts have loaded their states: from here on, Redis coming up is news they must act on. */
  private prepared = false;

  constructor(
    private readonly config: RedisStoreConfig,
    private readonly local: FileStateStore,
    connection: RedisConnection,
    private readonly deps: RedisStoreDeps,
  ) {
    this.client = connection.client as Scripted;
    this.client.defineCommand('offerState', { numberOfKeys: 2, lua: OFFER });
    this.subscriber = connection.subscriber;
    this.channel = `${config.keyPrefix}changed`;
    this.healthState = { up: false, downSince: deps.now(), message: 'not connected yet' };
    this.client.on('ready', () => this.setHealth(true, null));
    this.client.on('error', (error: Error) => this.setHealth(false, error.message));
    this.client.on('close', () => this.setHealth(false, 'connection closed'));
    // Every reconnect attempt ends in an 'error' event; unheard, ioredis prints each with a stack. The client's
    // events report the outage (once); the subscriber's are the same outage seen twice.
    this.subscriber.on('error', () => undefined);
    // The subscriber is shared (the real-time relay listens on it too): only this channel's messages name accounts.
    this.subscriber.on('message', (channel: string, account: string) => {
      if (channel !== this.channel) return;
      for (const listener of this.listeners) listener(account);
    });
  }

  private setHealth(up: boolean, message: string | null): void {
    const first = !this.healthKnown;
    if (!first && up === this.healthState.up) return;
    this.healthKnown = true;
    // Down from the start: the outage began when this replica began to wait for Redis.
    this.healthState = { up, downSince: up ? null : first ? this.healthState.downSince : this.deps.now(), message };
    // Reaching Redis during start-up is the normal case, not news; failing to is the outage, told once like any other.
    if (first && up && !this.prepared) return;
    this.deps.onHealth(this.healthState);
  }

  private key(kind: 'state' | 'lock', account: string): string {
    return `${this.config.keyPrefix}${kind}:${account}`;
  }

  /**
   * Connects, but a Redis that is down at start does not stop the replica: it serves its local copy, and joins
   * the others once Redis is ready (the 'ready' event, then the sync every account does on it). ioredis keeps
   * reconnecting on its own, so nothing here waits for a connection past START_WAIT_MS.
   */
  async prepare(): Promise<void> {
    await this.local.prepare();
    const subscribed = Promise.all([this.subscriber.connect().catch(() => undefined), this.subscriber.subscribe(this.channel)]).catch(() => undefined);
    const answered = this.firstAnswer(START_WAIT_MS);
    void this.client.connect().catch(() => undefined); // its failures arrive as 'error' events as well
    if (await answered) await Promise.race([subscribed, delay(START_WAIT_MS)]);
    this.prepared = true;
  }

  /** True once the client is ready, false on its first failure or after `ms`, whichever comes first. */
  private firstAnswer(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const settle = (ready: boolean) => () => {
        clearTimeout(timer);
        this.client.off('ready', onReady).off('error', onFailure).off('close', onFailure);
        resolve(ready);
      };
      const onReady = settle(true);
      const onFailure = settle(false);
      const timer = setTimeout(onFailure, ms);
      this.client.once('ready', onReady).once('error', onFailure).once('close', onFailure);
    });
  }

  async load(account: string): Promise<LoadResult> {
    let text: string | null;
    try {
      text = await this.client.get(this.key('state', account));
    } catch {
      return { ...(await this.local.load(account)), unavailable: true };
    }
    if (text === null) return { ...(await this.local.load(account)), localOnly: true };
    const parsed = (() => {
      try {
        return accountStateSchema.safeParse(JSON.parse(text));
      } catch {
        return undefined;
      }
    })();
    if (!parsed?.success || parsed.data.account !== account) {
      // A damaged shared copy is no reason to lose the local one, which will be offered in its place.
      return {
        ...(await this.local.load(account)),
        localOnly: true,
        problem: new StateError('corrupt', `the shared state of ${account} in Redis is not a valid state`),
      };
    }
    return { state: parsed.data };
  }

  async save(state: AccountState): Promise<void> {
    const json = JSON.stringify(state);
    try {
      await this.client.set(this.key('state', state.account), json);
      await this.client.publish(this.channel, state.account);
    } catch (error) {
      throw new StateError('write_failed', `cannot save the shared state of ${state.account}: Redis unavailable (${(error as Error).message})`);
    }
    await this.local.save(state);
  }

  saveLocal(state: AccountState): Promise<void> {
    return this.local.save(state);
  }

  async offer(state: AccountState): Promise<boolean> {
    try {
      const taken = await this.client.offerState(this.key('state', state.account), this.channel, JSON.stringify(state), state.revision, state.account);
      return taken === 1;
    } catch {
      return false;
    }
  }

  async remove(account: string): Promise<void> {
    await this.client.del(this.key('state', account)).catch(() => undefined);
    await this.local.remove(account);
  }

  list(): Promise<string[]> {
    return this.local.list();
  }

  async acquireIssuance(account: string): Promise<IssuanceLease | { busyForMs: number }> {
    const lease = new RedisLease(this.client, this.key('lock', account), this.owner);
    let taken: true | { busyForMs: number };
    try {
      taken = await lease.take(this.config.lockTtlMs);
    } catch {
      return { busyForMs: 5_000 };
    }
    if (taken !== true) return taken;
    return { release: async () => void (await lease.release().catch(() => false)) };
  }

  onChange(listener: (account: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  health(): StoreHealth {
    return this.healthState;
  }

  removeStaleTempFiles(accounts: readonly string[]): Promise<void> {
    return this.local.removeStaleTempFiles(accounts);
  }

  /** Stops listening; the connection is the wiring's, closed by it after every part that shares it. */
  close(): Promise<void> {
    this.listeners.clear();
    return Promise.resolve();
  }

  /** Who holds an account's issuance lease now (tests and diagnostics). */
  lockHolder(account: string): Promise<string | null> {
    return this.client.get(this.key('lock', account));
  }
}

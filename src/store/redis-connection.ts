import Redis, { type RedisOptions } from 'ioredis';
import type { RedisStoreConfig } from '../config/types';

/**
 * The replicas' Redis, as the wiring opens it once for every part that shares it: the state store (its commands
 * and its subscription), the call budget's slot log, and the gateway's revocations. Commands fail fast while
 * disconnected; the subscription waits an outage out.
 */
export interface RedisConnection {
  /** Commands: fail at once while disconnected, give up on a silent server. */
  client: Redis;
  /** The change notices: queued through an outage and renewed on every reconnect. */
  subscriber: Redis;
  /** The store's key prefix: every key any part writes starts with it. */
  keyPrefix: string;
}

export function openRedis(config: RedisStoreConfig): RedisConnection {
  const options: RedisOptions = {
    username: config.username,
    password: config.password,
    tls: config.tls ? { ca: config.tls.ca, rejectUnauthorized: config.tls.rejectUnauthorized } : undefined,
    connectTimeout: config.connectTimeoutMs,
    // Fail fast while disconnected: a caller must learn at once that the shared state is out of reach.
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    // Connected but silent (a Redis frozen, a firewall that accepts and drops): a command gives up after this,
    // and the connection is dropped and made again, so a tick (and a SIGTERM waiting on it) is never held longer.
    commandTimeout: config.connectTimeoutMs,
    socketTimeout: config.connectTimeoutMs,
    retryStrategy: (attempt) => Math.min(200 * attempt, 5_000),
    // At close, ioredis waits this long for a socket to end, and a socket that died before (Redis down) never
    // says so: the default 2 s would be spent on every stop during an outage.
    disconnectTimeout: 200,
    lazyConnect: true,
  };
  return {
    client: new Redis(config.url, options),
    // The subscription waits out an outage (queued, then renewed by ioredis on every reconnect) rather than fail:
    // a SUBSCRIBE given up on would leave the replica deaf to its peers once Redis is back.
    subscriber: new Redis(config.url, {
      ...options,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      commandTimeout: undefined,
      enableAutoPipelining: false,
    }),
    keyPrefix: config.keyPrefix,
  };
}

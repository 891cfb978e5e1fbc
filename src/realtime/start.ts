/**
 * Starting the endpoint beside a running gateway, and the descriptors it needs (each client connection and each
 * upstream session holds one), so that the sidecar's descriptor budget (http/descriptors.ts) keeps them apart from
 * the token files' share.
 */
import type { SidecarConfig } from '../config/types';
import type { Clock } from '../core/clock';
import type { EventBus } from '../core/events';
import type { GatewayCredentials } from '../gateway/start';
import type { GatewayAccount } from '../gateway/types';
import type { Logger } from '../logging/logger';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { RedisConnection } from '../store/redis-connection';
import { startRealtime, type RunningRealtime } from './endpoint';
import { leaseTiming } from './holder-lease';
import { logRealtimeEvents } from './log';
import { ReplicaRelay } from './replicas';

export type { RunningRealtime } from './endpoint';

const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\./.test(host);

export async function startRealtimeEndpoint(start: {
  config: SidecarConfig;
  account(name: string): GatewayAccount | undefined;
  credentials: GatewayCredentials;
  bus: EventBus;
  logger: Logger;
  clock: Clock;
  /** The replicas' Redis (a Redis store): every account's session is one per app key across them. */
  redis?: RedisConnection;
}): Promise<RunningRealtime> {
  const { config, logger } = start;
  const relay = start.redis && relayFactory(start.redis, start, config);
  if (!isLoopback(config.realtime.host)) {
    logger.warn(
      { host: config.realtime.host },
      "the real-time endpoint listens beyond this host: any process that reaches it with a client's local credentials receives the account's real-time data",
    );
  }
  const stopLogging = new AbortController();
  const unsubscribe = logRealtimeEvents(start.bus, logger, start.clock, stopLogging.signal);
  let running: RunningRealtime;
  try {
    running = await startRealtime({ ...start, relay });
  } catch (error) {
    unsubscribe();
    stopLogging.abort();
    throw error;
  }
  logger.info(
    { url: running.url, maxClients: running.maxClients },
    'real-time endpoint serving /{account}/tryitout (KIS) and /{account}/api/dostk/websocket (Kiwoom)',
  );
  return {
    url: running.url,
    maxClients: running.maxClients,
    get connections() {
      return running.connections;
    },
    get listening() {
      return running.listening;
    },
    close: async () => {
      await running.close();
      unsubscribe();
      stopLogging.abort();
    },
  };
}

/** Each account's part in its deployment's session, under one replica name for this process. */
function relayFactory(redis: RedisConnection, start: { bus: EventBus; clock: Clock }, config: SidecarConfig) {
  const replica = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const timing = leaseTiming(config.realtime.replicas.leaseTtlMs, config.realtime.replicas.outageHoldMs);
  return (account: GatewayAccount) =>
    new ReplicaRelay({ redis, replica, account, clock: start.clock, random: Math.random, policy: config.realtime, bus: start.bus, timing });
}

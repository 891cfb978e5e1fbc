import type { RequestListener } from 'node:http';
import { isIP } from 'node:net';
import { Agent, type Dispatcher } from 'undici';
import type { CallBudget } from '../budget/call-budget';
import type { SidecarConfig } from '../config/types';
import type { EventBus } from '../core/events';
import type { Logger } from '../logging/logger';
import { GATEWAY_BROKER_CONNECTIONS } from '../http/descriptors';
import { listen, type RunningServer } from '../http/server';
import { sendAnswer } from './requests';
import { ClientBook } from './clients';
import { createGatewayHandler } from './handler';
import { LocalApprovalKeys } from './local-approval-keys';
import { LocalTokens, loadOrCreateTokenKey } from './local-tokens';
import { FileRevocationStore, Revocations, SharedRevocationStore } from './revocations';
import type { GatewayAccount } from './types';
import type { Redis } from 'ioredis';

/**
 * Starts the gateway: its signing key, its revocations, a keep-alive pool to the brokers, and its own listener,
 * within its share of the descriptors. The budget is the sidecar's (every call to a broker, the sidecar's own
 * included, takes a slot of it). Clients and settings are read once: a change to `gateway:` takes a restart.
 */

export interface RunningGateway {
  url: string;
  server: RunningServer;
  /** The clients' local credentials, which the real-time endpoint (src/realtime/) checks as the gateway does. */
  credentials: GatewayCredentials;
  close(): Promise<void>;
}

export interface GatewayCredentials {
  clients: ClientBook;
  tokens: LocalTokens;
  approvalKeys: LocalApprovalKeys;
}

interface GatewayStart {
  config: SidecarConfig;
  account: (name: string) => GatewayAccount | undefined;
  budget: CallBudget;
  bus: EventBus;
  logger: Logger;
  /** Wall clock, epoch ms. */
  now: () => number;
  /** The connections the gateway's port may hold (its share of the descriptor budget). */
  maxConnections: number;
  /** The store's Redis, when replicas share one: revocations are shared there too. */
  redis?: { client: Redis; keyPrefix: string };
  /** Tests inject theirs. */
  dispatcher?: Dispatcher;
}

const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));

/** How often a replica reads the revocations the others made. */
const REVOCATION_REFRESH_MS = 2_000;

export async function startGateway(start: GatewayStart): Promise<RunningGateway> {
  const { config: all, bus, logger } = start;
  const config = all.gateway;
  if (!isLoopback(config.host)) {
    logger.warn(
      { host: config.host },
      "the gateway listens beyond this host: any process that reaches it with a client's local credentials calls the broker as the account",
    );
  }
  // The port first: a port in use ends the start before anything (the signing key included) is written.
  const ready: { handler?: RequestListener } = {};
  const slowest = Math.max(0, ...all.accounts.map((a) => a.http.timeoutMs));
  // Calls wait up to maxWait for the budget, then up to the broker's timeout: the request timeout covers both.
  const server = await listen(
    (req, res) => (ready.handler ? ready.handler(req, res) : sendAnswer(res, { status: 503, body: { error: 'the gateway is starting' } }, true)),
    config.host,
    config.port,
    config.maxWaitMs + 2 * slowest + 5_000,
    {
      maxConnections: start.maxConnections,
      requestsStartUnauthenticated: true,
      onDrop: (reason, remoteAddress) => bus.emit('http.connection_dropped', { reason, remoteAddress }),
    },
  );
  let key: Buffer;
  let revocations: Revocations;
  try {
    key = await loadOrCreateTokenKey(config.tokenKeyFile);
    const file = new FileRevocationStore(all.stateDir);
    revocations = new Revocations(start.redis ? new SharedRevocationStore(start.redis.client, start.redis.keyPrefix, file) : file);
    await revocations.refresh(start.now());
  } catch (error) {
    await server.close();
    throw error;
  }
  const clients = new ClientBook(config.clients);
  const credentials: GatewayCredentials = {
    clients,
    tokens: new LocalTokens(key, (name) => clients.byClientName(name), revocations),
    approvalKeys: new LocalApprovalKeys(key, config.clients),
  };
  const ownDispatcher = start.dispatcher ? undefined : new Agent({ connections: GATEWAY_BROKER_CONNECTIONS, keepAliveTimeout: 30_000 });
  ready.handler = createGatewayHandler({
    config,
    account: start.account,
    ...credentials,
    budget: start.budget,
    dispatcher: start.dispatcher ?? ownDispatcher!,
    bus,
    now: start.now,
    authenticated: (socket) => server.guard.authenticated(socket),
  });
  const refresh = start.redis ? setInterval(() => void revocations.refresh(start.now()).catch(() => undefined), REVOCATION_REFRESH_MS) : undefined;
  refresh?.unref();
  let closing: Promise<void> | undefined;
  logger.info(
    { url: server.url, clients: config.clients.length, maxConnections: server.maxConnections, shared: start.redis !== undefined },
    'gateway serving /{account}/... for its clients',
  );
  return {
    url: server.url,
    server,
    credentials,
    close: () =>
      (closing ??= (async () => {
        clearInterval(refresh);
        await server.close();
        await ownDispatcher?.close();
      })()),
  };
}

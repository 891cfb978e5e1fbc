import { performance } from 'node:perf_hooks';
import { Agent, type Dispatcher } from 'undici';
import { isIP } from 'node:net';
import { listen, type RunningServer } from '../http/server';
import type { Sidecar } from '../sidecar';
import { callsPerSecondOf } from '../config/gateway';
import { CallBudget } from './budget';
import { ClientBook } from './clients';
import { budgetKeyOf, createGatewayHandler, SIDECAR_CLIENT } from './gateway';
import { LocalTokens, loadOrCreateTokenKey } from './local-tokens';
import { noBudget } from '../lifecycle/account-context';

/**
 * Starts the gateway beside a running sidecar: its signing key, its call budget (on the store's Redis when
 * there is one), a keep-alive pool to the brokers, and its own listener. Clients and settings are read once:
 * a change to `gateway:` takes a restart (a reload says so).
 */

export interface RunningGateway {
  url: string;
  close(): Promise<void>;
}

const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));

// The proving calls (docs/brokers.md#kis-proof-call, #kiwoom-proof-call): Kiwoom counts them under their api-id.
const PROOF_API = { kis: 'FHKST01010100', kiwoom: 'ka10001' } as const;

// Idle keep-alive connections to a broker host: enough for the budget's 18 calls a second with slow answers.
const BROKER_CONNECTIONS = 32;

export async function startGateway(sidecar: Sidecar, options: { dispatcher?: Dispatcher } = {}): Promise<RunningGateway> {
  const { config: all, bus, logger } = sidecar;
  const config = all.gateway;
  const key = await loadOrCreateTokenKey(config.tokenKeyFile);
  const redis = sidecar.store.callBudgetRedis?.();
  const budget = await CallBudget.create(
    {
      windowMs: 1_000 + config.windowMarginMs,
      maxWaitMs: config.maxWaitMs,
      now: () => performance.now(),
      onShared: (up, message) => bus.emit('gateway.budget_shared', { up, message }),
    },
    redis,
  );
  const ownDispatcher = options.dispatcher ? undefined : new Agent({ connections: BROKER_CONNECTIONS, keepAliveTimeout: 30_000 });
  const handler = createGatewayHandler({
    config,
    account: (name) => sidecar.gatewayAccount(name),
    clients: new ClientBook(config.clients),
    tokens: new LocalTokens(key),
    budget,
    dispatcher: options.dispatcher ?? ownDispatcher!,
    bus,
    now: () => sidecar.clock.now(),
  });
  // The sidecar's own proofs spend the same budget: they wait for a slot, however long the clients keep it busy.
  sidecar.gateBudgetedCalls(async (account) => {
    const key = budgetKeyOf(account, PROOF_API[account.provider]);
    const ref = { name: account.name, provider: account.provider, env: account.env };
    for (;;) {
      const slot = await budget.take(key, callsPerSecondOf(config, account), SIDECAR_CLIENT);
      bus.emit('gateway.budget', { account: ref, granted: slot.granted, waitedMs: slot.waitedMs });
      if (slot.granted) return slot.answered;
      if (budget.isDestroyed) return noBudget;
    }
  });
  sidecar.metrics.watchGateway(() => {
    const waiting = new Map<string, number>();
    for (const [key, length] of budget.waiting()) {
      const account = key.split('\u0000')[0]!;
      waiting.set(account, (waiting.get(account) ?? 0) + length);
    }
    return sidecar.config.accounts.map((account) => ({
      ref: { name: account.name, provider: account.provider, env: account.env },
      scope: account.provider === 'kiwoom' ? ('api_id' as const) : ('app_key' as const),
      limit: callsPerSecondOf(config, account),
      waiting: waiting.get(account.name) ?? 0,
    }));
  });
  if (!isLoopback(config.host)) {
    logger.warn(
      { host: config.host },
      "the gateway listens beyond this host: any process that reaches it with a client's local credentials calls the broker as the account",
    );
  }
  let server: RunningServer;
  try {
    // Calls wait up to maxWait for the budget, then up to the broker's timeout: the request timeout covers both.
    const slowest = Math.max(0, ...all.accounts.map((a) => a.http.timeoutMs));
    server = await listen(handler, config.host, config.port, config.maxWaitMs + 2 * slowest + 5_000, {
      onDrop: (reason, remoteAddress) => bus.emit('http.connection_dropped', { reason, remoteAddress }),
    });
  } catch (error) {
    budget.destroy();
    await ownDispatcher?.close();
    throw error;
  }
  logger.info({ url: server.url, clients: config.clients.length, shared: redis !== undefined }, 'gateway serving /{account}/... for its clients');
  return {
    url: server.url,
    close: async () => {
      sidecar.gateBudgetedCalls(undefined);
      await server.close();
      budget.destroy();
      await ownDispatcher?.close();
    },
  };
}

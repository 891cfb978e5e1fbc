import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import type { SlackNotifier } from './alerts/notifier';
import { CallBudget } from './budget/call-budget';
import { accountGate } from './budget/gate';
import { accountOfQueue, pendingMsOf } from './budget/keys';
import { RedisSlotLog } from './budget/redis-slot-log';
import { budgetOptionsOf, callsPerSecondOf } from './config/gateway';
import type { AccountConfig, SidecarConfig } from './config/types';
import type { FileSystem } from './core/atomic-file';
import { systemClock, type Clock } from './core/clock';
import { EventBus, type BudgetMode } from './core/events';
import { Limiter } from './core/limiter';
import { SecretRegistry } from './core/secrets';
import { AccountLifecycle } from './lifecycle/account';
import { CustomProbe } from './lifecycle/custom-probe';
import { logEvents } from './logging/log-events';
import { createLogger, type Logger } from './logging/logger';
import { MetricsExporter, type BudgetView } from './metrics/exporter';
import { createProvider } from './providers';
import { createBrokerDispatcher } from './providers/broker-http';
import { Sidecar } from './sidecar';
import { SinkSupervisor } from './sinks/supervisor';
import { FileStateStore } from './store/file-store';
import type { RedisConnection } from './store/redis-connection';
import type { StateStore } from './store/state-store';
import { VERSION } from './version';
import type { GatewayCredentials, RunningGateway } from './gateway/start';
import type { RunningRealtime } from './realtime/start';
import { createHttpApp } from './http/app';
import { listen, type RunningServer } from './http/server';

/**
 * The one place where the sidecar's parts are made and joined: config → store (files, or Redis shared by
 * replicas) → call budget → sinks → accounts (provider, budget gate, lifecycle, probe) → metrics → Slack. Each part
 * gets what it needs here and nothing is set on it afterwards; what the config does not use is not even loaded
 * (ioredis for a file store, the Slack client without a `slack:` section; the gateway's modules are loaded by
 * cli/boot.ts only when it is enabled). Every dependency with a side effect can be injected (SidecarOptions).
 */

export interface SidecarOptions {
  clock?: Clock;
  dispatcher?: Dispatcher;
  logger?: Logger;
  secrets?: SecretRegistry;
  fs?: FileSystem;
  random?: () => number;
  /** File-system events for sink repair (default on). */
  watch?: boolean;
  sweepIntervalMs?: number;
  /** How long a sink operation may run before the sink counts as stuck (tests shorten it). */
  sinkStuckAfterMs?: number;
  /** Hold the state-directory lock (default on; off only for read-only commands). */
  lock?: boolean;
}

const DEFAULT_SWEEP_INTERVAL_MS = 5_000;

export function createSidecar(config: SidecarConfig, options: SidecarOptions = {}): Sidecar {
  const clock = options.clock ?? systemClock;
  const secrets = options.secrets ?? new SecretRegistry();
  for (const account of config.accounts) {
    secrets.add(account.appKey);
    secrets.add(account.appSecret);
  }
  secrets.add(config.server.adminToken);
  const logger = options.logger ?? createLogger({ level: config.log.level, format: config.log.format, timeZone: config.log.timeZone, secrets });
  const bus = new EventBus((event, error) => logger.error({ event, err: error }, 'an event subscriber failed'));
  const stop = new AbortController();
  logEvents(bus, logger, clock, stop.signal);

  const local = new FileStateStore(config.stateDir, () => clock.now(), options.fs);
  let store: StateStore = local;
  let redis: RedisConnection | undefined;
  if (config.store.type === 'redis') {
    secrets.add(config.store.password);
    secrets.add(new URL(config.store.url).password || undefined);
    // Loaded only for a shared store: ioredis alone is a sixth of an idle sidecar's memory.
    const { openRedis } = require('./store/redis-connection') as typeof import('./store/redis-connection');
    const { RedisStateStore } = require('./store/redis-store') as typeof import('./store/redis-store');
    redis = openRedis(config.store);
    store = new RedisStateStore(config.store, local, redis, {
      now: () => clock.now(),
      onHealth: (health) => bus.emit('store.health', { up: health.up, message: health.message }),
    });
  }
  const replica = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const budget = new CallBudget(
    { ...budgetOptionsOf(config.gateway), now: () => performance.now(), onMode: (change) => bus.emit('budget.mode', change) },
    redis && new RedisSlotLog(redis.client, redis.keyPrefix, replica),
  );
  const limiter = new Limiter(config.limits.maxConcurrentRequests);
  const sinks = new SinkSupervisor({
    clock,
    bus,
    fs: options.fs,
    watch: options.watch ?? true,
    sweepIntervalMs: options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS,
    stuckAfterMs: options.sinkStuckAfterMs,
  });

  // Broker connection pools, one per timeout setting (accounts with the same settings share theirs).
  const dispatchers = new Map<string, Dispatcher>();
  const dispatcherFor = (account: AccountConfig): Dispatcher => {
    if (options.dispatcher) return options.dispatcher;
    const key = `${account.http.connectTimeoutMs}/${account.http.timeoutMs}`;
    let dispatcher = dispatchers.get(key);
    if (!dispatcher) dispatchers.set(key, (dispatcher = createBrokerDispatcher(account.http)));
    return dispatcher;
  };

  // The sidecar is made last, but the metrics and Slack read its accounts' views at each scrape or tick.
  const made: { sidecar?: Sidecar } = {};
  const views = () => made.sidecar?.views() ?? [];
  let notifier: SlackNotifier | undefined;
  const metrics = new MetricsExporter(bus, views, () => clock.now(), {
    version: VERSION,
    compat: config.metrics.compat,
    slackQueueLength: () => notifier?.queueLength ?? 0,
    store: { type: config.store.type, health: () => store.health() },
    budget: () => budgetView(budget, made.sidecar?.config ?? config),
    gateway: config.gateway.enabled,
  });
  if (config.slack) {
    // Loaded only with a `slack:` section: the webhook client and the message builders are not small.
    const { SlackNotifier: Notifier } = require('./alerts/notifier') as typeof import('./alerts/notifier');
    notifier = new Notifier({
      config: config.slack,
      stateDir: config.stateDir,
      views,
      clock,
      bus,
      secrets,
      version: VERSION,
      dispatcher: options.dispatcher,
      fs: options.fs,
      storeHealth: () => store.health(),
    });
  }

  const sidecar = (made.sidecar = new Sidecar({
    config,
    clock,
    bus,
    logger,
    secrets,
    store,
    budget,
    sinks,
    metrics,
    notifier,
    lock: options.lock ?? true,
    stop,
    redis,
    injectedDispatcher: options.dispatcher,
    accountParts: (account) => {
      const ref = { name: account.name, provider: account.provider, env: account.env };
      const gate = accountGate(budget, {
        account,
        // The limit in force when the account was added (a change of `gateway:` takes a restart).
        limit: callsPerSecondOf(config.gateway, account),
        pendingMs: pendingMsOf(account),
        onSlot: (granted, waitedMs) => bus.emit('budget.slot', { account: ref, granted, waitedMs }),
      });
      const lifecycle = new AccountLifecycle({
        config: account,
        provider: createProvider(account, dispatcherFor(account), gate),
        store,
        limiter,
        sinks,
        bus,
        clock,
        secrets,
        random: options.random,
      });
      const probe = account.probe && new CustomProbe(lifecycle.ref, account.probe, dispatcherFor(account), clock, bus);
      return { lifecycle, probe };
    },
    release: async () => {
      await Promise.all([...dispatchers.values()].map((d) => d.close().catch(() => undefined)));
      redis?.subscriber.disconnect();
      redis?.client.disconnect();
    },
  }));
  return sidecar;
}

/** Where the budget is counted, and each account's limit and calls waiting now (for the metrics). */
function budgetView(budget: CallBudget, config: SidecarConfig): { mode: BudgetMode; accounts: BudgetView[] } {
  const waiting = new Map<string, number>();
  for (const [queue, length] of budget.waiting()) {
    const account = accountOfQueue(queue);
    waiting.set(account, (waiting.get(account) ?? 0) + length);
  }
  return {
    mode: budget.mode,
    accounts: config.accounts.map((account) => ({
      ref: { name: account.name, provider: account.provider, env: account.env },
      scope: account.provider === 'kiwoom' ? ('api_id' as const) : ('app_key' as const),
      limit: callsPerSecondOf(config.gateway, account),
      waiting: waiting.get(account.name) ?? 0,
    })),
  };
}

/** The sidecar's HTTP endpoints (/metrics, /healthz, /readyz, /status, /renew) on their port; /healthz shows the gateway's. */
export function listenHttp(sidecar: Sidecar, maxConnections: number, gateway: () => RunningGateway | undefined): Promise<RunningServer> {
  const { config } = sidecar;
  const app = createHttpApp({
    control: sidecar,
    metrics: sidecar.metrics,
    now: () => sidecar.clock.now(),
    adminToken: config.server.adminToken,
    secrets: sidecar.secrets,
    bus: sidecar.bus,
    gateway: () => {
      const running = gateway();
      return running && gatewayHealthOf(running);
    },
  });
  return listen(app, config.server.host, config.server.port, config.server.requestTimeoutMs, {
    maxConnections,
    onDrop: (reason, remoteAddress) => sidecar.bus.emit('http.connection_dropped', { reason, remoteAddress }),
  });
}

/** The gateway in front of a sidecar: its accounts, its budget, its bus, its store's Redis for shared revocations. */
export function startSidecarGateway(sidecar: Sidecar, maxConnections: number): Promise<RunningGateway> {
  // Loaded only when the gateway is on: its modules, jose and the broker pool are of no use otherwise.
  const { startGateway } = require('./gateway/start') as typeof import('./gateway/start');
  return startGateway({
    config: sidecar.config,
    account: (name) => sidecar.gatewayAccount(name),
    budget: sidecar.budget,
    bus: sidecar.bus,
    logger: sidecar.logger,
    now: () => sidecar.clock.now(),
    maxConnections,
    redis: sidecar.redis,
    dispatcher: sidecar.injectedDispatcher,
  });
}

/** Whether the gateway's port listens, and what it holds now, for /healthz. */
export function gatewayHealthOf(gateway: RunningGateway): { listening: boolean; connections: number; maxConnections: number; refusedLastMinute: number } {
  const { server } = gateway;
  return {
    listening: server.listening,
    connections: server.guard.connections,
    maxConnections: server.maxConnections,
    refusedLastMinute: server.guard.refusedWithin(60_000),
  };
}

/** The real-time endpoint in front of a sidecar, its clients checked with the gateway's credentials (its modules, ws among them, loaded only now). */
export function startSidecarRealtime(sidecar: Sidecar, credentials: GatewayCredentials): Promise<RunningRealtime> {
  const { startRealtimeEndpoint } = require('./realtime/start') as typeof import('./realtime/start');
  return startRealtimeEndpoint({
    config: sidecar.config,
    account: (name) => sidecar.gatewayAccount(name),
    credentials,
    bus: sidecar.bus,
    logger: sidecar.logger,
    clock: sidecar.clock,
    redis: sidecar.redis,
  });
}

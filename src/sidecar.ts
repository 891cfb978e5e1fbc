import type { Dispatcher } from 'undici';
import type { AccountConfig, SidecarConfig } from './config/types';
import { systemClock, type Clock } from './core/clock';
import { EventBus } from './core/events';
import { createLogger, type Logger } from './logging/logger';
import { Loop } from './core/loop';
import { SecretRegistry } from './core/secrets';
import type { FileSystem } from './core/atomic-file';
import { describeError } from './core/errors';
import { AccountLifecycle } from './lifecycle/account';
import type { RenewOutcome } from './lifecycle/issuance';
import { CustomProbe } from './lifecycle/custom-probe';
import { accountViewOf, type AccountView } from './lifecycle/views';
import { MetricsExporter, type BudgetView } from './metrics/exporter';
import { createProvider } from './providers';
import { createBrokerDispatcher } from './providers/broker-http';
import { SinkSupervisor } from './sinks/supervisor';
import { SlackNotifier } from './alerts/notifier';
import { FileStateStore } from './store/file-store';
import type { StateStore } from './store/state-store';
import { Limiter, forEachBounded } from './core/limiter';
import { StateDirectoryLock } from './store/lock';
import { logEvents } from './logging/log-events';
import type { SidecarControl } from './http/app';
import type { GatewayAccount } from './gateway/types';
import { VERSION } from './version';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { CallBudget } from './budget/call-budget';
import { RedisSlotLog } from './budget/redis-slot-log';
import { accountGate } from './budget/gate';
import { accountOfQueue, pendingMsOf } from './budget/keys';
import type { BudgetMode } from './core/events';
import { budgetOptionsOf, callsPerSecondOf } from './config/gateway';

/**
 * Wires the parts together, and nothing else: config → accounts → lifecycle → (store → sinks) → metrics,
 * logs and HTTP. Every dependency with a side effect (clock, HTTP dispatcher, file system, randomness) can be
 * injected, which is how the tests run the real thing on a fake clock against the simulator.
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

interface AccountEntry {
  lifecycle: AccountLifecycle;
  probe: CustomProbe | undefined;
  loops: Loop[];
  stop: AbortController;
}

interface ReloadSummary {
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: number;
  /** Top-level settings that changed but only take effect at a restart. */
  needsRestart: string[];
}

/** The budget's log in the store's Redis, shared by the replicas; none for a file store (the budget counts in memory). */
function sharedBudgetLog(store: StateStore): RedisSlotLog | undefined {
  const redis = store.callBudgetRedis?.();
  return redis && new RedisSlotLog(redis.client, redis.keyPrefix, `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`);
}

export class StartupError extends Error {
  constructor(readonly problems: string[]) {
    super(`cannot start:\n  ${problems.join('\n  ')}`);
  }
}

// A tick that has run this long is stuck: longer than any request timeout plus the slowest disk write.
const STUCK_AFTER_MS = 5 * 60_000;
const DEFAULT_SWEEP_INTERVAL_MS = 5_000;
// On close, sink writes in progress are waited for (none is cut in half) but a file system that stopped answering is not.
const SINK_IDLE_BOUND_ON_CLOSE_MS = 5_000;
// Accounts started side by side at start-up: enough to overlap the fsyncs, few enough not to flood the disk.
export const START_CONCURRENCY = 16;

export class Sidecar implements SidecarControl {
  readonly bus: EventBus;
  readonly secrets: SecretRegistry;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly sinks: SinkSupervisor;
  readonly metrics: MetricsExporter;
  readonly store: StateStore;
  private readonly limiter: Limiter;
  private readonly accounts = new Map<string, AccountEntry>();
  private readonly dispatchers = new Map<string, Dispatcher>();
  /** The loops not tied to one account: the sinks' and the alerts'. */
  private readonly loops: Loop[] = [];
  private readonly stop = new AbortController();
  private running = false;
  private lock: StateDirectoryLock | undefined;
  readonly notifier: SlackNotifier | undefined;
  private current: SidecarConfig;
  /** The per-second call budget every request to a broker takes a slot of: the gateway's clients' and the sidecar's own. */
  readonly budget: CallBudget;

  constructor(
    config: SidecarConfig,
    private readonly options: SidecarOptions = {},
  ) {
    this.current = config;
    this.clock = options.clock ?? systemClock;
    this.secrets = options.secrets ?? new SecretRegistry();
    for (const account of config.accounts) {
      this.secrets.add(account.appKey);
      this.secrets.add(account.appSecret);
    }
    this.secrets.add(config.server.adminToken);
    this.logger = options.logger ?? createLogger({ level: config.log.level, format: config.log.format, timeZone: config.log.timeZone, secrets: this.secrets });
    this.bus = new EventBus((event, error) => this.logger.error({ event, err: error }, 'an event subscriber failed'));
    logEvents(this.bus, this.logger, this.clock, this.stop.signal);
    const local = new FileStateStore(config.stateDir, () => this.clock.now(), options.fs);
    if (config.store.type === 'redis') {
      this.secrets.add(config.store.password);
      this.secrets.add(new URL(config.store.url).password || undefined);
      // Loaded only for a shared store: ioredis alone is a sixth of an idle sidecar's memory.
      const { RedisStateStore } = require('./store/redis-store') as typeof import('./store/redis-store');
      this.store = new RedisStateStore(config.store, local, {
        now: () => this.clock.now(),
        onHealth: (health) => this.bus.emit('store.health', { up: health.up, message: health.message }),
      });
    } else {
      this.store = local;
    }
    this.budget = new CallBudget(
      { ...budgetOptionsOf(config.gateway), now: () => performance.now(), onMode: (change) => this.bus.emit('budget.mode', change) },
      sharedBudgetLog(this.store),
    );
    this.limiter = new Limiter(config.limits.maxConcurrentRequests);
    this.sinks = new SinkSupervisor({
      clock: this.clock,
      bus: this.bus,
      fs: options.fs,
      watch: options.watch ?? true,
      sweepIntervalMs: options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS,
      stuckAfterMs: options.sinkStuckAfterMs,
    });
    this.metrics = new MetricsExporter(
      this.bus,
      () => this.views(),
      () => this.clock.now(),
      {
        version: VERSION,
        compat: config.metrics.compat,
        slackQueueLength: () => this.notifier?.queueLength ?? 0,
        store: { type: config.store.type, health: () => this.store.health() },
        budget: () => this.budgetView(),
        gateway: config.gateway.enabled,
      },
    );
    if (config.slack) {
      this.notifier = new SlackNotifier({
        config: config.slack,
        stateDir: config.stateDir,
        views: () => this.views(),
        clock: this.clock,
        bus: this.bus,
        secrets: this.secrets,
        version: VERSION,
        dispatcher: options.dispatcher,
        fs: options.fs,
        storeHealth: () => this.store.health(),
      });
    }
    for (const account of config.accounts) this.addAccount(account);
  }

  private dispatcherFor(account: AccountConfig): Dispatcher {
    if (this.options.dispatcher) return this.options.dispatcher;
    const key = `${account.http.connectTimeoutMs}/${account.http.timeoutMs}`;
    let dispatcher = this.dispatchers.get(key);
    if (!dispatcher) {
      dispatcher = createBrokerDispatcher(account.http);
      this.dispatchers.set(key, dispatcher);
    }
    return dispatcher;
  }

  /** The running configuration (its accounts change with a reload). */
  get config(): SidecarConfig {
    return this.current;
  }

  private addAccount(account: AccountConfig): AccountEntry {
    this.secrets.add(account.appKey);
    this.secrets.add(account.appSecret);
    const ref = { name: account.name, provider: account.provider, env: account.env };
    const gate = accountGate(this.budget, {
      account,
      limit: callsPerSecondOf(this.current.gateway, account),
      pendingMs: pendingMsOf(account),
      onSlot: (granted, waitedMs) => this.bus.emit('budget.slot', { account: ref, granted, waitedMs }),
    });
    const lifecycle = new AccountLifecycle({
      config: account,
      provider: createProvider(account, this.dispatcherFor(account), gate),
      store: this.store,
      limiter: this.limiter,
      sinks: this.sinks,
      bus: this.bus,
      clock: this.clock,
      secrets: this.secrets,
      random: this.options.random,
    });
    const probe = account.probe && new CustomProbe(lifecycle.ref, account.probe, this.dispatcherFor(account), this.clock, this.bus);
    const entry: AccountEntry = { lifecycle, probe, loops: [], stop: new AbortController() };
    this.accounts.set(account.name, entry);
    this.sinks.addAccount(lifecycle.ref, account.sinks);
    this.metrics.addAccount(lifecycle.ref, account.sinks);
    return entry;
  }

  account(name: string): AccountLifecycle | undefined {
    return this.accounts.get(name)?.lifecycle;
  }

  /** An account as the gateway uses it; a token found dead wakes the account's loop for what follows. */
  gatewayAccount(name: string): GatewayAccount | undefined {
    const entry = this.accounts.get(name);
    if (!entry) return undefined;
    const { lifecycle } = entry;
    return {
      config: lifecycle.config,
      ref: lifecycle.ref,
      token: () => lifecycle.gatewayToken(),
      tokenRefused: async (accessToken) => {
        await lifecycle.tokenRefused(accessToken);
        entry.loops[0]?.wake();
      },
      approvalKey: () => lifecycle.approvalKeyForGateway(),
    };
  }

  /** Where the budget is counted, and each account's limit and calls waiting now (for the metrics). */
  private budgetView(): { mode: BudgetMode; accounts: BudgetView[] } {
    const waiting = new Map<string, number>();
    for (const [queue, length] of this.budget.waiting()) {
      const account = accountOfQueue(queue);
      waiting.set(account, (waiting.get(account) ?? 0) + length);
    }
    return {
      mode: this.budget.mode,
      accounts: this.current.accounts.map((account) => ({
        ref: { name: account.name, provider: account.provider, env: account.env },
        scope: account.provider === 'kiwoom' ? ('api_id' as const) : ('app_key' as const),
        limit: callsPerSecondOf(this.current.gateway, account),
        waiting: waiting.get(account.name) ?? 0,
      })),
    };
  }

  /** The broker dispatcher the tests inject, for the gateway's calls too. */
  get injectedDispatcher(): Dispatcher | undefined {
    return this.options.dispatcher;
  }

  private onLoopError(name: string) {
    return (error: unknown) => this.logger.error({ loop: name, err: error }, 'loop tick failed');
  }

  /** An account's own loops: its lifecycle's and its custom probe's, stoppable on their own for a reload. */
  private startAccountLoops(name: string, entry: AccountEntry): void {
    const signal = AbortSignal.any([this.stop.signal, entry.stop.signal]);
    entry.loops.push(new Loop(`account:${name}`, () => entry.lifecycle.tick(), this.clock, 30_000, this.onLoopError(name)));
    const probe = entry.probe;
    if (probe) entry.loops.push(new Loop(`probe:${name}`, () => probe.tick(), this.clock, 30_000, this.onLoopError(`probe:${name}`)));
    for (const loop of entry.loops) void loop.start(signal);
  }

  private allLoops(): Loop[] {
    return [...this.loops, ...[...this.accounts.values()].flatMap((entry) => entry.loops)];
  }

  /** Stops an account's loops after their tick in progress and forgets the account; its state stays stored. */
  private async removeAccount(name: string): Promise<void> {
    const entry = this.accounts.get(name);
    if (!entry) return;
    entry.stop.abort();
    await Promise.all(entry.loops.map((loop) => loop.start(entry.stop.signal)));
    entry.lifecycle.stop();
    this.accounts.delete(name);
    this.sinks.removeAccount(name);
    await this.metrics.removeAccount(entry.lifecycle.ref, entry.lifecycle.config.sinks);
  }

  /**
   * Applies a new configuration without a restart: accounts added are started, accounts removed are stopped
   * (their state stays stored, for a later return), accounts whose settings changed are restarted from their
   * stored state (no issuance unless their credentials changed), and every untouched account goes on as it
   * was, loops and all. Settings that need a restart are named and left as they were.
   */
  async reload(next: SidecarConfig): Promise<ReloadSummary> {
    const summary: ReloadSummary = { added: [], removed: [], changed: [], unchanged: 0, needsRestart: [] };
    for (const key of ['stateDir', 'server', 'log', 'store', 'limits', 'slack', 'metrics', 'gateway', 'realtime'] as const) {
      if (JSON.stringify(next[key]) !== JSON.stringify(this.current[key])) summary.needsRestart.push(key);
    }
    const wanted = new Map(next.accounts.map((a) => [a.name, a]));
    for (const name of [...this.accounts.keys()]) {
      const now = wanted.get(name);
      if (!now) {
        await this.removeAccount(name);
        summary.removed.push(name);
      } else if (JSON.stringify(now) !== JSON.stringify(this.accounts.get(name)!.lifecycle.config)) {
        await this.removeAccount(name);
        summary.changed.push(name);
      } else {
        summary.unchanged++;
      }
    }
    for (const account of next.accounts) {
      if (this.accounts.has(account.name)) continue;
      if (!summary.changed.includes(account.name)) summary.added.push(account.name);
      const entry = this.addAccount(account);
      const problems = await this.sinks.preflight(account.name);
      if (problems.length > 0)
        this.logger.error({ account: account.name, problems }, 'a sink of the reloaded account cannot be written; it is retried with backoff');
      await entry.lifecycle.start();
      if (this.running) this.startAccountLoops(account.name, entry);
    }
    this.current = { ...this.current, accounts: next.accounts };
    return summary;
  }

  /**
   * Takes the state directory, checks every sink path can be written, loads each account's state (adopting
   * tokens from existing files where there is none) and brings the files in line. No broker request yet.
   */
  async open(): Promise<void> {
    if (this.options.lock ?? true) {
      this.lock = await StateDirectoryLock.acquire(this.config.stateDir, {
        onLost: (holder) => {
          this.logger.fatal({ holder }, 'the state directory lock was taken over by another process; stopping');
          void this.close().then(() => process.exit(70));
        },
      });
    }
    try {
      await this.store.prepare();
      this.budget.start();
      await this.store.removeStaleTempFiles([...this.accounts.keys()]);
      const problems = await this.sinks.preflight();
      if (problems.length > 0) throw new StartupError(problems);
      // Each start reads and saves one state file (two fsyncs) and checks the account's files: side by side, a
      // thousand accounts are ready in a fraction of the time, without flooding the disk.
      await forEachBounded(this.accounts.values(), START_CONCURRENCY, ({ lifecycle }) => lifecycle.start());
      await this.notifier?.start();
    } catch (error) {
      await this.lock?.release();
      this.lock = undefined;
      if (error instanceof StartupError) throw error;
      throw new StartupError([describeError(error)]);
    }
  }

  /** Starts the loops: one per account, one for the sinks, one per custom probe. Returns at once. */
  run(): void {
    this.running = true;
    for (const [name, entry] of this.accounts) this.startAccountLoops(name, entry);
    this.loops.push(new Loop('sinks', () => this.sinks.tick(), this.clock, 30_000, this.onLoopError('sinks')));
    const notifier = this.notifier;
    if (notifier) this.loops.push(new Loop('alerts', () => notifier.tick(), this.clock, 30_000, this.onLoopError('alerts')));
    // Back in touch with the shared store: every account looks at it now (takes up a newer token, or offers its
    // own to a store that lost its data), not at its next planned tick.
    this.bus.on('store.health', ({ up }) => {
      if (up) for (const entry of this.accounts.values()) entry.loops[0]?.wake();
    });
    for (const loop of this.loops) void loop.start(this.stop.signal);
  }

  /** Stops the loops after the tick in progress (a write is never cut in half), then lets go of everything. */
  async close(): Promise<void> {
    this.stop.abort();
    await Promise.all(this.allLoops().map((loop) => loop.start(this.stop.signal)));
    await this.notifier?.stop();
    for (const { lifecycle } of this.accounts.values()) lifecycle.stop();
    this.sinks.close();
    await this.sinks.idle(SINK_IDLE_BOUND_ON_CLOSE_MS);
    this.budget.destroy();
    await this.store.close();
    await Promise.all([...this.dispatchers.values()].map((d) => d.close().catch(() => undefined)));
    await this.lock?.release();
    this.lock = undefined;
  }

  views(): AccountView[] {
    return [...this.accounts.values()].map(({ lifecycle }) => {
      const { name } = lifecycle.ref;
      return accountViewOf(lifecycle.snapshot(), this.sinks.status(name), this.sinks.isReady(name));
    });
  }

  stuckLoops(): string[] {
    return this.allLoops()
      .filter((loop) => loop.isStuck(STUCK_AFTER_MS))
      .map((loop) => loop.name);
  }

  stuckSinks(): string[] {
    return this.sinks.stuckSinks();
  }

  async renew(account: string, force: boolean): Promise<RenewOutcome | undefined> {
    const entry = this.accounts.get(account);
    if (!entry) return undefined;
    const outcome = await entry.lifecycle.renewNow(force);
    entry.loops[0]?.wake();
    return outcome;
  }

  /**
   * For init containers and cron: makes sure each account has a usable token in every sink, waiting out the
   * spacing or a backoff for at most `maxWaitMs`. Returns a problem per account that could not get there.
   */
  async once(maxWaitMs: number, onWait?: (account: string, why: string, untilMs: number) => void): Promise<string[]> {
    const deadline = this.clock.now() + maxWaitMs;
    const problems: string[] = [];
    for (const [name, { lifecycle }] of this.accounts) {
      for (;;) {
        const next = await lifecycle.tick();
        const now = this.clock.now();
        if (next <= now) continue;
        await this.sinks.idle();
        const view = this.views().find((v) => v.snapshot.ref.name === name)!;
        if (view.ready) break;
        const { snapshot } = view;
        if (next > deadline || snapshot.waitingFor === 'auth_rejected') {
          const failure = snapshot.state.lastFailure;
          problems.push(
            `${name}: no usable token (${snapshot.status}; ${snapshot.waitingFor}${failure ? `; last failure ${failure.reason}: ${failure.message}` : ''}${
              snapshot.nextAttemptAt !== null ? `; next attempt in ${Math.ceil((snapshot.nextAttemptAt - now) / 1000)} s` : ''
            })`,
          );
          break;
        }
        onWait?.(name, snapshot.waitingFor, next);
        await this.clock.sleep(next - now);
      }
    }
    return problems;
  }
}

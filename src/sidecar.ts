import type { Dispatcher } from 'undici';
import type { AccountConfig, SidecarConfig } from './config/types';
import { systemClock, type Clock } from './core/clock';
import { EventBus } from './core/events';
import { createLogger, type Logger } from './core/log';
import { Loop } from './core/loop';
import { SecretRegistry } from './core/secrets';
import type { FileSystem } from './core/atomic-file';
import { describeError } from './core/errors';
import { AccountLifecycle, type RenewOutcome } from './lifecycle/account';
import { CustomProbe } from './lifecycle/probe';
import { MetricsExporter, type AccountView } from './metrics/exporter';
import { createProvider } from './providers';
import { createBrokerDispatcher } from './providers/http';
import { SinkSupervisor } from './sinks/supervisor';
import { SlackNotifier } from './alerts/notifier';
import { FileStateStore } from './store/file-store';
import { StateDirectoryLock } from './store/lock';
import { logEvents } from './telemetry/log-events';
import type { SidecarControl } from './http/app';
import { VERSION } from './version';

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
  /** Hold the state-directory lock (default on; off only for read-only commands). */
  lock?: boolean;
}

export class StartupError extends Error {
  readonly code = 'startup_failed';
  constructor(readonly problems: string[]) {
    super(`cannot start:\n  ${problems.join('\n  ')}`);
  }
}

// A tick that has run this long is stuck: longer than any request timeout plus the slowest disk write.
const STUCK_AFTER_MS = 5 * 60_000;
const DEFAULT_SWEEP_INTERVAL_MS = 5_000;

export class Sidecar implements SidecarControl {
  readonly bus: EventBus;
  readonly secrets: SecretRegistry;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly sinks: SinkSupervisor;
  readonly metrics: MetricsExporter;
  readonly store: FileStateStore;
  private readonly accounts = new Map<string, AccountLifecycle>();
  private readonly probes: CustomProbe[] = [];
  private readonly dispatchers = new Map<string, Dispatcher>();
  private readonly loops: Loop[] = [];
  private readonly stop = new AbortController();
  private lock: StateDirectoryLock | undefined;
  readonly notifier: SlackNotifier | undefined;

  constructor(
    readonly config: SidecarConfig,
    private readonly options: SidecarOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.secrets = options.secrets ?? new SecretRegistry();
    for (const account of config.accounts) {
      this.secrets.add(account.appKey);
      this.secrets.add(account.appSecret);
    }
    this.secrets.add(config.server.adminToken);
    this.logger = options.logger ?? createLogger({ level: config.log.level, format: config.log.format, secrets: this.secrets });
    this.bus = new EventBus((event, error) => this.logger.error({ event, err: error }, 'an event subscriber failed'));
    logEvents(this.bus, this.logger);
    this.store = new FileStateStore(config.stateDir, () => this.clock.now(), options.fs);
    this.sinks = new SinkSupervisor({
      clock: this.clock,
      bus: this.bus,
      fs: options.fs,
      watch: options.watch ?? true,
      sweepIntervalMs: options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS,
    });
    this.metrics = new MetricsExporter(this.bus, () => this.views(), () => this.clock.now(), {
      version: VERSION,
      compat: config.metrics.compat,
      slackQueueLength: () => this.notifier?.queueLength ?? 0,
    });
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

  private addAccount(account: AccountConfig): void {
    const lifecycle = new AccountLifecycle({
      config: account,
      provider: createProvider(account, this.dispatcherFor(account)),
      store: this.store,
      sinks: this.sinks,
      bus: this.bus,
      clock: this.clock,
      secrets: this.secrets,
      random: this.options.random,
    });
    this.accounts.set(account.name, lifecycle);
    this.sinks.addAccount(lifecycle.ref, account.sinks);
    this.metrics.addAccount(lifecycle.ref, account.sinks);
    if (account.probe) this.probes.push(new CustomProbe(lifecycle.ref, account.probe, this.dispatcherFor(account), this.clock, this.bus));
  }

  account(name: string): AccountLifecycle | undefined {
    return this.accounts.get(name);
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
      for (const name of this.accounts.keys()) await this.store.removeStaleTempFiles(name);
      const problems = await this.sinks.preflight();
      if (problems.length > 0) throw new StartupError(problems);
      for (const lifecycle of this.accounts.values()) await lifecycle.start();
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
    const onError = (name: string) => (error: unknown) => this.logger.error({ loop: name, err: error }, 'loop tick failed');
    for (const [name, lifecycle] of this.accounts) {
      this.loops.push(new Loop(`account:${name}`, () => lifecycle.tick(), this.clock, 30_000, onError(name)));
    }
    this.loops.push(new Loop('sinks', () => this.sinks.tick(), this.clock, 30_000, onError('sinks')));
    for (const [i, probe] of this.probes.entries()) this.loops.push(new Loop(`probe:${i}`, () => probe.tick(), this.clock, 30_000, onError('probe')));
    const notifier = this.notifier;
    if (notifier) this.loops.push(new Loop('alerts', () => notifier.tick(), this.clock, 30_000, onError('alerts')));
    for (const loop of this.loops) void loop.start(this.stop.signal);
  }

  /** Stops the loops after the tick in progress (a write is never cut in half), then lets go of everything. */
  async close(): Promise<void> {
    this.stop.abort();
    await Promise.all(this.loops.map((loop) => loop.start(this.stop.signal)));
    await this.notifier?.stop();
    this.sinks.close();
    await this.sinks.idle();
    await Promise.all([...this.dispatchers.values()].map((d) => d.close().catch(() => undefined)));
    await this.lock?.release();
    this.lock = undefined;
  }

  views(): AccountView[] {
    return [...this.accounts.values()].map((lifecycle) => {
      const snapshot = lifecycle.snapshot();
      return {
        snapshot,
        sinks: this.sinks.status(lifecycle.ref.name),
        ready: snapshot.usable && this.sinks.isReady(lifecycle.ref.name),
      };
    });
  }

  stuckLoops(): string[] {
    return this.loops.filter((loop) => loop.isStuck(STUCK_AFTER_MS)).map((loop) => loop.name);
  }

  async renew(account: string, force: boolean): Promise<RenewOutcome | undefined> {
    const lifecycle = this.accounts.get(account);
    if (!lifecycle) return undefined;
    const outcome = await lifecycle.renewNow(force);
    this.loops.find((loop) => loop.name === `account:${account}`)?.wake();
    return outcome;
  }

  /**
   * For init containers and cron: makes sure each account has a usable token in every sink, waiting out the
   * spacing or a backoff for at most `maxWaitMs`. Returns a problem per account that could not get there.
   */
  async once(maxWaitMs: number): Promise<string[]> {
    const deadline = this.clock.now() + maxWaitMs;
    const problems: string[] = [];
    for (const [name, lifecycle] of this.accounts) {
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
        await this.clock.sleep(next - now);
      }
    }
    return problems;
  }
}

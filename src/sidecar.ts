import type { Dispatcher } from 'undici';
import type { AccountConfig, SidecarConfig } from './config/types';
import type { Clock } from './core/clock';
import type { EventBus } from './core/events';
import type { Logger } from './logging/logger';
import { Loop } from './core/loop';
import type { SecretRegistry } from './core/secrets';
import { describeError } from './core/errors';
import type { AccountLifecycle } from './lifecycle/account';
import type { RenewOutcome } from './lifecycle/issuance';
import type { CustomProbe } from './lifecycle/custom-probe';
import { accountViewOf, type AccountView } from './lifecycle/views';
import type { MetricsExporter } from './metrics/exporter';
import type { SinkSupervisor } from './sinks/supervisor';
import type { SlackNotifier } from './alerts/notifier';
import type { StateStore } from './store/state-store';
import { forEachBounded } from './core/limiter';
import { StateDirectoryLock } from './store/lock';
import type { SidecarControl } from './http/app';
import type { GatewayAccount } from './gateway/types';
import type { CallBudget } from './budget/call-budget';
import type { RedisConnection } from './store/redis-connection';

/**
 * The running sidecar: one lifecycle per account with its loops, the sink and alert loops, start, reload and
 * stop. It makes none of its parts: src/wiring.ts builds them from the config (and each account's, at start and
 * at every reload) and hands them over, so every dependency with a side effect (clock, HTTP dispatcher, file
 * system, randomness) is chosen in one place, which is how the tests run the real thing on a fake clock.
 */
interface SidecarParts {
  config: SidecarConfig;
  clock: Clock;
  bus: EventBus;
  logger: Logger;
  secrets: SecretRegistry;
  store: StateStore;
  budget: CallBudget;
  sinks: SinkSupervisor;
  metrics: MetricsExporter;
  notifier: SlackNotifier | undefined;
  /** An account's lifecycle and custom probe, made by the wiring (at start, and for accounts a reload adds). */
  accountParts(account: AccountConfig): { lifecycle: AccountLifecycle; probe: CustomProbe | undefined };
  /** Hold the state-directory lock (off only for read-only commands). */
  lock: boolean;
  /** Ends the log's timers and the like: aborted at close. */
  stop: AbortController;
  /** What the wiring opened for the sidecar, closed after it: broker connection pools, the Redis connection. */
  release(): Promise<void>;
  /** The replicas' Redis, when the store is shared (the gateway's revocations are kept there too). */
  redis: RedisConnection | undefined;
  /** The broker dispatcher a test injected, for the gateway's calls too. */
  injectedDispatcher: Dispatcher | undefined;
}

interface AccountEntry {
  lifecycle: AccountLifecycle;
  probe: CustomProbe | undefined;
  /** The account as the gateway uses it, made once (the gateway looks it up on every call). */
  gateway: GatewayAccount;
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

export class StartupError extends Error {
  constructor(readonly problems: string[]) {
    super(`cannot start:\n  ${problems.join('\n  ')}`);
  }
}

// A tick that has run this long is stuck: longer than any request timeout plus the slowest disk write.
const STUCK_AFTER_MS = 5 * 60_000;
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
  /** The per-second call budget every request to a broker takes a slot of: the gateway's clients' and the sidecar's own. */
  readonly budget: CallBudget;
  readonly notifier: SlackNotifier | undefined;
  private readonly accounts = new Map<string, AccountEntry>();
  /** The loops not tied to one account: the sinks' and the alerts'. */
  private readonly loops: Loop[] = [];
  private running = false;
  private startedUp = false;
  private lock: StateDirectoryLock | undefined;
  private current: SidecarConfig;

  constructor(private readonly parts: SidecarParts) {
    ({ config: this.current, clock: this.clock, bus: this.bus, logger: this.logger, secrets: this.secrets } = parts);
    ({ store: this.store, budget: this.budget, sinks: this.sinks, metrics: this.metrics, notifier: this.notifier } = parts);
    for (const account of parts.config.accounts) this.addAccount(account);
  }

  private get stop(): AbortController {
    return this.parts.stop;
  }

  /** The running configuration (its accounts change with a reload). */
  get config(): SidecarConfig {
    return this.current;
  }

  private addAccount(account: AccountConfig): AccountEntry {
    this.secrets.add(account.appKey);
    this.secrets.add(account.appSecret);
    const { lifecycle, probe } = this.parts.accountParts(account);
    const loops: Loop[] = [];
    const gateway: GatewayAccount = {
      config: lifecycle.config,
      ref: lifecycle.ref,
      token: () => lifecycle.gatewayToken(),
      // A token found dead wakes the account's loop for what follows.
      tokenRefused: async (accessToken) => {
        await lifecycle.tokenRefused(accessToken);
        loops[0]?.wake();
      },
      approvalKey: () => lifecycle.approvalKeyForGateway(),
    };
    const entry: AccountEntry = { lifecycle, probe, loops, stop: new AbortController(), gateway };
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
    return this.accounts.get(name)?.gateway;
  }

  /** The broker dispatcher the tests inject, for the gateway's calls too. */
  get injectedDispatcher(): Dispatcher | undefined {
    return this.parts.injectedDispatcher;
  }

  /** The replicas' Redis, when the store is shared. */
  get redis(): RedisConnection | undefined {
    return this.parts.redis;
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
    if (this.parts.lock) {
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
      this.startedUp = true;
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
    await this.parts.release();
    await this.lock?.release();
    this.lock = undefined;
  }

  /** Before start() has brought every account up: /readyz then answers without going over the accounts. */
  startingUp(): boolean {
    return !this.startedUp;
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

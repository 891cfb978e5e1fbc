import { join } from 'node:path';
import type { SinkConfig } from '../config/types';
import { nodeFileSystem, type FileSystem } from '../core/atomic-file';
import type { Clock } from '../core/clock';
import type { AccountRef, EventBus } from '../core/events';
import { cleanupDailyFiles, dailyFiles } from './daily-files';
import { inSinkDirectory } from './directory';
import { nextKisAuthChange, readSinkToken, sinkDirectory, sinkPaths, type TokenInFile, type TokenView } from './formats';
import { readSinkFile } from './inspect';
import { preflight } from './preflight';
import { SINK_STUCK_AFTER_MS, sinkStatus, stuckSince, type SinkStatus } from './report';
import { exclusive, forgetFiles, knownPaths, newSinkRuntime, type SinkContext, type SinkRuntime } from './sink-state';
import { SinkWatcher, scheduleChecks } from './watcher';
import { checkSink, removeFiles, writeToken } from './write-repair';

export { summarizeFiles, type SinkStatus } from './report';
export type { SinkFileStatus } from './sink-state';

/**
 * Keeps every sink file equal to what the state says it must hold. Writes on a new token, notices damage
 * through file-system events (with a periodic sweep for volumes where events do not arrive), repairs from the
 * state with no issuance, writes each new day's kis_auth.py file ahead of its readers' midnights, and retries a
 * sink that cannot be written with backoff, without holding up the other sinks or renewal. This class only
 * orchestrates: each job has its module (sink-state, write-repair, daily-files, watcher, preflight, report).
 */

interface SinkSupervisorOptions {
  clock: Clock;
  bus: EventBus;
  sweepIntervalMs: number;
  fs?: FileSystem;
  /** Let file-system events trigger checks (off in tests that drive everything through tick()). */
  watch?: boolean;
  /** Default SINK_STUCK_AFTER_MS. */
  stuckAfterMs?: number | undefined;
}

export class SinkSupervisor {
  private readonly sinks = new Map<string, SinkRuntime[]>();
  private readonly watcher = new SinkWatcher((dir, filename) =>
    scheduleChecks(this.sinksIn.get(dir) ?? [], filename, this.options.clock.now(), (rt) => void this.check(rt)),
  );
  /** The sinks by directory, as last watched: an event concerns only the sinks of its directory. */
  private sinksIn = new Map<string, SinkRuntime[]>();
  private watchRefresh: NodeJS.Immediate | undefined;
  private readonly ctx: SinkContext;
  private nextSweepAt = 0;
  private closed = false;

  constructor(private readonly options: SinkSupervisorOptions) {
    this.ctx = { fs: options.fs ?? nodeFileSystem, clock: options.clock, bus: options.bus, closed: () => this.closed };
  }

  addAccount(account: AccountRef, sinks: SinkConfig[]): void {
    this.sinks.set(
      account.name,
      sinks.map((config) => newSinkRuntime(account, config)),
    );
    this.watch();
  }

  removeAccount(name: string): void {
    for (const rt of this.sinks.get(name) ?? []) clearTimeout(rt.pendingCheck);
    this.sinks.delete(name);
    this.watch();
  }

  private all(): SinkRuntime[] {
    return [...this.sinks.values()].flat();
  }

  private of(account: string | undefined): SinkRuntime[] {
    return account === undefined ? this.all() : (this.sinks.get(account) ?? []);
  }

  /** Every sink's directory and files can be written (see preflight.ts); the problems, each naming its path. */
  preflight(account?: string): Promise<string[]> {
    return preflight(this.ctx.fs, this.of(account), this.options.clock.now());
  }

  /** Sets what an account's sinks must hold and writes them now. Never throws: failures are retried later. */
  async publish(account: string, view: TokenView, cause: 'token' | 'start'): Promise<void> {
    await Promise.all(
      this.of(account).map((rt) => {
        // A new token, approval key or expiry (a same-token answer can correct it) is new content for every file.
        const tokenChanged = rt.view?.accessToken !== view.accessToken || rt.view?.approvalKey !== view.approvalKey || rt.view?.expiresAt !== view.expiresAt;
        rt.view = view;
        return exclusive(rt, async () => {
          // Files that already hold the right bytes are left alone: a restart rewrites nothing.
          if (cause === 'start' || !tokenChanged) await checkSink(this.ctx, rt);
          else await writeToken(this.ctx, rt, view);
          await cleanupDailyFiles(this.ctx, rt, this.options.clock.now());
        });
      }),
    );
    // The directories exist now, whatever they were before: watch them.
    this.watch();
  }

  /** Removes an account's files (after a revoke): the token in them is dead. */
  async clear(account: string): Promise<string[]> {
    const removed: string[] = [];
    for (const rt of this.of(account)) {
      await exclusive(rt, async () => {
        removed.push(...(await removeFiles(this.ctx, rt, knownPaths(rt, this.options.clock.now()))));
        forgetFiles(rt);
      });
    }
    return removed;
  }

  /** Checks one account's sinks (or all) against their expected content, repairing what is wrong. */
  async checkAll(account?: string): Promise<void> {
    await Promise.all(this.of(account).map((rt) => this.check(rt)));
  }

  private check(rt: SinkRuntime): Promise<void> {
    return exclusive(rt, () => checkSink(this.ctx, rt));
  }

  /**
   * One pass of the loop: roll daily files over, retry failed writes whose time has come, and sweep. Returns
   * when it next has something to do.
   */
  async tick(): Promise<number> {
    const now = this.options.clock.now();
    const sweepDue = now >= this.nextSweepAt;
    if (sweepDue) this.nextSweepAt = now + this.options.sweepIntervalMs;
    await Promise.all(
      this.all().map((rt) => {
        const rolledOver = rt.started && sinkPaths(rt.config, now).some((path) => !rt.written.has(path));
        const retryDue = rt.nextRetryAt !== undefined && now >= rt.nextRetryAt;
        return sweepDue || rolledOver || retryDue ? this.check(rt) : Promise.resolve();
      }),
    );
    if (sweepDue) this.watch();
    return this.nextDue(now);
  }

  private nextDue(now: number): number {
    let next = this.nextSweepAt;
    for (const rt of this.all()) {
      if (rt.nextRetryAt !== undefined) next = Math.min(next, rt.nextRetryAt);
      if (rt.config.format === 'kis-auth' && rt.view) next = Math.min(next, nextKisAuthChange(rt.config, now));
    }
    return next;
  }

  /**
   * Watches the sinks' directories as they are once the current burst of changes is over: a start adds and
   * publishes every account one after the other, and a refresh for each went over every sink (a thousand accounts
   * took a second of start-up on it alone).
   */
  private watch(): void {
    if (this.closed || !this.options.watch || this.watchRefresh) return;
    this.watchRefresh = setImmediate(() => {
      this.watchRefresh = undefined;
      if (this.closed) return;
      const sinksIn = new Map<string, SinkRuntime[]>();
      for (const rt of this.all()) {
        const dir = sinkDirectory(rt.config);
        const inDir = sinksIn.get(dir);
        if (inDir) inDir.push(rt);
        else sinksIn.set(dir, [rt]);
      }
      this.sinksIn = sinksIn;
      this.watcher.watch([...this.sinksIn.keys()]);
    });
  }

  private get stuckAfterMs(): number {
    return this.options.stuckAfterMs ?? SINK_STUCK_AFTER_MS;
  }

  /** Sinks with an operation running far too long, as `account/sink` (for /healthz). */
  stuckSinks(): string[] {
    const now = Date.now();
    return this.all()
      .filter((rt) => stuckSince(rt, this.stuckAfterMs, now) !== null)
      .map((rt) => `${rt.account.name}/${rt.config.name}`);
  }

  status(account: string): SinkStatus[] {
    const now = this.options.clock.now();
    return this.of(account).map((rt) => sinkStatus(rt, now, this.stuckAfterMs));
  }

  /** Every sink of the account holds the current token, complete and private. */
  isReady(account: string): boolean {
    const runtimes = this.sinks.get(account);
    // An account with no sink (only the gateway's clients use it) has no file to wait for: its token decides.
    return runtimes !== undefined && runtimes.every((rt) => rt.view !== undefined && rt.healthy);
  }

  /**
   * Tokens already in an account's sink files (newest daily files first), for adopting an existing token at
   * first start instead of asking the broker for a new one.
   */
  async tokensOnDisk(account: string): Promise<Array<{ sink: string; path: string; token: TokenInFile }>> {
    const found: Array<{ sink: string; path: string; token: TokenInFile }> = [];
    for (const { config } of this.of(account)) {
      // Never through a symlink planted at a sink path, never a FIFO or device: only a small regular file.
      const noLink = { ...config, access: { ...config.access, followSymlinks: false } };
      await inSinkDirectory(config, this.ctx.fs, async (dir) => {
        const paths =
          config.format === 'kis-auth'
            ? (await dailyFiles(this.ctx.fs, dir)).map((name) => join(config.dir, name))
            : sinkPaths(config, this.options.clock.now());
        for (const path of paths) {
          const content = await readSinkFile(this.ctx.fs, noLink, path, dir).then(
            (read) => read.content,
            () => '',
          );
          const token = readSinkToken(config, content);
          if (token) found.push({ sink: config.name, path, token });
        }
      });
    }
    return found;
  }

  close(): void {
    this.closed = true;
    clearImmediate(this.watchRefresh);
    this.watcher.close();
    for (const rt of this.all()) clearTimeout(rt.pendingCheck);
  }

  /**
   * Resolves when every sink's queued operation has finished (for shutdown and tests), or after `boundMs`
   * whatever is still running: a stuck file system must not hold up a shutdown.
   */
  async idle(boundMs = Infinity): Promise<void> {
    const all = Promise.all(this.all().map((rt) => rt.queue));
    if (!Number.isFinite(boundMs)) return void (await all);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, boundMs)))]);
    clearTimeout(timer);
  }
}

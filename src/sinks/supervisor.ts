import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { SinkConfig } from '../config/types';
import type { Clock } from '../core/clock';
import { SinkWriteError, classifyFsError, describeError, type SinkRepairReason } from '../core/errors';
import type { AccountRef, EventBus } from '../core/events';
import { ensureDirectory, nodeFileSystem, removeStaleTempFiles, writeFileAtomic, type FileSystem } from '../core/atomic-file';
import { dateStampDaysBefore, nextLocalMidnight } from '../core/time';
import { KIS_AUTH_FILE, readSinkToken, renderSink, sinkPath, type TokenInFile, type TokenView } from './formats';
import { inspectSinkFile } from './inspect';
import { runNotify } from './notify';

/**
 * Keeps every sink file equal to what the state says it must hold. Writes on a new token, notices damage
 * through file-system events (with a periodic sweep for volumes where events do not arrive), repairs from the
 * state with no issuance, rolls kis_auth.py's daily file over at midnight, and retries a sink that cannot be
 * written with backoff, without holding up the other sinks or renewal.
 */

export interface SinkStatus {
  name: string;
  format: SinkConfig['format'];
  path: string;
  present: boolean;
  healthy: boolean;
  /** The file's permission bits as found, or null when there is no file. */
  mode: number | null;
  expectedMode: number;
  lastWriteAt: number | null;
  lastError: { reason: string; message: string; at: number } | null;
  consecutiveFailures: number;
  /** Since when the file has not held what it should (null while it does, and before there is a token). */
  unhealthySince: number | null;
}

interface SinkRuntime {
  account: AccountRef;
  config: SinkConfig;
  view: TokenView | undefined;
  writtenPath: string | undefined;
  present: boolean;
  healthy: boolean;
  mode: number | null;
  lastWriteAt: number | null;
  lastError: SinkStatus['lastError'];
  consecutiveFailures: number;
  unhealthySince: number | null;
  nextRetryAt: number | undefined;
  lastCleanupStamp: string | undefined;
  queue: Promise<void>;
  pendingCheck: NodeJS.Timeout | undefined;
}

export interface SinkSupervisorOptions {
  clock: Clock;
  bus: EventBus;
  sweepIntervalMs: number;
  fs?: FileSystem;
  /** Let file-system events trigger checks (off in tests that drive everything through tick()). */
  watch?: boolean;
}

const MAX_WRITE_RETRY_MS = 60_000;
const EVENT_DEBOUNCE_MS = 5;

type WriteCause = 'token' | 'start' | 'rollover' | SinkRepairReason;

export class SinkSupervisor {
  private readonly sinks = new Map<string, SinkRuntime[]>();
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly fs: FileSystem;
  private nextSweepAt = 0;
  private closed = false;

  constructor(private readonly options: SinkSupervisorOptions) {
    this.fs = options.fs ?? nodeFileSystem;
  }

  addAccount(account: AccountRef, sinks: SinkConfig[]): void {
    this.sinks.set(
      account.name,
      sinks.map((config) => ({
        account,
        config,
        view: undefined,
        writtenPath: undefined,
        present: false,
        healthy: false,
        mode: null,
        lastWriteAt: null,
        lastError: null,
        consecutiveFailures: 0,
        unhealthySince: null,
        nextRetryAt: undefined,
        lastCleanupStamp: undefined,
        queue: Promise.resolve(),
        pendingCheck: undefined,
      })),
    );
    if (this.options.watch) this.ensureWatchers();
  }

  removeAccount(name: string): void {
    for (const rt of this.sinks.get(name) ?? []) clearTimeout(rt.pendingCheck);
    this.sinks.delete(name);
    this.ensureWatchers();
  }

  private all(): SinkRuntime[] {
    return [...this.sinks.values()].flat();
  }

  /**
   * At start-up, before any token exists: every sink's directory can be created and written, and no sink path
   * is a symlink or directory the config did not ask for. A bad path fails here, at once, with its name.
   */
  async preflight(account?: string): Promise<string[]> {
    const problems: string[] = [];
    const now = this.options.clock.now();
    // One write check per directory and access (owner, group, modes), however many sinks share it.
    const writeChecks = new Map<string, Promise<void>>();
    const checked: string[] = [];
    for (const rt of account === undefined ? this.all() : (this.sinks.get(account) ?? [])) {
      const path = sinkPath(rt.config, now);
      const where = `account ${rt.account.name}, sink ${rt.config.name} (${path})`;
      try {
        await ensureDirectory(dirname(path), rt.config.access.dirMode, this.fs);
        const inspection = await inspectSinkFile(this.fs, rt.config, path, '\0', '\0');
        if (inspection.kind === 'refused') throw inspection.error;
        const key = `${dirname(path)}\0${JSON.stringify(rt.config.access)}`;
        if (!writeChecks.has(key)) writeChecks.set(key, this.checkWritable(dirname(path), rt.config.access));
        await writeChecks.get(key);
        checked.push(path);
      } catch (error) {
        const reason = error instanceof SinkWriteError ? error.code : classifyFsError(error);
        problems.push(`${where}: ${reason}: ${describeError(error)}`);
      }
    }
    await removeStaleTempFiles(checked, this.fs);
    return problems;
  }

  /** Writes and removes a file in `dir` the way a sink file is written: proves the directory takes it. */
  private async checkWritable(dir: string, access: SinkConfig['access']): Promise<void> {
    const probe = join(dir, `.broker-token-sidecar-write-check-${process.pid}`);
    await writeFileAtomic(probe, '', { ...access, fs: this.fs });
    await this.fs.unlink(probe);
  }

  /** Sets what an account's sinks must hold and writes them now. Never throws: failures are retried later. */
  async publish(account: string, view: TokenView, cause: 'token' | 'start'): Promise<void> {
    const runtimes = this.sinks.get(account) ?? [];
    await Promise.all(
      runtimes.map((rt) => {
        const tokenChanged = rt.view?.accessToken !== view.accessToken || rt.view?.approvalKey !== view.approvalKey;
        rt.view = view;
        return this.exclusive(rt, async () => {
          const now = this.options.clock.now();
          if (cause === 'start' || !tokenChanged) {
            // Files that already hold the right bytes are left alone: a restart rewrites nothing.
            await this.check(rt);
          } else {
            const path = sinkPath(rt.config, now);
            const content = renderSink(rt.config, view);
            if (content === undefined) return;
            if (await this.writeSink(rt, path, content, rt.writtenPath === undefined ? 'start' : 'token')) {
              await this.refreshEarlierDailyFiles(rt, path, content);
              this.notify(rt, path);
            }
          }
          await this.cleanup(rt, now);
        });
      }),
    );
    // The directories exist now, whatever they were before: watch them.
    this.ensureWatchers();
  }

  /** Removes an account's files (after a revoke): the token in them is dead. */
  async clear(account: string): Promise<string[]> {
    const removed: string[] = [];
    for (const rt of this.sinks.get(account) ?? []) {
      await this.exclusive(rt, async () => {
        const path = rt.writtenPath ?? sinkPath(rt.config, this.options.clock.now());
        rt.view = undefined;
        rt.healthy = false;
        rt.unhealthySince = null;
        await this.fs.unlink(path).then(() => removed.push(path), () => undefined);
        rt.present = false;
        rt.writtenPath = undefined;
      });
    }
    return removed;
  }

  /** Checks one account's sinks (or all) against their expected content, repairing what is wrong. */
  async checkAll(account?: string): Promise<void> {
    const runtimes = account === undefined ? this.all() : (this.sinks.get(account) ?? []);
    await Promise.all(runtimes.map((rt) => this.exclusive(rt, () => this.check(rt))));
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
        const rolledOver = rt.writtenPath !== undefined && rt.writtenPath !== sinkPath(rt.config, now);
        const retryDue = rt.nextRetryAt !== undefined && now >= rt.nextRetryAt;
        if (!sweepDue && !rolledOver && !retryDue) return Promise.resolve();
        return this.exclusive(rt, () => this.check(rt));
      }),
    );
    if (sweepDue && this.options.watch) this.ensureWatchers();
    return this.nextDue(now);
  }

  private nextDue(now: number): number {
    let next = this.nextSweepAt;
    for (const rt of this.all()) {
      if (rt.nextRetryAt !== undefined) next = Math.min(next, rt.nextRetryAt);
      if (rt.config.format === 'kis-auth' && rt.view) next = Math.min(next, nextLocalMidnight(now, rt.config.timeZone));
    }
    return next;
  }

  private async check(rt: SinkRuntime): Promise<void> {
    if (!rt.view || this.closed) return;
    const content = renderSink(rt.config, rt.view);
    if (content === undefined) return;
    const now = this.options.clock.now();
    const path = sinkPath(rt.config, now);
    if (rt.writtenPath !== undefined && rt.writtenPath !== path) {
      // Midnight in the sink's zone: the new day's file, same token, no issuance.
      await this.writeSink(rt, path, content, 'rollover');
      await this.cleanup(rt, now);
      return;
    }
    const inspection = await inspectSinkFile(this.fs, rt.config, path, content, rt.view.accessToken);
    switch (inspection.kind) {
      case 'healthy':
        rt.present = true;
        rt.mode = inspection.mode;
        if (rt.writtenPath === undefined) rt.writtenPath = path;
        if (!rt.healthy || rt.consecutiveFailures > 0) this.markWritten(rt, path, now, undefined);
        return;
      case 'repair':
        rt.present = inspection.mode !== null;
        rt.mode = inspection.mode;
        this.markUnhealthy(rt, now);
        if (rt.nextRetryAt !== undefined && now < rt.nextRetryAt) return; // backing off after a failed write
        await this.writeSink(rt, path, content, rt.writtenPath === undefined ? 'start' : inspection.reason);
        return;
      case 'refused':
        this.markFailed(rt, path, inspection.error, now);
        return;
    }
  }

  private async writeSink(rt: SinkRuntime, path: string, content: string, cause: WriteCause): Promise<boolean> {
    const now = this.options.clock.now();
    try {
      await writeFileAtomic(path, content, { ...rt.config.access, fs: this.fs });
    } catch (error) {
      this.markFailed(rt, path, error, now);
      return false;
    }
    this.markWritten(rt, path, now, cause);
    return true;
  }

  private markWritten(rt: SinkRuntime, path: string, now: number, cause: WriteCause | undefined): void {
    const recovered = rt.consecutiveFailures > 0;
    rt.writtenPath = path;
    rt.present = true;
    rt.healthy = true;
    rt.mode = rt.config.access.mode;
    rt.lastWriteAt = cause === undefined ? rt.lastWriteAt : now;
    rt.lastError = null;
    rt.consecutiveFailures = 0;
    rt.unhealthySince = null;
    rt.nextRetryAt = undefined;
    const ref = { account: rt.account, sink: rt.config.name, path };
    if (cause === 'token' || cause === 'start' || cause === 'rollover') this.options.bus.emit('sink.written', { ...ref, cause });
    else if (cause !== undefined) this.options.bus.emit('sink.repaired', { ...ref, reason: cause });
    if (recovered) this.options.bus.emit('sink.recovered', ref);
  }

  private markFailed(rt: SinkRuntime, path: string, error: unknown, now: number): void {
    const reason = error instanceof SinkWriteError ? error.code : classifyFsError(error);
    const message = describeError(error);
    this.markUnhealthy(rt, now);
    rt.consecutiveFailures += 1;
    rt.lastError = { reason, message, at: now };
    rt.nextRetryAt = now + Math.min(MAX_WRITE_RETRY_MS, 1000 * 2 ** (rt.consecutiveFailures - 1));
    this.options.bus.emit('sink.write_failed', {
      account: rt.account,
      sink: rt.config.name,
      path,
      reason,
      message,
      consecutiveFailures: rt.consecutiveFailures,
    });
  }

  private markUnhealthy(rt: SinkRuntime, now: number): void {
    rt.healthy = false;
    rt.unhealthySince ??= now;
  }

  /**
   * A bot that imported kis_auth.py yesterday still reads yesterday's file. When the token changes, the
   * earlier daily files still kept are brought up to date too, so such a bot never sees a dead token.
   */
  private async refreshEarlierDailyFiles(rt: SinkRuntime, currentPath: string, content: string): Promise<void> {
    if (rt.config.format !== 'kis-auth') return;
    for (const name of await this.dailyFiles(rt.config.dir)) {
      const path = join(rt.config.dir, name);
      if (path === currentPath) continue;
      const info = await this.fs.lstat(path).catch(() => undefined);
      if (!info?.isFile()) continue;
      await writeFileAtomic(path, content, { ...rt.config.access, fs: this.fs }).catch(() => undefined);
    }
  }

  private async dailyFiles(dir: string): Promise<string[]> {
    const names = await this.fs.readdir(dir).catch(() => [] as string[]);
    return names.filter((name) => KIS_AUTH_FILE.test(name)).sort().reverse();
  }

  /** Removes daily files older than keepDays; nothing that does not match KIS{YYYYMMDD} is ever touched. */
  private async cleanup(rt: SinkRuntime, now: number): Promise<void> {
    if (rt.config.format !== 'kis-auth') return;
    const cutoff = dateStampDaysBefore(now, rt.config.timeZone, rt.config.keepDays);
    if (rt.lastCleanupStamp === cutoff) return;
    const removed: string[] = [];
    for (const name of await this.dailyFiles(rt.config.dir)) {
      const stamp = KIS_AUTH_FILE.exec(name)![1]!;
      if (stamp >= cutoff) continue;
      const path = join(rt.config.dir, name);
      const info = await this.fs.lstat(path).catch(() => undefined);
      if (!info?.isFile()) continue;
      await this.fs.unlink(path).then(() => removed.push(name), () => undefined);
    }
    rt.lastCleanupStamp = cutoff;
    if (removed.length > 0) this.options.bus.emit('sink.cleaned', { account: rt.account, sink: rt.config.name, files: removed });
  }

  private notify(rt: SinkRuntime, path: string): void {
    const notify = rt.config.notify;
    if (!notify) return;
    runNotify(notify, { account: rt.account.name, sink: rt.config.name, path }).catch((error: unknown) => {
      this.options.bus.emit('sink.notify_failed', { account: rt.account, sink: rt.config.name, message: describeError(error) });
    });
  }

  /** One operation at a time per sink, so a check never races a write. */
  private exclusive(rt: SinkRuntime, operation: () => Promise<void>): Promise<void> {
    const run = rt.queue.then(operation, operation);
    rt.queue = run.catch(() => undefined);
    return rt.queue;
  }

  private ensureWatchers(): void {
    if (this.closed || !this.options.watch) return;
    const dirs = new Set(this.all().map((rt) => (rt.config.format === 'kis-auth' ? rt.config.dir : dirname(rt.config.path))));
    for (const [dir, watcher] of this.watchers) {
      if (!dirs.has(dir)) {
        watcher.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue;
      try {
        const watcher = watch(dir, { persistent: false }, (_event, filename) => this.onFileEvent(dir, filename?.toString()));
        watcher.on('error', () => {
          // The directory went away; the sweep recreates it and watches again.
          watcher.close();
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, watcher);
      } catch {
        // Not there yet: the next sweep tries again.
      }
    }
  }

  private onFileEvent(dir: string, filename: string | undefined): void {
    for (const rt of this.all()) {
      const path = rt.writtenPath ?? sinkPath(rt.config, this.options.clock.now());
      if (dirname(path) !== dir || (filename !== undefined && filename !== basename(path))) continue;
      if (rt.pendingCheck) continue;
      rt.pendingCheck = setTimeout(() => {
        rt.pendingCheck = undefined;
        void this.exclusive(rt, () => this.check(rt));
      }, EVENT_DEBOUNCE_MS);
    }
  }

  status(account: string): SinkStatus[] {
    const now = this.options.clock.now();
    return (this.sinks.get(account) ?? []).map((rt) => ({
      name: rt.config.name,
      format: rt.config.format,
      path: rt.writtenPath ?? sinkPath(rt.config, now),
      present: rt.present,
      healthy: rt.healthy,
      mode: rt.mode,
      expectedMode: rt.config.access.mode,
      lastWriteAt: rt.lastWriteAt,
      lastError: rt.lastError,
      consecutiveFailures: rt.consecutiveFailures,
      unhealthySince: rt.unhealthySince,
    }));
  }

  /** Every sink of the account holds the current token, complete and private. */
  isReady(account: string): boolean {
    const runtimes = this.sinks.get(account) ?? [];
    return runtimes.length > 0 && runtimes.every((rt) => rt.view !== undefined && rt.healthy);
  }

  /**
   * Tokens already in an account's sink files (newest daily files first), for adopting an existing token at
   * first start instead of asking the broker for a new one.
   */
  async tokensOnDisk(account: string): Promise<Array<{ sink: string; path: string; token: TokenInFile }>> {
    const found: Array<{ sink: string; path: string; token: TokenInFile }> = [];
    for (const rt of this.sinks.get(account) ?? []) {
      const paths =
        rt.config.format === 'kis-auth'
          ? (await this.dailyFiles(rt.config.dir)).map((name) => join((rt.config as { dir: string }).dir, name))
          : [sinkPath(rt.config, this.options.clock.now())];
      for (const path of paths) {
        const info = await this.fs.lstat(path).catch(() => undefined);
        if (!info?.isFile()) continue; // never read through a symlink planted at a sink path
        const content = await this.fs.readFile(path, 'utf8').catch(() => '');
        const token = readSinkToken(rt.config, content);
        if (token) found.push({ sink: rt.config.name, path, token });
      }
    }
    return found;
  }

  close(): void {
    this.closed = true;
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
    for (const rt of this.all()) clearTimeout(rt.pendingCheck);
  }

  /** Resolves when every sink's queued operation has finished (for shutdown and tests). */
  async idle(): Promise<void> {
    await Promise.all(this.all().map((rt) => rt.queue));
  }
}

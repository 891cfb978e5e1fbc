import { watch, type FSWatcher } from 'node:fs';
import { basename, join } from 'node:path';
import type { SinkConfig } from '../config/types';
import type { Clock } from '../core/clock';
import { classifyFsError, describeError, type SinkRepairReason } from '../core/errors';
import type { AccountRef, EventBus } from '../core/events';
import { nodeFileSystem, removeStaleTempFilesIn, writeFileInDirectory, type FileSystem } from '../core/atomic-file';
import type { Directory } from '../core/held-directory';
import { dateStampDaysBefore } from '../core/time';
import { KIS_AUTH_FILE, nextKisAuthChange, readSinkToken, renderSink, sinkDirectory, sinkPaths, type TokenInFile, type TokenView } from './formats';
import { inSinkDirectory, openSinkDirectory } from './directory';
import { inspectSinkFile, readSinkFile } from './inspect';
import { runNotify } from './notify';

/**
 * Keeps every sink file equal to what the state says it must hold. Writes on a new token, notices damage
 * through file-system events (with a periodic sweep for volumes where events do not arrive), repairs from the
 * state with no issuance, writes each new day's kis_auth.py file ahead of its readers' midnights, and retries a sink that cannot be
 * written with backoff, without holding up the other sinks or renewal.
 */

/** One file of a sink, as last found or written (a kis-auth sink keeps one per date a reader may compute). */
export interface SinkFileStatus {
  path: string;
  present: boolean;
  healthy: boolean;
  /** The file's permission bits as found, or null when there is no file. */
  mode: number | null;
}

export interface SinkStatus {
  name: string;
  format: SinkConfig['format'];
  /** The sink's first file (for kis-auth: the date in the first reader zone, Asia/Seoul by default). */
  path: string;
  /** Every file the sink keeps current now. */
  files: SinkFileStatus[];
  /** Every file exists. */
  present: boolean;
  /** Every file holds exactly the current token with the configured mode and owner. */
  healthy: boolean;
  /** The permission bits found: the first file's that differ from the configured mode, else the first file's. */
  mode: number | null;
  expectedMode: number;
  lastWriteAt: number | null;
  lastError: { reason: string; message: string; at: number } | null;
  consecutiveFailures: number;
  /** Since when a file has not held what it should (null while all do, and before there is a token). */
  unhealthySince: number | null;
  /** Since when (real time) an operation on the sink has been running longer than it ever should; null when none has. */
  stuckSince: number | null;
}

/** What a sink's files add up to: present when every file is, and the mode that needs a look (one that is off, if any). */
export function summarizeFiles(files: SinkFileStatus[], expectedMode: number): { present: boolean; mode: number | null } {
  const off = files.find((file) => file.mode !== null && file.mode !== expectedMode);
  return { present: files.every((file) => file.present), mode: (off ?? files[0])?.mode ?? null };
}

interface SinkRuntime {
  account: AccountRef;
  config: SinkConfig;
  view: TokenView | undefined;
  /** The current files as last checked or written, by path. */
  files: Map<string, SinkFileStatus>;
  /** Current files this run has written or found holding the token: a current file not among them is new (a rollover). */
  written: Set<string>;
  /** Whether anything was written or found right yet in this run: the first write is 'start', later new files 'rollover'. */
  started: boolean;
  healthy: boolean;
  lastWriteAt: number | null;
  lastError: SinkStatus['lastError'];
  consecutiveFailures: number;
  unhealthySince: number | null;
  nextRetryAt: number | undefined;
  /** When the last write failed: a file event may end the backoff, but never sooner than a second after it. */
  lastFailureAt: number | undefined;
  /** Real time the operation in progress started (null when idle): a sink that never finishes one is stuck. */
  operationStartedAt: number | null;
  lastCleanupStamp: string | undefined;
  queue: Promise<void>;
  pendingCheck: NodeJS.Timeout | undefined;
}

interface FileFailure {
  path: string;
  error: unknown;
}

interface FileWrite {
  path: string;
  cause: WriteCause;
}

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

const MAX_WRITE_RETRY_MS = 60_000;
const EVENT_DEBOUNCE_MS = 5;
// A file event ends a backoff (the obstacle may be gone), but a storm of events never makes retries faster than this.
const MIN_RETRY_AFTER_EVENT_MS = 250;
/**
 * An operation on a sink (read, write, fsync of a few small files) that has run this long is stuck: reads never
 * block (see core/safe-read), so only a file system that stopped answering gets here. It shows in /healthz,
 * /status and the metrics; shutdown waits for it no longer than its own bound.
 */
const SINK_STUCK_AFTER_MS = 30_000;

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
        files: new Map(),
        written: new Set(),
        started: false,
        healthy: false,
        lastWriteAt: null,
        lastError: null,
        consecutiveFailures: 0,
        unhealthySince: null,
        nextRetryAt: undefined,
        lastFailureAt: undefined,
        operationStartedAt: null,
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
    const problem = (rt: SinkRuntime, path: string, error: unknown) =>
      problems.push(`account ${rt.account.name}, sink ${rt.config.name} (${path}): ${classifyFsError(error)}: ${describeError(error)}`);
    for (const rt of account === undefined ? this.all() : (this.sinks.get(account) ?? [])) {
      let dir: Directory;
      try {
        dir = await openSinkDirectory(rt.config, this.fs, true);
      } catch (error) {
        problem(rt, sinkDirectory(rt.config), error);
        continue;
      }
      try {
        const checked: string[] = [];
        for (const path of sinkPaths(rt.config, now)) {
          try {
            const inspection = await inspectSinkFile(this.fs, rt.config, path, '\0', '\0', dir);
            if (inspection.kind === 'refused') throw inspection.error;
            const key = `${dir.path}\0${JSON.stringify(rt.config.access)}`;
            if (!writeChecks.has(key)) writeChecks.set(key, this.checkWritable(dir, rt.config.access));
            await writeChecks.get(key);
            checked.push(basename(path));
          } catch (error) {
            problem(rt, path, error);
          }
        }
        await removeStaleTempFilesIn(dir, checked, this.fs);
      } finally {
        await dir.close();
      }
    }
    return problems;
  }

  /** Writes and removes a file in `dir` the way a sink file is written: proves the directory takes it. */
  private async checkWritable(dir: Directory, access: SinkConfig['access']): Promise<void> {
    const probe = `.broker-token-sidecar-write-check-${process.pid}`;
    await writeFileInDirectory(dir, probe, '', { ...access, fs: this.fs });
    await this.fs.unlink(dir.entry(probe));
  }

  /** Sets what an account's sinks must hold and writes them now. Never throws: failures are retried later. */
  async publish(account: string, view: TokenView, cause: 'token' | 'start'): Promise<void> {
    const runtimes = this.sinks.get(account) ?? [];
    await Promise.all(
      runtimes.map((rt) => {
        // A new token, approval key or expiry (a same-token answer can correct it) is new content for every file.
        const tokenChanged = rt.view?.accessToken !== view.accessToken || rt.view?.approvalKey !== view.approvalKey || rt.view?.expiresAt !== view.expiresAt;
        rt.view = view;
        return this.exclusive(rt, async () => {
          const now = this.options.clock.now();
          if (cause === 'start' || !tokenChanged) {
            // Files that already hold the right bytes are left alone: a restart rewrites nothing.
            await this.check(rt);
          } else {
            await this.writeNewToken(rt, view, now);
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
        rt.view = undefined;
        rt.healthy = false;
        rt.unhealthySince = null;
        await inSinkDirectory(rt.config, this.fs, async (dir) => {
          for (const path of this.knownPaths(rt))
            await this.fs.unlink(dir.entry(basename(path))).then(
              () => removed.push(path),
              () => undefined,
            );
        });
        rt.files.clear();
        rt.written.clear();
        rt.started = false;
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
        const rolledOver = rt.started && sinkPaths(rt.config, now).some((path) => !rt.written.has(path));
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
      if (rt.config.format === 'kis-auth' && rt.view) next = Math.min(next, nextKisAuthChange(rt.config, now));
    }
    return next;
  }

  /**
   * Brings every current file of a sink to what it must hold: files that hold it are left alone, damaged ones
   * are repaired, and a file under a name that became current (a new day's kis_auth.py file) is written. One
   * file that cannot be written never keeps the others from being written.
   */
  private async check(rt: SinkRuntime): Promise<void> {
    if (!rt.view || this.closed) return;
    const content = renderSink(rt.config, rt.view);
    if (content === undefined) return;
    const now = this.options.clock.now();
    const backingOff = rt.nextRetryAt !== undefined && now < rt.nextRetryAt;
    const files = new Map<string, SinkFileStatus>();
    const failures: FileFailure[] = [];
    const writes: FileWrite[] = [];
    const paths = sinkPaths(rt.config, now);
    const dir = await this.openDirectory(rt, paths, files, failures);
    if (!dir) return this.settle(rt, files, failures, writes, now);
    try {
      await this.checkFiles(rt, dir, paths, content, backingOff, { files, failures, writes }, now);
    } finally {
      await dir.close();
    }
    this.settle(rt, files, failures, writes, now);
    if (writes.some((write) => write.cause === 'rollover')) await this.cleanup(rt, now);
  }

  /**
   * The sink's directory for one operation (see sinks/directory.ts); when it cannot be opened (a parent swapped
   * for a link, say), every file counts as failed with that reason, and nothing is read or written.
   */
  private async openDirectory(rt: SinkRuntime, paths: string[], files: Map<string, SinkFileStatus>, failures: FileFailure[]): Promise<Directory | undefined> {
    try {
      return await openSinkDirectory(rt.config, this.fs, true);
    } catch (error) {
      for (const path of paths) {
        files.set(path, { path, present: false, healthy: false, mode: null });
        failures.push({ path, error });
      }
      return undefined;
    }
  }

  private async checkFiles(
    rt: SinkRuntime,
    dir: Directory,
    paths: string[],
    content: string,
    backingOff: boolean,
    { files, failures, writes }: { files: Map<string, SinkFileStatus>; failures: FileFailure[]; writes: FileWrite[] },
    now: number,
  ): Promise<void> {
    for (const path of paths) {
      const inspection = await inspectSinkFile(this.fs, rt.config, path, content, rt.view!.accessToken, dir);
      if (inspection.kind === 'healthy') {
        files.set(path, { path, present: true, healthy: true, mode: inspection.mode });
        rt.written.add(path);
        continue;
      }
      const found = inspection.kind === 'repair' ? inspection.mode : null;
      files.set(path, { path, present: found !== null, healthy: false, mode: found });
      if (inspection.kind === 'refused') {
        failures.push({ path, error: inspection.error });
        continue;
      }
      if (backingOff) continue; // after a failed write, the next attempt waits its turn
      const cause: WriteCause = rt.written.has(path) ? inspection.reason : rt.started ? 'rollover' : 'start';
      const failure = await this.writeFile(rt, dir, path, content, now);
      if (failure) failures.push(failure);
      else {
        files.set(path, { path, present: true, healthy: true, mode: rt.config.access.mode });
        writes.push({ path, cause });
      }
    }
  }

  /** A new token: every current file gets it now, whatever they hold, and the application is told. */
  private async writeNewToken(rt: SinkRuntime, view: TokenView, now: number): Promise<void> {
    const content = renderSink(rt.config, view);
    if (content === undefined || this.closed) return;
    const cause = rt.started ? 'token' : 'start';
    const files = new Map<string, SinkFileStatus>();
    const failures: FileFailure[] = [];
    const writes: FileWrite[] = [];
    const paths = sinkPaths(rt.config, now);
    const dir = await this.openDirectory(rt, paths, files, failures);
    if (!dir) return this.settle(rt, files, failures, writes, now);
    try {
      for (const path of paths) {
        const failure = await this.writeFile(rt, dir, path, content, now);
        if (failure) failures.push(failure);
        else writes.push({ path, cause });
        files.set(path, { path, present: failure === undefined, healthy: failure === undefined, mode: failure === undefined ? rt.config.access.mode : null });
      }
      this.settle(rt, files, failures, writes, now);
      if (writes.length > 0) await this.refreshEarlierDailyFiles(rt, dir, paths, content);
    } finally {
      await dir.close();
    }
    if (writes.length > 0) this.notify(rt, paths[0]!);
  }

  /** Writes one file; on success it counts as written, on failure the failure is returned. */
  private async writeFile(rt: SinkRuntime, dir: Directory, path: string, content: string, now: number): Promise<FileFailure | undefined> {
    try {
      await writeFileInDirectory(dir, basename(path), content, { ...rt.config.access, fs: this.fs });
    } catch (error) {
      return { path, error };
    }
    rt.written.add(path);
    rt.started = true;
    rt.lastWriteAt = now;
    return undefined;
  }

  /**
   * The sink's state after a check or a write of all its current files, then the events: a listener that asks
   * whether the sink is ready when a file is written gets the answer that includes that write.
   */
  private settle(rt: SinkRuntime, files: Map<string, SinkFileStatus>, failures: FileFailure[], writes: FileWrite[], now: number): void {
    const recovered = this.updateHealth(rt, files, failures, now);
    for (const { path, cause } of writes) {
      const ref = { account: rt.account, sink: rt.config.name, path };
      if (cause === 'token' || cause === 'start' || cause === 'rollover') this.options.bus.emit('sink.written', { ...ref, cause });
      else this.options.bus.emit('sink.repaired', { ...ref, reason: cause });
    }
    if (recovered) this.options.bus.emit('sink.recovered', { account: rt.account, sink: rt.config.name, path: files.keys().next().value! });
  }

  /** Returns whether the sink has just recovered from failed writes. */
  private updateHealth(rt: SinkRuntime, files: Map<string, SinkFileStatus>, failures: FileFailure[], now: number): boolean {
    rt.files = files;
    // Names no longer current (yesterday's) leave the set, so it never grows.
    for (const path of rt.written) if (!files.has(path)) rt.written.delete(path);
    if ([...files.values()].some((file) => file.healthy)) rt.started = true;
    if (failures.length > 0) {
      this.markFailed(rt, failures, now);
      return false;
    }
    if (![...files.values()].every((file) => file.healthy)) {
      this.markUnhealthy(rt, now);
      return false;
    }
    const recovered = rt.consecutiveFailures > 0;
    rt.healthy = true;
    rt.lastError = null;
    rt.consecutiveFailures = 0;
    rt.unhealthySince = null;
    rt.nextRetryAt = undefined;
    return recovered;
  }

  private markFailed(rt: SinkRuntime, failures: FileFailure[], now: number): void {
    this.markUnhealthy(rt, now);
    rt.consecutiveFailures += 1;
    rt.lastFailureAt = now;
    rt.nextRetryAt = now + Math.min(MAX_WRITE_RETRY_MS, 1000 * 2 ** (rt.consecutiveFailures - 1));
    for (const { path, error } of failures) {
      const reason = classifyFsError(error);
      const message = describeError(error);
      rt.lastError = { reason, message, at: now };
      this.options.bus.emit('sink.write_failed', {
        account: rt.account,
        sink: rt.config.name,
        path,
        reason,
        message,
        consecutiveFailures: rt.consecutiveFailures,
      });
    }
  }

  private markUnhealthy(rt: SinkRuntime, now: number): void {
    rt.healthy = false;
    rt.unhealthySince ??= now;
  }

  /**
   * A bot that imported kis_auth.py yesterday still reads yesterday's file. When the token changes, the
   * earlier daily files still kept are brought up to date too, so such a bot never sees a dead token.
   */
  private async refreshEarlierDailyFiles(rt: SinkRuntime, dir: Directory, currentPaths: string[], content: string): Promise<void> {
    if (rt.config.format !== 'kis-auth') return;
    const current = new Set(currentPaths.map((path) => basename(path)));
    for (const name of await this.dailyFiles(dir)) {
      if (current.has(name) || this.closed) continue;
      const info = await this.fs.lstat(dir.entry(name)).catch(() => undefined);
      if (!info?.isFile()) continue;
      await writeFileInDirectory(dir, name, content, { ...rt.config.access, fs: this.fs }).catch(() => undefined);
    }
  }

  private async dailyFiles(dir: Directory): Promise<string[]> {
    const names = await this.fs.readdir(dir.entry('.')).catch(() => [] as string[]);
    return names
      .filter((name) => KIS_AUTH_FILE.test(name))
      .sort()
      .reverse();
  }

  /**
   * Removes daily files older than keepDays, counted from the earliest date any reader zone shows (a file that
   * is today's somewhere is never old); nothing that does not match KIS{YYYYMMDD} is ever touched.
   */
  private async cleanup(rt: SinkRuntime, now: number): Promise<void> {
    if (rt.config.format !== 'kis-auth') return;
    const keepDays = rt.config.keepDays;
    const cutoff = rt.config.readerTimeZones.map((zone) => dateStampDaysBefore(now, zone, keepDays)).sort()[0]!;
    if (rt.lastCleanupStamp === cutoff) return;
    const removed: string[] = [];
    // Through the directory held open: a file name is never unlinked through a parent swapped for a link. A
    // directory that cannot be opened is tried again at the next clean-up; the check reports why.
    const done = await inSinkDirectory(rt.config, this.fs, async (dir) => {
      for (const name of await this.dailyFiles(dir)) {
        const stamp = KIS_AUTH_FILE.exec(name)![1]!;
        if (stamp >= cutoff) continue;
        const info = await this.fs.lstat(dir.entry(name)).catch(() => undefined);
        if (!info?.isFile()) continue;
        await this.fs.unlink(dir.entry(name)).then(
          () => removed.push(name),
          () => undefined,
        );
      }
      return true;
    });
    if (!done) return;
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

  /** One operation at a time per sink, so a check never races a write; each is timed, so a stuck one shows. */
  private exclusive(rt: SinkRuntime, operation: () => Promise<void>): Promise<void> {
    const timed = async () => {
      rt.operationStartedAt = Date.now();
      try {
        await operation();
      } finally {
        rt.operationStartedAt = null;
      }
    };
    const run = rt.queue.then(timed, timed);
    rt.queue = run.catch(() => undefined);
    return rt.queue;
  }

  private stuckSince(rt: SinkRuntime, now = Date.now()): number | null {
    const after = this.options.stuckAfterMs ?? SINK_STUCK_AFTER_MS;
    return rt.operationStartedAt !== null && now - rt.operationStartedAt > after ? rt.operationStartedAt : null;
  }

  /** Sinks with an operation running far too long, as `account/sink` (for /healthz). */
  stuckSinks(): string[] {
    const now = Date.now();
    return this.all()
      .filter((rt) => this.stuckSince(rt, now) !== null)
      .map((rt) => `${rt.account.name}/${rt.config.name}`);
  }

  private ensureWatchers(): void {
    if (this.closed || !this.options.watch) return;
    const dirs = new Set(this.all().map((rt) => sinkDirectory(rt.config)));
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
      if (sinkDirectory(rt.config) !== dir) continue;
      if (filename !== undefined && !this.knownPaths(rt).some((path) => basename(path) === filename)) continue;
      if (rt.pendingCheck) continue;
      // Something changed at a file that could not be written: the obstacle may be gone, so the backoff ends
      // (a second after the failure at the soonest, so events never drive retries faster than that).
      const now = this.options.clock.now();
      if (rt.nextRetryAt !== undefined && rt.lastFailureAt !== undefined) {
        rt.nextRetryAt = Math.min(rt.nextRetryAt, Math.max(now, rt.lastFailureAt + MIN_RETRY_AFTER_EVENT_MS));
      }
      const delay = Math.max(EVENT_DEBOUNCE_MS, (rt.nextRetryAt ?? 0) - now);
      rt.pendingCheck = setTimeout(() => {
        rt.pendingCheck = undefined;
        void this.exclusive(rt, () => this.check(rt));
      }, delay);
    }
  }

  /** The current files and those this run wrote that may still be on disk. */
  private knownPaths(rt: SinkRuntime): string[] {
    return [...new Set([...sinkPaths(rt.config, this.options.clock.now()), ...rt.files.keys(), ...rt.written])];
  }

  status(account: string): SinkStatus[] {
    const now = this.options.clock.now();
    return (this.sinks.get(account) ?? []).map((rt) => {
      const files = sinkPaths(rt.config, now).map((path) => rt.files.get(path) ?? { path, present: false, healthy: false, mode: null });
      return {
        name: rt.config.name,
        format: rt.config.format,
        path: files[0]!.path,
        files,
        ...summarizeFiles(files, rt.config.access.mode),
        healthy: rt.healthy,
        expectedMode: rt.config.access.mode,
        lastWriteAt: rt.lastWriteAt,
        lastError: rt.lastError,
        consecutiveFailures: rt.consecutiveFailures,
        unhealthySince: rt.unhealthySince,
        stuckSince: this.stuckSince(rt),
      };
    });
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
    for (const rt of this.sinks.get(account) ?? []) {
      const config = rt.config;
      await inSinkDirectory(config, this.fs, async (dir) => {
        const paths =
          config.format === 'kis-auth' ? (await this.dailyFiles(dir)).map((name) => join(config.dir, name)) : sinkPaths(config, this.options.clock.now());
        for (const path of paths) {
          // Never through a symlink planted at a sink path, never a FIFO or device: only a small regular file.
          const content = await readSinkFile(this.fs, { ...config, access: { ...config.access, followSymlinks: false } }, path, dir).then(
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
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
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

import type { SinkConfig } from '../config/types';
import type { FileSystem } from '../core/atomic-file';
import type { Clock } from '../core/clock';
import { classifyFsError, describeError, type SinkRepairReason, type SinkWriteFailureReason } from '../core/errors';
import type { AccountRef, EventBus } from '../core/events';
import { sinkPaths, type TokenView } from './formats';

/**
 * What the supervisor knows of one sink between operations: its files as last found or written, its health, its
 * backoff after failed writes, and the queue that runs one operation on it at a time. The transitions after a pass
 * over the files (healthy, unhealthy, failed with backoff) are here; what is reported of them is in report.ts.
 */

/** One file of a sink, as last found or written (a kis-auth sink keeps one per date a reader may compute). */
export interface SinkFileStatus {
  path: string;
  present: boolean;
  healthy: boolean;
  /** The file's permission bits as found, or null when there is no file. */
  mode: number | null;
}

export interface SinkRuntime {
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
  lastError: { reason: string; message: string; at: number } | null;
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

export function newSinkRuntime(account: AccountRef, config: SinkConfig): SinkRuntime {
  return {
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
  };
}

/** What every job on a sink acts through. */
export interface SinkContext {
  fs: FileSystem;
  clock: Clock;
  bus: EventBus;
  /** The supervisor was closed: nothing is written any more. */
  closed: () => boolean;
}

export type WriteCause = 'token' | 'start' | 'rollover' | SinkRepairReason;

/** One pass over a sink's current files (a check, or the write of a new token): what was found, failed and written. */
export interface SinkPass {
  files: Map<string, SinkFileStatus>;
  failures: Array<{ path: string; error: unknown }>;
  writes: Array<{ path: string; cause: WriteCause }>;
}

export function emptyPass(): SinkPass {
  return { files: new Map(), failures: [], writes: [] };
}

const MAX_WRITE_RETRY_MS = 60_000;

/** Whether a failed write still waits for its retry. */
export function backingOff(rt: SinkRuntime, now: number): boolean {
  return rt.nextRetryAt !== undefined && now < rt.nextRetryAt;
}

/** What a failed write is reported as: a reason from the closed set, and words fit for logs and /status. */
export function failureOf(error: unknown): { reason: SinkWriteFailureReason; message: string } {
  return { reason: classifyFsError(error), message: describeError(error) };
}

/**
 * The sink's state after a pass over all its current files: healthy when every file is; failed, with the next
 * retry backed off (1 s doubling to a minute), when a file could not be written. Returns whether the sink has just
 * recovered from failed writes.
 */
export function recordPass(rt: SinkRuntime, pass: SinkPass, now: number): boolean {
  rt.files = pass.files;
  // Names no longer current (yesterday's) leave the set, so it never grows.
  for (const path of rt.written) if (!pass.files.has(path)) rt.written.delete(path);
  const files = [...pass.files.values()];
  if (files.some((file) => file.healthy)) rt.started = true;
  const last = pass.failures.at(-1);
  if (last || !files.every((file) => file.healthy)) {
    rt.healthy = false;
    rt.unhealthySince ??= now;
    if (!last) return false;
    rt.consecutiveFailures += 1;
    rt.lastFailureAt = now;
    rt.nextRetryAt = now + Math.min(MAX_WRITE_RETRY_MS, 1000 * 2 ** (rt.consecutiveFailures - 1));
    rt.lastError = { ...failureOf(last.error), at: now };
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

/** A file written: it counts as holding the token from now on. */
export function recordWrite(rt: SinkRuntime, path: string, now: number): void {
  rt.written.add(path);
  rt.started = true;
  rt.lastWriteAt = now;
}

// A file event ends a backoff (the obstacle may be gone), but a storm of events never makes retries faster than this.
const MIN_RETRY_AFTER_EVENT_MS = 250;

/** Something changed at the sink's files: a backoff ends now, or a quarter second after the failure at the soonest. */
export function shortenBackoff(rt: SinkRuntime, now: number): void {
  if (rt.nextRetryAt !== undefined && rt.lastFailureAt !== undefined) {
    rt.nextRetryAt = Math.min(rt.nextRetryAt, Math.max(now, rt.lastFailureAt + MIN_RETRY_AFTER_EVENT_MS));
  }
}

/** The current files and those this run wrote that may still be on disk. */
export function knownPaths(rt: SinkRuntime, now: number): string[] {
  return [...new Set([...sinkPaths(rt.config, now), ...rt.files.keys(), ...rt.written])];
}

/** Forgets the sink's files (after a revoke): nothing to hold until the next token. */
export function forgetFiles(rt: SinkRuntime): void {
  rt.view = undefined;
  rt.healthy = false;
  rt.unhealthySince = null;
  rt.files.clear();
  rt.written.clear();
  rt.started = false;
}

/** One operation at a time per sink, so a check never races a write; each is timed, so a stuck one shows. */
export function exclusive(rt: SinkRuntime, operation: () => Promise<void>): Promise<void> {
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

import type { SinkConfig } from '../config/types';
import type { EventBus } from '../core/events';
import { sinkPaths } from './formats';
import { failureOf, type SinkFileStatus, type SinkPass, type SinkRuntime } from './sink-state';

/**
 * What is told of the sinks: the events of each pass over a sink's files (written, repaired, failed, recovered),
 * and the status every reader sees (/status, /healthz, the metrics, the alerts, the `status` command).
 */

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

/**
 * The events of a pass, once the sink's state includes it (recordPass): a listener that asks whether the sink is
 * ready when a file is written gets the answer that includes that write.
 */
export function reportPass(bus: EventBus, rt: SinkRuntime, pass: SinkPass, recovered: boolean): void {
  const sink = { account: rt.account, sink: rt.config.name };
  for (const { path, error } of pass.failures) {
    bus.emit('sink.write_failed', { ...sink, path, ...failureOf(error), consecutiveFailures: rt.consecutiveFailures });
  }
  for (const { path, cause } of pass.writes) {
    if (cause === 'token' || cause === 'start' || cause === 'rollover') bus.emit('sink.written', { ...sink, path, cause });
    else bus.emit('sink.repaired', { ...sink, path, reason: cause });
  }
  if (recovered) bus.emit('sink.recovered', { ...sink, path: pass.files.keys().next().value! });
}

/**
 * An operation on a sink (read, write, fsync of a few small files) that has run this long is stuck: reads never
 * block (see core/safe-read), so only a file system that stopped answering gets here. It shows in /healthz,
 * /status and the metrics; shutdown waits for it no longer than its own bound.
 */
export const SINK_STUCK_AFTER_MS = 30_000;

/** Since when (real time) the operation in progress has run longer than `stuckAfterMs`; null when none has. */
export function stuckSince(rt: SinkRuntime, stuckAfterMs: number, now = Date.now()): number | null {
  return rt.operationStartedAt !== null && now - rt.operationStartedAt > stuckAfterMs ? rt.operationStartedAt : null;
}

export function sinkStatus(rt: SinkRuntime, now: number, stuckAfterMs: number): SinkStatus {
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
    stuckSince: stuckSince(rt, stuckAfterMs),
  };
}

/**
 * Small measurements, taken in the same run, that say where the time of a bigger one goes: what prom-client's
 * process metrics cost per scrape, and what one atomic file write (the start-up write check) costs on this disk.
 */
import { mkdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { writeFileAtomic } from '../src/core/atomic-file';
import { childEnv, median, startChild, tempDir } from './lib';

export interface ProcessMetricsCost {
  renders: number;
  medianMs: number;
  /** The same registry without the nodejs_eventloop_lag_* families. */
  withoutLagMedianMs: number;
  command: string;
}

const PROBE = join(__dirname, 'process-metrics-probe.js');

/** Renders prom-client's process metrics (as the sidecar registers them) in a bare Node process, one per loop turn. */
export async function measureProcessMetricsCost(): Promise<ProcessMetricsCost> {
  const child = startChild(process.execPath, [PROBE], childEnv());
  const { code } = await child.exited;
  if (code !== 0) throw new Error(`process-metrics probe exited ${code}: ${child.output()}`);
  const result = JSON.parse(child.output().trim().split('\n').pop()!) as { renders: number; medianMs: number; withoutLagMedianMs: number };
  return { ...result, command: 'node dist/bench/process-metrics-probe.js' };
}

export interface WriteCost {
  writes: number;
  medianMs: number;
}

/**
 * The sidecar's atomic write (temp file, fsync, rename, directory fsync) of an empty file, then its removal,
 * one after another in one directory: what its start-up write check does once per sink.
 */
export async function measureWriteCheckCost(writes = 200): Promise<WriteCost> {
  const dir = join(tempDir('fsync'), 'sinks');
  mkdirSync(dir, { mode: 0o700 });
  const times: number[] = [];
  for (let i = 0; i < writes; i++) {
    const path = join(dir, `.write-check-${i}`);
    const t0 = performance.now();
    await writeFileAtomic(path, '', { mode: 0o600, dirMode: 0o700 });
    unlinkSync(path);
    times.push(performance.now() - t0);
  }
  return { writes, medianMs: median(times) };
}

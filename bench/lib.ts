/**
 * What every measurement shares: progress on stderr, child processes and temp dirs that are always cleaned up,
 * free ports, HTTP GETs with no keep-alive, and the statistics (median, nearest-rank percentiles).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const began = Date.now();

export function elapsedSeconds(): number {
  return (Date.now() - began) / 1000;
}

export function progress(message: string): void {
  process.stderr.write(`[bench ${elapsedSeconds().toFixed(0).padStart(4)} s] ${message}\n`);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---- cleanup: children and directories are registered as they are made and removed whatever happens ----

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
const closers: Array<() => Promise<void> | void> = [];

export function tempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `bts-bench-${label}-`));
  dirs.add(dir);
  return dir;
}

function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  dirs.delete(dir);
}

export function onCleanup(fn: () => Promise<void> | void): void {
  closers.push(fn);
}

/** Kills what is left (SIGKILL), runs the registered closers, removes the temp dirs. */
export async function cleanupAll(): Promise<void> {
  killAllNow();
  while (closers.length > 0) {
    try {
      await closers.pop()!();
    } catch {
      // best effort: the rest must still be cleaned
    }
  }
  for (const dir of [...dirs]) removeDir(dir);
}

/** The synchronous part, for process 'exit'. */
export function killAllNow(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
}

export function removeDirsNow(): void {
  for (const dir of [...dirs]) {
    try {
      removeDir(dir);
    } catch {
      // best effort at exit
    }
  }
}

export interface Child {
  proc: ChildProcess;
  pid: number;
  /** The last few KB of stdout and stderr, for error messages. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running(): boolean;
}

export function startChild(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Child {
  const proc = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let tail = '';
  const keep = (d: Buffer) => {
    tail = (tail + d.toString('utf8')).slice(-8192);
  };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => {
      children.delete(proc);
      resolve({ code, signal });
    });
    proc.once('error', (error) => {
      children.delete(proc);
      tail += `\nspawn error: ${error.message}`;
      resolve({ code: -1, signal: null });
    });
  });
  if (proc.pid === undefined) throw new Error(`could not start ${command}`);
  return { proc, pid: proc.pid, output: () => tail, exited, running: () => proc.exitCode === null && proc.signalCode === null };
}

/** SIGTERM (or the given signal), then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopChild(child: Child, signal: NodeJS.Signals = 'SIGTERM', graceMs = 20_000): Promise<void> {
  if (!child.running()) return;
  child.proc.kill(signal);
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
}

/** An environment for the sidecar's children without the test hooks (an accelerated clock) a caller may have set. */
export function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('BROKER_TOKEN_SIDECAR')) delete env[key];
  return env;
}

/** The tests' free-port finder: the bench's servers are started and stopped on chosen ports as well. */
export { freePort, median } from '../test/helpers';

interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One GET on a fresh connection (no agent, no keep-alive). */
export function httpGet(url: string, timeoutMs = 10_000, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: timeoutMs, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** An error that `waitFor` must pass on rather than take for "not yet". */
export class FatalError extends Error {}

/** Polls `condition` every `everyMs` until it holds; throws naming `what` after `timeoutMs`. */
export async function waitFor(what: string, timeoutMs: number, condition: () => boolean | Promise<boolean>, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await condition()) return;
    } catch (error) {
      if (error instanceof FatalError) throw error;
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Polls `url` until it answers 200; throws at once, with its output, if `child` (the server) exits. */
export async function until200(name: string, url: string, child: Child, timeoutMs = 20_000): Promise<void> {
  await waitFor(
    `${name} at ${url}`,
    timeoutMs,
    async () => {
      if (!child.running()) throw new FatalError(`${name} exited: ${child.output()}`);
      return (await httpGet(url, 5_000)).status === 200;
    },
    20,
  );
}

// ---- statistics ----

function sorted(values: number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/** Nearest-rank percentile: the smallest value with at least p % of the values at or below it. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = sorted(values);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export const min = (values: number[]): number => Math.min(...values);
export const max = (values: number[]): number => Math.max(...values);

// ---- formatting ----

export function ms(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (value < 1) return `${value.toFixed(3)} ms`;
  if (value < 10) return `${value.toFixed(2)} ms`;
  if (value < 100) return `${value.toFixed(1)} ms`;
  return `${Math.round(value).toLocaleString('en')} ms`;
}

export function bytes(value: number): string {
  if (value < 1024) return `${value} B`;
  if (value < 1024 * 1024) return `${(value / 1024).toFixed(1)} KiB`;
  return `${(value / 1024 / 1024).toFixed(2)} MiB`;
}

export function num(value: number, digits = 0): string {
  return value.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : 'n/a';
}

export function hoursMinutes(msValue: number): string {
  const minutes = Math.round(msValue / 60_000);
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

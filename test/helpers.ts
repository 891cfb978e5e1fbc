import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { appendFileSync, constants as fsConstants, existsSync, mkdtempSync, readlinkSync, rmSync, type PathLike } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ManualClock } from '../src/core/clock';
import { createLogger, type Logger } from '../src/logging/logger';
import { SecretRegistry } from '../src/core/secrets';
import { parseConfig } from '../src/config/load';
import type { SidecarConfig } from '../src/config/types';
import { BrokerSimulator, generateCredential, type SimulatorCredential, type SimulatorOptions } from '../src/simulator';
import { createHttpApp } from '../src/http/app';
import { listen } from '../src/http/server';
import type { Sidecar } from '../src/sidecar';
import { createSidecar, type SidecarOptions } from '../src/wiring';

/**
 * The two tiers of the suite. `npm test` runs every test with short parameters (fewer kills, fewer real seconds,
 * shorter alert waits); `npm run reliability` sets BTS_LONG=1 and runs the same tests with the long ones, from
 * which docs/reliability.md is written. No test runs in one tier only.
 */
const LONG = process.env.BTS_LONG === '1';

/** `short` in `npm test`, `long` in `npm run reliability` (BTS_LONG=1). */
export function tier<T>(short: T, long: T): T {
  return LONG ? long : short;
}

/** The built CLI, as the tests start it (`node CLI start --config …`). */

// Coverage (c8, `npm test`) is measured in the test processes themselves. The sidecars, simulators and clients they
// start run without it, as in production: V8's coverage keeps every function's counters, and the tests that measure
// a process's memory and timing (the soak, the hostile clients) would count that instead of the sidecar.
delete process.env.NODE_V8_COVERAGE;

export const CLI = join(__dirname, '..', 'src', 'cli.js');

/**
 * A free loopback port below the kernel's ephemeral range (32768 and up on Linux). A server a test stops and
 * starts again on the same port (Redis, a replica) could otherwise find it taken by an outgoing connection's
 * local port, or by a client that reconnected to itself while nothing listened there.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * 22_000);
    const server = createNetServer();
    const bound = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (bound) {
      await new Promise<void>((r) => server.close(() => r()));
      return port;
    }
  }
  throw new Error('no free port between 10000 and 32000');
}

/**
 * Polls `probe` every `everyMs` until it gives a value, and returns it. A probe that throws counts as "not yet" (a
 * server still starting); one that never answers (a client stuck on a dead socket) cannot hold the test past the
 * deadline. The timeout names what was awaited (a function, to describe the state at that moment) and the last error.
 */
export async function waitFor<T>(what: string | (() => string), ms: number, probe: () => T | undefined | Promise<T | undefined>, everyMs = 100): Promise<T> {
  const start = Date.now();
  let lastError: unknown;
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), Math.max(0, start + ms - Date.now()) + 1_000);
    });
    const check = Promise.resolve()
      .then(probe)
      .catch((error: unknown) => {
        lastError = error;
        return undefined;
      });
    const value = await Promise.race([check, deadline]).finally(() => clearTimeout(timer));
    if (value !== undefined) return value;
    if (Date.now() - start > ms) {
      const described = typeof what === 'string' ? what : what();
      throw new Error(
        `timed out after ${ms} ms waiting for ${described}${lastError ? ` (last error: ${lastError instanceof Error ? String(lastError) : JSON.stringify(lastError)})` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Polls `condition` until it holds (see waitFor), and returns how long that took. */
export async function until(what: string | (() => string), ms: number, condition: () => boolean | Promise<boolean>, everyMs = 100): Promise<number> {
  const start = Date.now();
  await waitFor(what, ms, async () => ((await condition()) ? true : undefined), everyMs);
  return Date.now() - start;
}

/** Resolves with the exit code (null after a signal) once `child` has exited, at once if it already has. */
export function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

type TestContext = { after(fn: () => void | Promise<void>): void };

/** The processes each test started, so that its clean-up can stop them before it removes their directories. */
const childrenOf = new WeakMap<object, Set<ChildProcess>>();

/**
 * Starts a process that lives no longer than the test: it is killed, and its exit awaited, when the test ends and
 * before the test's temporary directories are removed (a process still writing in a directory makes its removal
 * fail with ENOTEMPTY, whatever order the clean-ups were registered in).
 */
export function spawnForTest(t: TestContext, command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(command, args, options);
  let children = childrenOf.get(t);
  if (!children) {
    children = new Set();
    childrenOf.set(t, children);
    t.after(() => stopChildren(t));
  }
  children.add(child);
  return child;
}

async function stopChildren(t: TestContext): Promise<void> {
  const children = [...(childrenOf.get(t) ?? [])];
  await Promise.all(
    children.map((child) => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return exited(child);
    }),
  );
}

/** The middle value (the mean of the two middle ones for an even count); NaN for none. */
export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const teardownsOf = new WeakMap<TestContext, Array<() => unknown>>();

/**
 * Closes something (a sidecar, a server) when the test ends, before its temporary directories are removed,
 * whatever order the two were registered in: a sidecar closed after its directory was removed writes its last
 * state into a directory it creates again, and leaves it behind.
 */
export function closeBeforeCleanup(t: TestContext, close: () => unknown): void {
  let teardowns = teardownsOf.get(t);
  if (!teardowns) {
    teardowns = [];
    teardownsOf.set(t, teardowns);
    t.after(() => runTeardowns(t));
  }
  teardowns.push(close);
}

async function runTeardowns(t: TestContext): Promise<void> {
  const teardowns = teardownsOf.get(t) ?? [];
  // Last opened, first closed; each runs once, whichever hook gets here first.
  for (const close of teardowns.splice(0).reverse()) await close();
}

const removedTempDirs = new Set<string>();
// The suite's promise that nothing writes after close(): a removed directory that came back was written into
// by something still running. Checked when the test file's process ends; it fails that file.
process.on('exit', () => {
  const back = [...removedTempDirs].filter((dir) => existsSync(dir));
  if (back.length === 0) return;
  process.stderr.write(`written after the test that owned them ended (something was still running): ${back.join(', ')}\n`);
  for (const dir of back) rmSync(dir, { recursive: true, force: true });
  process.exitCode = 1;
});

/**
 * A fresh temporary directory, removed when the test ends, after the processes the test started have exited
 * and what it registered with closeBeforeCleanup is closed.
 */
export function tempDir(t: TestContext, prefix = 'bts-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(async () => {
    await stopChildren(t);
    await runTeardowns(t);
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    removedTempDirs.add(dir);
  });
  return dir;
}

/** 2026-11-20 09:00:00 KST: a weekday morning, far from midnight. */
export const T0 = Date.UTC(2026, 10, 20, 0, 0, 0);
export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;

/**
 * Marker secrets: recognisable strings used as credentials across the suite, so a test can scan any output
 * for them. They have the real lengths (KIS: 36 and 180 characters).
 */
export function markerCredential(provider: 'kis' | 'kiwoom', tag: string, env: 'real' | 'mock' = 'real'): SimulatorCredential {
  const base = generateCredential(provider, `marker-${tag}`, env);
  const keyMark = `MKAK${tag.toUpperCase().replace(/[^A-Z0-9]/g, '')}`;
  const secretMark = `MKSECRET${tag.toUpperCase().replace(/[^A-Z0-9]/g, '')}`;
  return {
    ...base,
    appKey: (keyMark + base.appKey).slice(0, base.appKey.length),
    appSecret: (secretMark + base.appSecret).slice(0, base.appSecret.length),
  };
}

/** Collects log lines in memory (JSON), for tests that look at logs. */
export class LogCapture {
  readonly lines: string[] = [];
  readonly logger: Logger;
  constructor(readonly secrets = new SecretRegistry()) {
    const sink = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    this.logger = createLogger({ level: 'debug', format: 'json', secrets: this.secrets, destination: sink });
  }
  records(): Array<Record<string, unknown>> {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
  text(): string {
    return this.lines.join('\n');
  }
}

interface SimulatorHarness {
  simulator: BrokerSimulator;
  url: string;
  clock: ManualClock;
}

export async function startSimulator(
  t: { after(fn: () => Promise<void> | void): void },
  credentials: SimulatorCredential[],
  options: Partial<Omit<SimulatorOptions, 'clock' | 'credentials'>> & { clock?: ManualClock } = {},
): Promise<SimulatorHarness> {
  const clock = options.clock ?? new ManualClock(T0);
  const simulator = new BrokerSimulator({ ...options, clock, credentials });
  const url = await simulator.listen(0, '127.0.0.1');
  t.after(() => simulator.close());
  return { simulator, url, clock };
}

export interface AccountSpec {
  name: string;
  credential: SimulatorCredential;
  /** YAML for the account's sinks list and other keys, indented by the caller's choice. */
  extra?: string;
  sinks?: string;
}

/** A config text for the given accounts against the simulator; everything else default unless `extra`. */
export function configText(stateDir: string, url: string, accounts: AccountSpec[], top = ''): string {
  const blocks = accounts.map((a) =>
    [
      `  - name: ${a.name}`,
      `    provider: ${a.credential.provider}`,
      `    env: ${a.credential.env ?? 'real'}`,
      `    appKey: "${a.credential.appKey}"`,
      `    appSecret: "${a.credential.appSecret}"`,
      `    baseUrl: ${url}`,
      a.extra ? a.extra.replace(/^/gm, '    ') : '',
      `    sinks:`,
      (a.sinks ?? `- { format: json, path: ${join(stateDir, '..', 'sinks', `${a.name}.json`)} }`).replace(/^/gm, '      '),
    ]
      .filter(Boolean)
      .join('\n'),
  );
  return `stateDir: ${stateDir}\nserver: { enabled: false }\n${top}\naccounts:\n${blocks.join('\n')}\n`;
}

/** A config as the sidecar would load it on a host whose clock is in `hostTimeZone` (UTC, as in a container, unless given). */
export function parseTestConfig(text: string, baseDir: string, hostTimeZone = 'UTC'): SidecarConfig {
  return parseConfig(text, join(baseDir, 'config.yaml'), baseDir, { env: {}, hostTimeZone });
}

/** A sidecar on a fake clock, with no file watching (tests drive sink checks) unless asked. */
/** The sidecar's HTTP endpoints (/metrics, /healthz, /status, /renew) on a free loopback port, closed after the test; their URL. */
export async function serveSidecar(
  t: { after(fn: () => Promise<void>): void },
  sidecar: Sidecar,
  options: { adminToken?: string; requestTimeoutMs?: number } = {},
): Promise<string> {
  const app = createHttpApp({
    control: sidecar,
    metrics: sidecar.metrics,
    now: () => sidecar.clock.now(),
    adminToken: options.adminToken,
    secrets: sidecar.secrets,
    bus: sidecar.bus,
  });
  const server = await listen(app, '127.0.0.1', 0, options.requestTimeoutMs ?? 5_000);
  t.after(() => server.close());
  return server.url;
}

export function testSidecar(config: SidecarConfig, clock: ManualClock, options: SidecarOptions = {}): Sidecar {
  return createSidecar(config, { clock, watch: false, logger: options.logger ?? new LogCapture().logger, random: () => 0.5, ...options });
}

/**
 * Drives one account's lifecycle through simulated time: ticks, and moves the clock to the next wake-up,
 * until `until`. Returns how many ticks it took. The clock never moves backwards.
 */
export async function runAccountUntil(
  sidecar: Sidecar,
  account: string,
  clock: ManualClock,
  until: number,
  onTick?: () => void | Promise<void>,
): Promise<number> {
  const lifecycle = sidecar.account(account)!;
  let ticks = 0;
  for (;;) {
    const next = await lifecycle.tick();
    ticks++;
    await onTick?.();
    if (ticks > 100_000) throw new Error('runaway loop');
    const now = clock.now();
    if (next <= now) continue;
    if (next > until) {
      if (now < until) clock.set(until);
      return ticks;
    }
    clock.set(next);
  }
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition (enough of it for assertions). */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) throw new Error(`unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The one sample with this name whose labels include `labels`; throws when there is not exactly one. */
export function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length !== 1) throw new Error(`${name}${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0]!.value;
}

/**
 * Figures for docs/reliability.md: when RELIABILITY_REPORT names a file, tests append one JSON line per
 * finding; `npm run reliability` runs them and writes the document from those lines.
 */
export function recordReliability(entry: Record<string, unknown>): void {
  const file = process.env.RELIABILITY_REPORT;
  if (!file) return;
  // The document's figures are those of the long tier: a report from the short one would understate them.
  if (!LONG) throw new Error('RELIABILITY_REPORT is set without BTS_LONG=1: the reliability figures come from the long tier');
  appendFileSync(file, `${JSON.stringify(entry)}\n`);
}

/**
 * Where a file-system call really goes: a sink's operations reach their files through the directory they hold
 * open (`/proc/self/fd/<fd>/<name>`, see core/held-directory.ts). File systems that inject faults match on this.
 */
export function realPathOf(path: PathLike): string {
  const text = String(path);
  const held = /^\/proc\/self\/fd\/(\d+)(\/.*)?$/.exec(text);
  if (!held) return text;
  try {
    return `${readlinkSync(`/proc/self/fd/${held[1]}`)}${held[2] ?? ''}`;
  } catch {
    return text; // closed meanwhile
  }
}

/** Whether `open` flags ask for writing: injected disk faults (EROFS, ENOSPC) strike writes, never reads. */
export function opensForWriting(flags: unknown): boolean {
  if (typeof flags === 'number') return (flags & (fsConstants.O_WRONLY | fsConstants.O_RDWR)) !== 0;
  return typeof flags === 'string' && flags !== 'r';
}

/** What a fake Slack webhook does with one request: answer with `status` (and `headers`), or never answer. */
export type WebhookBehaviour = { status: number; headers?: Record<string, string>; hang?: boolean };

interface FakeSlack {
  /** The receiver's origin, for tests that give each route a path of its own (Alertmanager's receivers). */
  origin: string;
  /** A webhook URL on it, whose path plays the part of Slack's secret. */
  url: string;
  /** Every request answered, in order of arrival (a hanging one is left out). */
  requests: Array<{ path: string; body: string; status: number }>;
  /** The bodies answered with 200: the messages Slack would have posted. */
  delivered: () => string[];
  /** How the next requests are answered, one entry each; 200 once the plan is empty. */
  plan: WebhookBehaviour[];
  /** Every request that reached it, hanging ones included. */
  hits: () => number;
}

/** A local stand-in for a Slack incoming webhook (the sidecar's or Alertmanager's), closed when the test ends. */
export async function fakeSlack(
  t: { after(fn: () => Promise<void>): void },
  path = '/services/T000MARKER/B000MARKER/MARKERHOOKSECRET0123456789',
): Promise<FakeSlack> {
  const requests: FakeSlack['requests'] = [];
  const plan: WebhookBehaviour[] = [];
  let hits = 0;
  const server = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hits++;
      const behaviour = plan.shift() ?? { status: 200 };
      if (behaviour.hang) return; // never answers
      requests.push({ path: req.url ?? '', body, status: behaviour.status });
      res.writeHead(behaviour.status, { 'content-type': 'text/plain', ...behaviour.headers }).end(behaviour.status === 200 ? 'ok' : 'error');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { origin, url: `${origin}${path}`, requests, delivered: () => requests.filter((r) => r.status === 200).map((r) => r.body), plan, hits: () => hits };
}

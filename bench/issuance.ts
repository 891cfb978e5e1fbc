/**
 * Measurement 5: issuances. (a) The crash-loop test, run as it is, with its own figures read from
 * RELIABILITY_REPORT. (b) Simulated days in process on a fake clock, one account from a cold start, counted
 * at the simulator and set against the minimum a 24-hour token allows.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HOUR, T0, configText, markerCredential, parseTestConfig, runAccountUntil, startSimulator, testSidecar } from '../test/helpers';
import { childEnv, onCleanup, progress, startChild, tempDir } from './lib';

const DAY = 24 * HOUR;

// ---- (a) crash loop ----

export interface CrashloopResult {
  command: string;
  passed: boolean;
  exitCode: number | null;
  /** The test's own duration (node --test's duration_ms). */
  durationMs: number;
  kills: number;
  killsDuringIssuance: number;
  tokenRequests: number;
  issued: number;
  rateLimited: number;
  minGapMs: number;
  failure: string | undefined;
}

const CRASHLOOP_TEST = join(__dirname, '..', 'test', 'crashloop.test.js');

export async function measureCrashloop(): Promise<CrashloopResult> {
  const report = join(tempDir('crashloop'), 'report.jsonl');
  progress('issuances: the crash-loop test (50 SIGKILLs; about a minute and a half)');
  // The long tier (50 kills, renewal 5 s after issuance, which the report's minimum assumes): only it may record figures.
  const child = startChild(process.execPath, ['--test', '--test-reporter=tap', CRASHLOOP_TEST], { ...childEnv(), BTS_LONG: '1', RELIABILITY_REPORT: report });
  let tap = '';
  child.proc.stdout!.on('data', (d: Buffer) => (tap += d.toString('utf8')));
  const { code } = await child.exited;
  if (!existsSync(report)) throw new Error(`the crash-loop test wrote no figures (exit ${code}):\n${tap}\n${child.output()}`);
  const entry = readFileSync(report, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number | string>)
    .find((e) => e.kind === 'crashloop');
  if (!entry) throw new Error(`no crashloop figures in ${report}`);
  const duration = /^\s*duration_ms: ([\d.]+)/m.exec(tap);
  const failure = code === 0 ? undefined : (tapError(tap) ?? `exit ${code}`);
  return {
    command: `BTS_LONG=1 RELIABILITY_REPORT=FILE node --test dist/test/crashloop.test.js`,
    passed: code === 0,
    exitCode: code,
    durationMs: duration ? Number(duration[1]) : Number.NaN,
    kills: Number(entry.kills),
    killsDuringIssuance: Number(entry.killsDuringIssuance),
    tokenRequests: Number(entry.tokenRequests),
    issued: Number(entry.issued),
    rateLimited: Number(entry.rateLimited),
    minGapMs: Number(entry.minGapMs),
    failure,
  };
}

/** The first failure message in node --test's TAP output (`error: ...`, or a `|-` block below it). */
function tapError(tap: string): string | undefined {
  const lines = tap.split('\n');
  const at = lines.findIndex((l) => /^\s*error: /.test(l));
  if (at < 0) return undefined;
  const [, indent, value] = /^(\s*)error: (.*)$/.exec(lines[at]!)!;
  if (!/^[|>]-?$/.test(value!.trim())) return value!.replace(/^'|'$/g, '');
  const block: string[] = [];
  for (const l of lines.slice(at + 1)) {
    if (l.trim() !== '' && l.length - l.trimStart().length <= indent!.length) break;
    block.push(l.trim());
  }
  return block.join(' ').trim();
}

// ---- (b) simulated days ----

export interface PolicyRun {
  policy: string;
  /** The account's extra YAML (empty: the default policy). */
  extra: string;
  days: number;
  issued: number;
  tokenRequests: number;
  minimum: number;
  /** Gaps between consecutive issuances, ms. */
  gapsMs: number[];
  /** Wall-clock time (KST) of each renewal after the first issuance, HH:MM. */
  renewalsKst: string[];
}

const kst = (at: number): string => new Date(at + 9 * HOUR).toISOString().slice(11, 16);

/** One account from a cold start at T0 (09:00 KST) for `days` simulated days; issuances at the simulator. */
async function simulateDays(policy: string, extra: string, days: number): Promise<PolicyRun> {
  const hooks: Array<() => unknown> = [];
  const dir = mkdtempSync(join(tmpdir(), 'bts-bench-days-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  try {
    const cred = markerCredential('kis', 'bench');
    const { simulator, url, clock } = await startSimulator({ after: (fn) => void hooks.push(fn) }, [cred]);
    const text = configText(join(dir, 'state'), url, [
      { name: 'main', credential: cred, ...(extra ? { extra } : {}), sinks: `- { format: json, path: ${join(dir, 'main.json')} }` },
    ]);
    const sidecar = testSidecar(parseTestConfig(text, dir), clock);
    await sidecar.open();
    hooks.push(() => sidecar.close());
    await runAccountUntil(sidecar, 'main', clock, T0 + days * DAY);
    const issuedAt = simulator
      .requestLog()
      .filter((r) => r.outcome === 'issued')
      .map((r) => r.at);
    return {
      policy,
      extra,
      days,
      issued: simulator.stats().issued,
      tokenRequests: simulator.stats().tokenRequests,
      minimum: days + 1,
      gapsMs: issuedAt.slice(1).map((at, i) => at - issuedAt[i]!),
      renewalsKst: issuedAt.slice(1).map(kst),
    };
  } finally {
    for (const fn of hooks.reverse()) await fn();
    rmSync(dir, { recursive: true, force: true });
  }
}

export const DEFAULT_POLICY = 'default (renewBefore 1h, jitter 10m)';
/** Alternatives with a smaller margin before expiry: the renewal margin (renewBefore + the jitter drawn) is what costs. */
export const ALTERNATIVES = [
  { policy: 'renewBefore 30m, jitter 10m', extra: 'renewal: { renewBefore: 30m, jitter: 10m }', marginMs: 35 * 60_000 },
  { policy: 'renewBefore 5m, jitter 0s', extra: 'renewal: { renewBefore: 5m, jitter: 0s }', marginMs: 5 * 60_000 },
];
export const DEFAULT_MARGIN_MS = 65 * 60_000;

export async function measurePolicies(): Promise<PolicyRun[]> {
  const runs: PolicyRun[] = [];
  for (const { policy, extra } of [{ policy: DEFAULT_POLICY, extra: '' }, ...ALTERNATIVES]) {
    for (const days of [1, 30]) {
      const run = await simulateDays(policy, extra, days);
      progress(`issuances, ${policy}, ${days} simulated day(s): ${run.issued} (minimum ${run.minimum})`);
      runs.push(run);
    }
  }
  return runs;
}

/**
 * Measurement 3: detect-and-repair latency. With the sidecar running (one account, a kis-auth daily file and a
 * JSON file), a file is deleted or emptied and the time until it holds its full content again is taken. The
 * four cases are interleaved trial by trial. Detection: fs.watch on the file's directory, each event followed by
 * a content check (with a 20 ms poll as a backstop, counted when it is the one that sees the repair).
 */
import { readFileSync, readdirSync, truncateSync, unlinkSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BenchEnv } from './env';
import { median, percentile, progress, sleep, stopChild, max } from './lib';

export const REPAIR_TRIALS = 100;
const GAP_MS = 30;
const BACKSTOP_MS = 20;
const GIVE_UP_MS = 15_000;

type RepairCase = 'kis-auth deleted' | 'kis-auth emptied' | 'json deleted' | 'json emptied';

export interface RepairSeries {
  case: RepairCase;
  file: string;
  trialsMs: number[];
  medianMs: number;
  p99Ms: number;
  maxMs: number;
  seenByBackstop: number;
}

export interface RepairResult {
  series: RepairSeries[];
  issuedDuring: number;
  tokenRequestsDuring: number;
  command: string;
}

export function repairSinks(dir: string): string {
  return `- { format: kis-auth, dir: ${join(dir, 'KIS')} }\n- { format: json, path: ${join(dir, 'tokens', 'main.json')} }`;
}

class Detector {
  private pending: ((by: 'event' | 'poll') => void) | undefined;
  private readonly watchers: FSWatcher[] = [];

  constructor(dirs: string[]) {
    for (const dir of dirs) this.watchers.push(watch(dir, () => this.pending?.('event')));
  }

  /** Damages the file and resolves with the ms until it holds `expected` again. */
  trial(path: string, expected: Buffer, damage: () => void): Promise<{ ms: number; by: 'event' | 'poll' }> {
    return new Promise((resolve, reject) => {
      let t0 = 0;
      const check = (by: 'event' | 'poll') => {
        let content: Buffer;
        try {
          content = readFileSync(path);
        } catch {
          return;
        }
        if (!content.equals(expected)) return;
        const elapsed = performance.now() - t0;
        this.pending = undefined;
        clearInterval(backstop);
        clearTimeout(giveUp);
        resolve({ ms: elapsed, by });
      };
      const backstop = setInterval(() => this.pending?.('poll'), BACKSTOP_MS);
      const giveUp = setTimeout(() => {
        this.pending = undefined;
        clearInterval(backstop);
        reject(new Error(`${path} not repaired within ${GIVE_UP_MS} ms`));
      }, GIVE_UP_MS);
      t0 = performance.now();
      damage();
      this.pending = check;
    });
  }

  close(): void {
    for (const w of this.watchers) w.close();
  }
}

export async function measureRepair(env: BenchEnv): Promise<RepairResult> {
  progress('repair: starting the sidecar (one account, a kis-auth and a json sink)');
  const child = env.startSidecar();
  let detector: Detector | undefined;
  try {
    await env.waitSteady(child, 120_000);
    const kisDir = join(env.dir, 'KIS');
    const jsonPath = join(env.dir, 'tokens', 'main.json');
    const daily = readdirSync(kisDir)
      .filter((n) => /^KIS\d{8}$/.test(n))
      .sort();
    if (daily.length === 0) throw new Error(`no kis-auth daily file in ${kisDir}`);
    const kisPath = join(kisDir, daily[daily.length - 1]!);
    const files: Record<'kis-auth' | 'json', { path: string; expected: Buffer }> = {
      'kis-auth': { path: kisPath, expected: readFileSync(kisPath) },
      json: { path: jsonPath, expected: readFileSync(jsonPath) },
    };
    const cases: RepairCase[] = ['kis-auth deleted', 'kis-auth emptied', 'json deleted', 'json emptied'];
    const trials = new Map<RepairCase, number[]>(cases.map((c) => [c, []]));
    const backstops = new Map<RepairCase, number>(cases.map((c) => [c, 0]));
    const before = env.simulator.stats();
    detector = new Detector([kisDir, join(env.dir, 'tokens')]);
    for (let i = 0; i < REPAIR_TRIALS; i++) {
      for (const c of cases) {
        const file = files[c.startsWith('kis-auth') ? 'kis-auth' : 'json'];
        // A new KST day would rename the daily file: not expected within a run, but checked rather than mismeasured.
        if (
          c.startsWith('kis-auth') &&
          readdirSync(kisDir)
            .filter((n) => /^KIS\d{8}$/.test(n))
            .sort()
            .pop() !== daily[daily.length - 1]
        ) {
          throw new Error('the kis-auth daily file changed name (midnight KST) during the trials; run again');
        }
        const { ms, by } = await detector.trial(file.path, file.expected, () => (c.endsWith('deleted') ? unlinkSync(file.path) : truncateSync(file.path, 0)));
        trials.get(c)!.push(ms);
        if (by === 'poll') backstops.set(c, backstops.get(c)! + 1);
        await sleep(GAP_MS);
      }
      if ((i + 1) % 25 === 0) progress(`repair: ${i + 1}/${REPAIR_TRIALS} trials of each case`);
    }
    const after = env.simulator.stats();
    return {
      series: cases.map((c) => {
        const t = trials.get(c)!;
        return {
          case: c,
          file: c.startsWith('kis-auth') ? 'KIS/KIS{YYYYMMDD}' : 'tokens/main.json',
          trialsMs: t,
          medianMs: median(t),
          p99Ms: percentile(t, 99),
          maxMs: max(t),
          seenByBackstop: backstops.get(c)!,
        };
      }),
      issuedDuring: after.issued - before.issued,
      tokenRequestsDuring: after.tokenRequests - before.tokenRequests,
      command: env.command(),
    };
  } finally {
    detector?.close();
    await stopChild(child);
  }
}

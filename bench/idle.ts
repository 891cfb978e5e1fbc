/**
 * Measurement 4: idle memory and CPU over 60 s, the sidecars at 1 and at 1,000 accounts and a bare Node process
 * side by side in the same minute. CPU from /proc/<pid>/stat (utime + stime), RSS from /proc/<pid>/status.
 */
import { readFileSync } from 'node:fs';
import type { BenchEnv } from './env';
import { childEnv, max, median, progress, sleep, startChild, stopChild, type Child } from './lib';
import { clockTicksPerSecond, cpuTicks } from './proc';

const IDLE_WINDOW_MS = 60_000;
export const IDLE_SAMPLE_MS = 5_000;
const BASELINE_SCRIPT = 'setTimeout(()=>{}, 600000)';
// prom-client's default metrics, which the sidecar registers: an event-loop-delay monitor sampling every 10 ms.
const PROM_CLIENT_SCRIPT = (path: string) => `require(${JSON.stringify(path)}).collectDefaultMetrics(); setTimeout(()=>{}, 600000)`;
/**
 * The packages a one-account `start` loads (read from its require.cache): a bare process holding them all, with
 * prom-client's default metrics on, is the floor for the sidecar's memory that its own code and state stand on.
 */
export const SIDECAR_DEPENDENCIES = ['commander', 'express', 'pino', 'prom-client', 'undici', 'yaml', 'zod'];
const DEPENDENCIES_SCRIPT = (paths: string[]) =>
  `${paths.map((p) => `require(${JSON.stringify(p)});`).join(' ')} require(${JSON.stringify(paths[3])}).collectDefaultMetrics(); setTimeout(()=>{}, 600000)`;
export const DEPENDENCIES_LABEL = "bare Node process with the sidecar's dependencies loaded";

export interface IdleSeries {
  label: string;
  accounts: number | null;
  command: string;
  rssMiB: number[];
  rssMedianMiB: number;
  rssMaxMiB: number;
  cpuTicks: number;
  cpuPercent: number;
}

export interface IdleResult {
  clkTck: number;
  windowS: number;
  series: IdleSeries[];
  issuedDuring: number;
}

function rssKiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

export async function measureIdle(envs: BenchEnv[]): Promise<IdleResult> {
  const clkTck = clockTicksPerSecond();
  const subjects: Array<{ label: string; accounts: number | null; command: string; child: Child }> = [];
  const hadState = envs.map((env) => env.hasState());
  try {
    for (const env of envs) {
      progress(`idle: starting the sidecar at ${env.accounts} account(s)`);
      subjects.push({
        label: `sidecar, ${env.accounts} account${env.accounts === 1 ? '' : 's'}`,
        accounts: env.accounts,
        command: env.command(),
        child: env.startSidecar(),
      });
    }
    subjects.push({
      label: 'bare Node process',
      accounts: null,
      command: `node -e "${BASELINE_SCRIPT}"`,
      child: startChild(process.execPath, ['-e', BASELINE_SCRIPT], childEnv()),
    });
    subjects.push({
      label: "bare Node process with prom-client's default metrics",
      accounts: null,
      command: `node -e "${PROM_CLIENT_SCRIPT('prom-client').replace(/"/g, "'")}"`,
      child: startChild(process.execPath, ['-e', PROM_CLIENT_SCRIPT(require.resolve('prom-client'))], childEnv()),
    });
    subjects.push({
      label: DEPENDENCIES_LABEL,
      accounts: null,
      command: `node -e "${DEPENDENCIES_SCRIPT(SIDECAR_DEPENDENCIES).replace(/"/g, "'")}"`,
      child: startChild(process.execPath, ['-e', DEPENDENCIES_SCRIPT(SIDECAR_DEPENDENCIES.map((d) => require.resolve(d)))], childEnv()),
    });
    for (const [i, env] of envs.entries()) {
      // Settled: from a previous run's state, ready and then no broker traffic for 3 s; from nothing, steady state.
      if (hadState[i]) await env.waitQuiet(subjects[i]!.child, 300_000);
      else await env.waitSteady(subjects[i]!.child, 300_000);
    }
    const before = envs.map((env) => env.simulator.stats().issued);
    progress(`idle: all ready and settled; sampling for ${IDLE_WINDOW_MS / 1000} s`);
    const startTicks = subjects.map((s) => cpuTicks(s.child.pid));
    const rss: number[][] = subjects.map(() => []);
    const t0 = Date.now();
    for (let k = 0; k <= IDLE_WINDOW_MS / IDLE_SAMPLE_MS; k++) {
      const due = t0 + k * IDLE_SAMPLE_MS;
      if (due > Date.now()) await sleep(due - Date.now());
      subjects.forEach((s, i) => {
        if (!s.child.running()) throw new Error(`${s.label} exited during the idle window: ${s.child.output()}`);
        rss[i]!.push(rssKiB(s.child.pid) / 1024);
      });
    }
    const windowS = (Date.now() - t0) / 1000;
    const endTicks = subjects.map((s) => cpuTicks(s.child.pid));
    const issuedDuring = envs.reduce((n, env, i) => n + env.simulator.stats().issued - before[i]!, 0);
    return {
      clkTck,
      windowS,
      issuedDuring,
      series: subjects.map((s, i) => {
        const ticks = endTicks[i]! - startTicks[i]!;
        return {
          label: s.label,
          accounts: s.accounts,
          command: s.command,
          rssMiB: rss[i]!,
          rssMedianMiB: median(rss[i]!),
          rssMaxMiB: max(rss[i]!),
          cpuTicks: ticks,
          cpuPercent: (ticks / clkTck / windowS) * 100,
        };
      }),
    };
  } finally {
    for (const s of subjects) await stopChild(s.child);
  }
}

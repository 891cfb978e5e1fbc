/**
 * Measurement 2: wall time from spawning `start` to the first 200 from /readyz, with a valid token already in
 * the state and the files (so no issuance), at 1 and at 1,000 accounts, interleaved round by round with a bare
 * Node HTTP server's own time to its first answer (the floor any Node process pays).
 */
import { performance } from 'node:perf_hooks';
import type { BenchEnv } from './env';
import { childEnv, freePort, httpGet, max, median, min, progress, sleep, startChild, stopChild, type Child } from './lib';

export const STARTUP_RUNS = 5;
export const POLL_MS = 5;

const BARE_NODE_SCRIPT = "require('http').createServer((q,s)=>s.end('ok')).listen(+process.argv[1],'127.0.0.1')";

export interface StartupSeries {
  label: string;
  accounts: number | null;
  command: string;
  runsMs: number[];
  medianMs: number;
  minMs: number;
  maxMs: number;
  issuedDuring: number | null;
  tokenRequestsDuring: number | null;
}

/** Spawns, polls `url` every POLL_MS until 200, returns the elapsed ms and the child (still running). */
async function timeToFirst200(spawnIt: () => Child, url: string): Promise<{ ms: number; child: Child }> {
  const t0 = performance.now();
  const child = spawnIt();
  for (;;) {
    const attempt = performance.now();
    try {
      if ((await httpGet(url, 2_000)).status === 200) return { ms: performance.now() - t0, child };
    } catch {
      // not listening yet
    }
    if (!child.running()) throw new Error(`exited before answering 200 at ${url}: ${child.output()}`);
    if (attempt - t0 > 120_000) {
      await stopChild(child, 'SIGKILL');
      throw new Error(`no 200 from ${url} within 120 s`);
    }
    const wait = POLL_MS - (performance.now() - attempt);
    if (wait > 0) await sleep(wait);
  }
}

export async function measureStartup(envs: BenchEnv[]): Promise<StartupSeries[]> {
  // State and files first: run `start` once where no sidecar has run yet, until ready, then stop it.
  for (const env of envs) {
    if (env.hasState()) continue;
    progress(`start-up at ${env.accounts} account(s): first run, for the state and the files`);
    const child = env.startSidecar();
    await env.waitSteady(child, 300_000);
    await stopChild(child);
  }
  const before = envs.map((env) => env.simulator.stats());
  const runs = new Map<string, number[]>();
  const barePort = await freePort();
  for (let round = 1; round <= STARTUP_RUNS; round++) {
    for (const env of envs) {
      const { ms, child } = await timeToFirst200(() => env.startSidecar(), `${env.base}/readyz`);
      await stopChild(child);
      runs.set(env.options.label, [...(runs.get(env.options.label) ?? []), ms]);
      progress(`start-up at ${env.accounts} account(s), run ${round}/${STARTUP_RUNS}: ready after ${ms.toFixed(0)} ms`);
    }
    const { ms, child } = await timeToFirst200(
      () => startChild(process.execPath, ['-e', BARE_NODE_SCRIPT, String(barePort)], childEnv()),
      `http://127.0.0.1:${barePort}/`,
    );
    await stopChild(child);
    runs.set('bare', [...(runs.get('bare') ?? []), ms]);
    progress(`start-up, bare Node HTTP server, run ${round}/${STARTUP_RUNS}: first 200 after ${ms.toFixed(0)} ms`);
  }
  const series: StartupSeries[] = envs.map((env, i) => {
    const r = runs.get(env.options.label)!;
    const after = env.simulator.stats();
    return {
      label: `sidecar, ${env.accounts} account${env.accounts === 1 ? '' : 's'}`,
      accounts: env.accounts,
      command: env.command(),
      runsMs: r,
      medianMs: median(r),
      minMs: min(r),
      maxMs: max(r),
      issuedDuring: after.issued - before[i]!.issued,
      tokenRequestsDuring: after.tokenRequests - before[i]!.tokenRequests,
    };
  });
  const bare = runs.get('bare')!;
  series.push({
    label: 'bare Node HTTP server (floor)',
    accounts: null,
    command: `node -e "${BARE_NODE_SCRIPT}" PORT`,
    runsMs: bare,
    medianMs: median(bare),
    minMs: min(bare),
    maxMs: max(bare),
    issuedDuring: null,
    tokenRequestsDuring: null,
  });
  return series;
}

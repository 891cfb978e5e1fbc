/**
 * The gateway measurement: the same KIS price call straight to the simulator, through the gateway of a sidecar
 * counting its budget in memory, through the gateway of one counting it in Redis, and through the bare proxy (the
 * same server and forwarding, nothing else), round by round with the same wrk settings. What each gateway adds to
 * a call's latency, one call at a time, against what the hop alone adds; the throughput ceiling with the budget
 * off; and, for each sidecar, a short run with the budget on at the broker's 18 calls a second, counted where the
 * broker counts (the simulator).
 */
import os from 'node:os';
import {
  GATEWAY_TARGETS,
  GatewayEnv,
  callOnce,
  gatewayTargetOf,
  type BudgetStore,
  type GatewayCommands,
  type GatewayTarget,
  type PriceCall,
} from './gateway-env';
import { median, progress, sleep, waitFor } from './lib';
import { clockTicksPerSecond, cpuTicks } from './proc';
import { WRK_DURATION, WRK_WARMUP, runWrk, wrkCommand, type WrkLoad, type WrkResult } from './wrk';

export const GATEWAY_ROUNDS = 5;
/** One call at a time: nothing queues anywhere, so each latency is the call's own cost. The added-latency figures. */
export const LATENCY_LOAD: WrkLoad = { threads: 1, connections: 1 };
/** Enough calls in flight to keep every process busy: the throughput ceiling (its latencies are mostly queueing). */
export const THROUGHPUT_LOAD: WrkLoad = { threads: 1, connections: 32 };
/** With the budget on: a few callers, each waiting for its slot (up to about a second) well within maxWait (2 s). */
export const BUDGET_LOAD: WrkLoad = { threads: 1, connections: 4 };
export const BUDGET_DURATION = '5s';
/** The KIS real limit the budget keeps by default (src/config/defaults.ts DEFAULT_CALLS_PER_SECOND). */
export const BUDGET_LIMIT = 18;
/** The first goals for what the gateway adds to a call. */
export const ADDED_GOALS_MS = { p50: 0.5, p99: 2 } as const;
/** Issue 22's goal: in memory, what the gateway adds (gateway − direct) is at most this many times the bare hop (bare proxy − direct), at p50. */
export const HOP_RATIO_GOAL = 1.5;

/** One wrk run, and the CPU time the process answering it (the simulator, the sidecar or the bare proxy) spent. */
interface Run {
  wrk: WrkResult;
  /** CPU time (user + system) of the target's own process per call, µs. */
  cpuPerCallUs: number;
  /** redis-server's CPU time per call over the same run, µs (0 when it did nothing: every target but gateway-redis). */
  redisCpuPerCallUs: number;
}

export interface GatewaySeries {
  command: string;
  rounds: WrkResult[];
  /** Medians of the rounds; NaN when a round failed. */
  rps: number;
  p50: number;
  p99: number;
  cpuPerCallUs: number;
  redisCpuPerCallUs: number;
  /** Set when a round had non-2xx answers or socket errors: a failed measurement, whose figures are not quoted. */
  error?: string;
  /** Set when the target was not run at all (no redis-server), with why. */
  skipped?: string;
}

type Added = { p50: number; p99: number };

export interface GatewayResult {
  latency: Record<GatewayTarget, GatewaySeries>;
  throughput: Record<GatewayTarget, GatewaySeries>;
  /** Differences of the medians, one call at a time: each gateway − direct, bare proxy − direct, each gateway − bare proxy. */
  added: { gateway: Added; gatewayRedis: Added; bare: Added; gatewayOverBare: Added; redisOverBare: Added };
  /**
   * What each gateway adds over what the hop adds, one call at a time, at p50: (gateway − direct) / (bare proxy −
   * direct) of the medians (the goal's figure), and the same ratio in each round (its spread). Not at p99, whose
   * differences are of two noisy tails and may come out negative.
   */
  hopRatio: Record<BudgetStore, { p50: number; p50PerRound: number[] }>;
  /** Medians of the per-round throughput ratios. */
  ratios: { gatewayOverDirect: number; redisOverDirect: number; bareOverDirect: number; gatewayOverBare: number };
  /** Refusals the simulator counted during the rounds (quota, token, credentials, input): 0 when every call was a real one. */
  simulatorRefusals: number;
  /** Where each sidecar said its budget was counted (broker_token_gateway_budget_mode): once started, and after the rounds. */
  modes: Partial<Record<BudgetStore, { start: ModeSeen; after: string }>>;
  /** Why the Redis-counted sidecar was not measured, when it was not. */
  redisAbsence?: string;
  redisVersion?: string;
  budget: Partial<Record<BudgetStore, BudgetCheck>>;
  commands: GatewayCommands;
  /** The machine's load average (1, 5, 15 min) when this section began and when it ended: the host is shared. */
  load: { start: number[]; end: number[] };
}

export interface BudgetCheck {
  store: BudgetStore;
  command: string;
  wrk: WrkResult;
  seconds: number;
  /** Price calls the simulator saw during the run. */
  callsAtBroker: number;
  /** The most price calls the simulator saw within any one second of the run. */
  busiestSecond: number;
  /** The sidecar's broker_token_gateway_budget_granted_total, its increase over the run. */
  granted: number;
  /** Where the budget was counted: once started (the run waits for the expected mode), and after the run. */
  modeAtStart: ModeSeen;
  modeAfter: string;
}

/** The most of `times` (ms, any order) within any window of `windowMs`. */
function busiest(times: number[], windowMs = 1_000): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= windowMs) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

async function verify(calls: Partial<Record<GatewayTarget, PriceCall>>): Promise<void> {
  for (const [target, call] of Object.entries(calls)) {
    const { status, rtCd } = await callOnce(call);
    if (status !== 200 || rtCd !== '0')
      throw new Error(`one price call through ${target}: HTTP ${status}, rt_cd ${rtCd ?? 'none'}; expected 200 and rt_cd "0"`);
  }
  progress(`gateway: one price call through each of ${Object.keys(calls).join(', ')} answered 200, rt_cd "0"`);
}

/** A slot counts this long after its call's answer: the broker's second and the default 50 ms windowMargin. */
const BUDGET_WINDOW_MS = 1_050;
/** Longer than the budget's rejoining time (10 s), after which a replica back in Redis counts there alone. */
const MODE_WAIT_MS = 30_000;

/** The budget mode a sidecar settled in, and the modes it was seen in until then. */
export interface ModeSeen {
  mode: string;
  seen: string[];
  afterMs: number;
}

/** The mode a sidecar must be in to measure what its store costs: memory counts alone (local), Redis for every replica (shared). */
const EXPECTED_MODE: Record<BudgetStore, string> = { memory: 'local', redis: 'shared' };

/**
 * Waits until the sidecar counting in `store` says its budget is counted where it should be; the modes it was seen
 * in on the way. A Redis-counted sidecar starts in `fallback` (its first heartbeat leaves before the store has
 * connected), then `rejoining`, and leaves that for `shared` only at a grant 10 s on: one call a second through its
 * gateway (`nudge`) makes that grant.
 */
async function settledMode(env: GatewayEnv, store: BudgetStore, nudge: () => Promise<unknown>): Promise<ModeSeen> {
  const started = Date.now();
  const seen: string[] = [];
  await waitFor(
    `the sidecar counting in ${store} to say its budget mode is ${EXPECTED_MODE[store]}`,
    MODE_WAIT_MS,
    async () => {
      const mode = (await env.budgetMode(store)) ?? 'none';
      if (seen.at(-1) !== mode) seen.push(mode);
      if (mode === 'rejoining') await nudge();
      return mode === EXPECTED_MODE[store];
    },
    1_000,
  );
  const afterMs = Date.now() - started;
  if (seen.length > 1) progress(`gateway: the sidecar counting in ${store} said ${seen.join(', then ')} (${(afterMs / 1000).toFixed(1)} s)`);
  return { mode: EXPECTED_MODE[store], seen, afterMs };
}

function series(call: PriceCall, load: WrkLoad, runs: Run[]): GatewaySeries {
  const failed = runs.flatMap((r, i) => (r.wrk.problems.length ? [`round ${i + 1}: ${r.wrk.problems.join('; ')}`] : []));
  const figure = (f: (r: Run) => number) => (failed.length ? Number.NaN : median(runs.map(f)));
  return {
    command: wrkCommand(call.url, WRK_DURATION, call.shown, load),
    rounds: runs.map((r) => r.wrk),
    rps: figure((r) => r.wrk.rps),
    p50: figure((r) => r.wrk.p50),
    p99: figure((r) => r.wrk.p99),
    cpuPerCallUs: figure((r) => r.cpuPerCallUs),
    redisCpuPerCallUs: figure((r) => r.redisCpuPerCallUs),
    ...(failed.length ? { error: failed.join('; ') } : {}),
  };
}

/** A target this run could not measure, and why. */
const skippedSeries = (why: string): GatewaySeries => ({
  command: '',
  rounds: [],
  rps: Number.NaN,
  p50: Number.NaN,
  p99: Number.NaN,
  cpuPerCallUs: Number.NaN,
  redisCpuPerCallUs: Number.NaN,
  skipped: why,
});

/** `f(round of a, same round of b)` for each round, each round's pair run seconds apart; empty when either failed or was not run. */
function eachRound(a: GatewaySeries, b: GatewaySeries, f: (x: WrkResult, y: WrkResult) => number): number[] {
  if (a.error || b.error || a.skipped || b.skipped) return [];
  return a.rounds.map((x, i) => f(x, b.rounds[i]!));
}

/** The median over rounds of `f(round of a, same round of b)`; NaN when either failed. */
function perRound(a: GatewaySeries, b: GatewaySeries, f: (x: WrkResult, y: WrkResult) => number): number {
  const values = eachRound(a, b, f);
  return values.length ? median(values) : Number.NaN;
}

/** Median against median (NaN when either failed): the figures the report shows side by side. */
const difference = (a: GatewaySeries, b: GatewaySeries): Added => ({ p50: a.p50 - b.p50, p99: a.p99 - b.p99 });

/** (gateway − direct) / (bare proxy − direct) at p50: of the medians, and round by round. */
function hopRatio(lat: Record<GatewayTarget, GatewaySeries>, target: GatewayTarget): { p50: number; p50PerRound: number[] } {
  const gateway = lat[target];
  const direct = lat.direct;
  const bare = lat['bare-proxy'];
  const hops = eachRound(bare, direct, (b, d) => b.p50 - d.p50);
  return {
    p50: (gateway.p50 - direct.p50) / (bare.p50 - direct.p50),
    p50PerRound: hops.length ? eachRound(gateway, direct, (g, d) => g.p50 - d.p50).map((added, i) => added / hops[i]!) : [],
  };
}

/**
 * The budget on, for the sidecar counting in `store`, alone in front of the simulator (the other sidecar stopped,
 * so that its proofs, the same price call, are not counted with these).
 */
async function measureBudget(env: GatewayEnv, store: BudgetStore): Promise<BudgetCheck> {
  progress(`gateway: budget on (the default ${BUDGET_LIMIT}/s) counted in ${store}: restarting that sidecar alone`);
  await env.startSidecar(store, 'default');
  const call = await env.gatewayCall(store);
  const mode = await settledMode(env, store, () => callOnce(call));
  await verify({ [gatewayTargetOf[store]]: call });
  // The run starts with no slot counted: the calls above have left the window.
  await sleep(BUDGET_WINDOW_MS);
  const grantedBefore = await env.budgetGranted(store);
  const from = Date.now();
  const wrk = await runWrk(call.url, BUDGET_DURATION, call.headers, BUDGET_LOAD);
  const to = Date.now();
  const times = (await env.priceCallTimes()).filter((at) => at >= from && at <= to);
  const check: BudgetCheck = {
    store,
    command: wrkCommand(call.url, BUDGET_DURATION, call.shown, BUDGET_LOAD),
    wrk,
    seconds: (to - from) / 1000,
    callsAtBroker: times.length,
    busiestSecond: busiest(times),
    granted: (await env.budgetGranted(store)) - grantedBefore,
    modeAtStart: mode,
    modeAfter: (await env.budgetMode(store)) ?? 'none',
  };
  await env.stopSidecar(store);
  progress(
    `gateway: budget on, counted in ${store}: the simulator saw ${check.callsAtBroker} calls in ${check.seconds.toFixed(1)} s, at most ${check.busiestSecond} in any second; wrk ${wrk.rps} req/s${wrk.problems.length ? ` (${wrk.problems.join('; ')})` : ''}`,
  );
  return check;
}

export async function measureGateway(): Promise<GatewayResult> {
  const env = await GatewayEnv.create();
  const clkTck = clockTicksPerSecond();
  const loadAtStart = os.loadavg();
  try {
    progress('gateway: starting the simulator, redis-server, the two sidecars (budget off; in memory, in Redis) and the bare proxy');
    await env.startSimulator();
    await env.startRedis();
    if (env.redisAbsence) progress(`gateway: no Redis-counted sidecar in this run: ${env.redisAbsence}`);
    await env.startSidecar('memory', 'off');
    await env.startBareProxy();
    if (env.stores.includes('redis')) await env.startSidecar('redis', 'off');
    const targets = env.targets;
    const calls = await env.calls();
    const callOf = (target: GatewayTarget): PriceCall => {
      const call = calls[target];
      if (!call) throw new Error(`no call for ${target}`);
      return call;
    };
    const modesAtStart = new Map<BudgetStore, ModeSeen>();
    for (const store of env.stores) modesAtStart.set(store, await settledMode(env, store, () => callOnce(callOf(gatewayTargetOf[store]))));
    await verify(calls);
    for (const target of targets) {
      progress(`gateway: warm-up ${target} (${WRK_WARMUP})`);
      await runWrk(callOf(target).url, WRK_WARMUP, callOf(target).headers, THROUGHPUT_LOAD);
    }
    const redisPid = env.redisPid;
    const run = async (target: GatewayTarget, load: WrkLoad): Promise<Run> => {
      const pid = env.pidOf(target);
      const before = cpuTicks(pid);
      const redisBefore = redisPid === undefined ? 0 : cpuTicks(redisPid);
      const wrk = await runWrk(callOf(target).url, WRK_DURATION, callOf(target).headers, load);
      const perCall = (ticks: number) => ((ticks / clkTck) * 1e6) / Math.max(1, wrk.requests);
      return {
        wrk,
        cpuPerCallUs: perCall(cpuTicks(pid) - before),
        redisCpuPerCallUs: redisPid === undefined ? 0 : perCall(cpuTicks(redisPid) - redisBefore),
      };
    };
    const before = await env.simulatorStats();
    const latency: Record<GatewayTarget, Run[]> = { direct: [], gateway: [], 'gateway-redis': [], 'bare-proxy': [] };
    const throughput: Record<GatewayTarget, Run[]> = { direct: [], gateway: [], 'gateway-redis': [], 'bare-proxy': [] };
    for (let round = 0; round < GATEWAY_ROUNDS; round++) {
      // Each round starts with another target, so none is always the one run right after the saturating runs.
      const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
      for (const [kind, load, into] of [
        ['latency', LATENCY_LOAD, latency],
        ['throughput', THROUGHPUT_LOAD, throughput],
      ] as const) {
        for (const target of order) {
          const r = await run(target, load);
          into[target].push(r);
          progress(
            `gateway, round ${round + 1}/${GATEWAY_ROUNDS}, ${kind}, ${target}: ${r.wrk.rps} req/s, p50 ${r.wrk.p50.toFixed(3)} ms, p99 ${r.wrk.p99.toFixed(3)} ms, ${r.cpuPerCallUs.toFixed(0)} µs CPU a call${target === 'gateway-redis' ? ` (+${r.redisCpuPerCallUs.toFixed(0)} µs in redis-server)` : ''}${r.wrk.problems.length ? ` (${r.wrk.problems.join('; ')})` : ''}`,
          );
          if (!env.sidecarsRunning) throw new Error('a sidecar exited during the gateway measurement');
        }
      }
    }
    const after = await env.simulatorStats();
    const refusals = (s: typeof after) => s.proofsRejected + s.quotaExceeded + s.authRejected + s.badRequests;
    const modes: GatewayResult['modes'] = {};
    for (const store of env.stores) modes[store] = { start: modesAtStart.get(store)!, after: (await env.budgetMode(store)) ?? 'none' };

    const bySeries = (runs: Record<GatewayTarget, Run[]>, load: WrkLoad) =>
      Object.fromEntries(
        GATEWAY_TARGETS.map((t) => [t, targets.includes(t) ? series(callOf(t), load, runs[t]) : skippedSeries(env.redisAbsence ?? 'not run')]),
      ) as Record<GatewayTarget, GatewaySeries>;
    const lat = bySeries(latency, LATENCY_LOAD);
    const thr = bySeries(throughput, THROUGHPUT_LOAD);
    // Each sidecar alone in front of the simulator for its budget-on run.
    for (const store of env.stores) await env.stopSidecar(store);
    const budget: GatewayResult['budget'] = {};
    for (const store of env.stores) budget[store] = await measureBudget(env, store);
    return {
      latency: lat,
      throughput: thr,
      added: {
        gateway: difference(lat.gateway, lat.direct),
        gatewayRedis: difference(lat['gateway-redis'], lat.direct),
        bare: difference(lat['bare-proxy'], lat.direct),
        gatewayOverBare: difference(lat.gateway, lat['bare-proxy']),
        redisOverBare: difference(lat['gateway-redis'], lat['bare-proxy']),
      },
      hopRatio: { memory: hopRatio(lat, 'gateway'), redis: hopRatio(lat, 'gateway-redis') },
      ratios: {
        gatewayOverDirect: perRound(thr.gateway, thr.direct, (x, y) => x.rps / y.rps),
        redisOverDirect: perRound(thr['gateway-redis'], thr.direct, (x, y) => x.rps / y.rps),
        bareOverDirect: perRound(thr['bare-proxy'], thr.direct, (x, y) => x.rps / y.rps),
        gatewayOverBare: perRound(thr.gateway, thr['bare-proxy'], (x, y) => x.rps / y.rps),
      },
      simulatorRefusals: refusals(after) - refusals(before),
      modes,
      ...(env.redisAbsence ? { redisAbsence: env.redisAbsence } : {}),
      ...(env.redisVersion ? { redisVersion: env.redisVersion } : {}),
      budget,
      commands: env.commands(),
      load: { start: loadAtStart, end: os.loadavg() },
    };
  } finally {
    await env.stop();
  }
}

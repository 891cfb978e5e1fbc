/**
 * The gateway measurement: the same KIS price call straight to the simulator, through the gateway, and through
 * the bare proxy (the same server and forwarding, nothing else), round by round with the same wrk settings. What
 * the gateway adds to a call's latency, one call at a time; the throughput ceiling with the budget off; and a
 * short run with the budget on at the broker's 18 calls a second, counted where the broker counts (the simulator).
 */
import { GATEWAY_TARGETS, GatewayEnv, callOnce, type GatewayTarget, type PriceCall } from './gateway-env';
import { median, progress } from './lib';
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
/** The issue's goals for what the gateway adds to a call. */
export const ADDED_GOALS_MS = { p50: 0.5, p99: 2 } as const;

/** One wrk run, and the CPU time the process answering it (the simulator, the sidecar or the bare proxy) spent. */
interface Run {
  wrk: WrkResult;
  /** CPU time (user + system) of the target's own process per call, µs. */
  cpuPerCallUs: number;
}

export interface GatewaySeries {
  command: string;
  rounds: WrkResult[];
  /** Medians of the rounds; NaN when a round failed. */
  rps: number;
  p50: number;
  p99: number;
  cpuPerCallUs: number;
  /** Set when a round had non-2xx answers or socket errors: a failed measurement, whose figures are not quoted. */
  error?: string;
}

type Added = { p50: number; p99: number };

export interface GatewayResult {
  latency: Record<GatewayTarget, GatewaySeries>;
  throughput: Record<GatewayTarget, GatewaySeries>;
  /** Differences of the medians, one call at a time: gateway − direct, bare proxy − direct, gateway − bare proxy. */
  added: { gateway: Added; bare: Added; gatewayOverBare: Added };
  /** Medians of the per-round throughput ratios. */
  ratios: { gatewayOverDirect: number; bareOverDirect: number; gatewayOverBare: number };
  /** Refusals the simulator counted during the rounds (quota, token, credentials, input): 0 when every call was a real one. */
  simulatorRefusals: number;
  budget: BudgetCheck;
  commands: { simulator: string; sidecarOff: string; sidecarDefault: string; bare: string };
}

export interface BudgetCheck {
  command: string;
  wrk: WrkResult;
  seconds: number;
  /** Price calls the simulator saw during the run. */
  callsAtBroker: number;
  /** The most price calls the simulator saw within any one second of the run. */
  busiestSecond: number;
  /** The sidecar's broker_token_gateway_budget_granted_total, its increase over the run. */
  granted: number;
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

async function verify(calls: Record<GatewayTarget, PriceCall>): Promise<void> {
  for (const target of GATEWAY_TARGETS) {
    const { status, rtCd } = await callOnce(calls[target]);
    if (status !== 200 || rtCd !== '0')
      throw new Error(`one price call through ${target}: HTTP ${status}, rt_cd ${rtCd ?? 'none'}; expected 200 and rt_cd "0"`);
  }
  progress('gateway: one price call through each target answered 200, rt_cd "0"');
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
    ...(failed.length ? { error: failed.join('; ') } : {}),
  };
}

/** The median over rounds of `f(round of a, same round of b)`, each round's pair run seconds apart; NaN when either failed. */
function perRound(a: GatewaySeries, b: GatewaySeries, f: (x: WrkResult, y: WrkResult) => number): number {
  if (a.error || b.error) return Number.NaN;
  return median(a.rounds.map((x, i) => f(x, b.rounds[i]!)));
}

/** Median against median (NaN when either failed): the figures the report shows side by side. */
const difference = (a: GatewaySeries, b: GatewaySeries): Added => ({ p50: a.p50 - b.p50, p99: a.p99 - b.p99 });

async function measureBudget(env: GatewayEnv): Promise<BudgetCheck> {
  progress(`gateway: budget on (the default ${BUDGET_LIMIT}/s): restarting the sidecar`);
  await env.startSidecar('default');
  const calls = await env.calls();
  await verify(calls);
  const call = calls.gateway;
  const grantedBefore = await env.budgetGranted();
  const from = Date.now();
  const wrk = await runWrk(call.url, BUDGET_DURATION, call.headers, BUDGET_LOAD);
  const to = Date.now();
  const times = (await env.priceCallTimes()).filter((at) => at >= from && at <= to);
  const check = {
    command: wrkCommand(call.url, BUDGET_DURATION, call.shown, BUDGET_LOAD),
    wrk,
    seconds: (to - from) / 1000,
    callsAtBroker: times.length,
    busiestSecond: busiest(times),
    granted: (await env.budgetGranted()) - grantedBefore,
  };
  progress(
    `gateway: budget on: the simulator saw ${check.callsAtBroker} calls in ${check.seconds.toFixed(1)} s, at most ${check.busiestSecond} in any second; wrk ${wrk.rps} req/s${wrk.problems.length ? ` (${wrk.problems.join('; ')})` : ''}`,
  );
  return check;
}

export async function measureGateway(): Promise<GatewayResult> {
  const env = await GatewayEnv.create();
  const clkTck = clockTicksPerSecond();
  try {
    progress('gateway: starting the simulator, the sidecar (budget off) and the bare proxy');
    await env.startSimulator();
    await env.startSidecar('off');
    await env.startBareProxy();
    const calls = await env.calls();
    await verify(calls);
    for (const target of GATEWAY_TARGETS) {
      progress(`gateway: warm-up ${target} (${WRK_WARMUP})`);
      await runWrk(calls[target].url, WRK_WARMUP, calls[target].headers, THROUGHPUT_LOAD);
    }
    const run = async (target: GatewayTarget, load: WrkLoad): Promise<Run> => {
      const pid = env.pidOf(target);
      const before = cpuTicks(pid);
      const wrk = await runWrk(calls[target].url, WRK_DURATION, calls[target].headers, load);
      return { wrk, cpuPerCallUs: (((cpuTicks(pid) - before) / clkTck) * 1e6) / Math.max(1, wrk.requests) };
    };
    const before = await env.simulatorStats();
    const latency: Record<GatewayTarget, Run[]> = { direct: [], gateway: [], 'bare-proxy': [] };
    const throughput: Record<GatewayTarget, Run[]> = { direct: [], gateway: [], 'bare-proxy': [] };
    for (let round = 0; round < GATEWAY_ROUNDS; round++) {
      // Each round starts with another target, so none is always the one run right after the saturating runs.
      const order = GATEWAY_TARGETS.map((_, i) => GATEWAY_TARGETS[(i + round) % GATEWAY_TARGETS.length]!);
      for (const [kind, load, into] of [
        ['latency', LATENCY_LOAD, latency],
        ['throughput', THROUGHPUT_LOAD, throughput],
      ] as const) {
        for (const target of order) {
          const r = await run(target, load);
          into[target].push(r);
          progress(
            `gateway, round ${round + 1}/${GATEWAY_ROUNDS}, ${kind}, ${target}: ${r.wrk.rps} req/s, p50 ${r.wrk.p50.toFixed(3)} ms, p99 ${r.wrk.p99.toFixed(3)} ms, ${r.cpuPerCallUs.toFixed(0)} µs CPU a call${r.wrk.problems.length ? ` (${r.wrk.problems.join('; ')})` : ''}`,
          );
          if (!env.sidecarRunning) throw new Error('the sidecar exited during the gateway measurement');
        }
      }
    }
    const after = await env.simulatorStats();
    const refusals = (s: typeof after) => s.proofsRejected + s.quotaExceeded + s.authRejected + s.badRequests;

    const bySeries = (runs: Record<GatewayTarget, Run[]>, load: WrkLoad) =>
      Object.fromEntries(GATEWAY_TARGETS.map((t) => [t, series(calls[t], load, runs[t])])) as Record<GatewayTarget, GatewaySeries>;
    const lat = bySeries(latency, LATENCY_LOAD);
    const thr = bySeries(throughput, THROUGHPUT_LOAD);
    return {
      latency: lat,
      throughput: thr,
      added: {
        gateway: difference(lat.gateway, lat.direct),
        bare: difference(lat['bare-proxy'], lat.direct),
        gatewayOverBare: difference(lat.gateway, lat['bare-proxy']),
      },
      ratios: {
        gatewayOverDirect: perRound(thr.gateway, thr.direct, (x, y) => x.rps / y.rps),
        bareOverDirect: perRound(thr['bare-proxy'], thr.direct, (x, y) => x.rps / y.rps),
        gatewayOverBare: perRound(thr.gateway, thr['bare-proxy'], (x, y) => x.rps / y.rps),
      },
      simulatorRefusals: refusals(after) - refusals(before),
      budget: await measureBudget(env),
      commands: env.commands(),
    };
  } finally {
    await env.stop();
  }
}

/** The report's Gateway section: added latency, throughput ceiling and the budget held, from bench/gateway.ts. */
import {
  ADDED_GOALS_MS,
  BUDGET_DURATION,
  BUDGET_LOAD,
  BUDGET_LIMIT,
  GATEWAY_ROUNDS,
  LATENCY_LOAD,
  THROUGHPUT_LOAD,
  type GatewayResult,
  type GatewaySeries,
} from './gateway';
import { GATEWAY_TARGETS, UNLIMITED, type GatewayTarget } from './gateway-env';
import { max, min, ms, num, ratio } from './lib';
import { rps, sentence, tidy, type Verdict } from './report-parts';
import { WRK_DURATION, WRK_WARMUP, wrkArgs, type WrkLoad } from './wrk';

const SECTION = '6';
const LABEL: Record<GatewayTarget, string> = {
  direct: 'direct to the simulator',
  gateway: 'through the gateway',
  'bare-proxy': 'through the bare proxy',
};
const loadFlags = (load: WrkLoad, duration = WRK_DURATION): string => wrkArgs('URL', duration, [], load).slice(0, 3).join(' ');
/** A latency difference, signed: the tails of two noisy runs can come out either way. */
const signed = (value: number): string => (Number.isFinite(value) && value < 0 ? `−${ms(-value)}` : ms(value));
const us = (value: number): string => (Number.isFinite(value) ? `${num(value)} µs` : 'n/a');

function failure(x: GatewaySeries): string {
  return x.error ? `**error** (${x.error}): not measured` : '';
}

export function renderGateway(g: GatewayResult, cores: number): { verdicts: Verdict[]; lines: string[] } {
  const lat = g.latency;
  const thr = g.throughput;
  const added = g.added.gateway;
  const measured = (v: number) => Number.isFinite(v);
  const p50: Verdict = {
    section: SECTION,
    target: `latency the gateway adds to a call, p50 under ${ms(ADDED_GOALS_MS.p50)}`,
    figure: measured(added.p50) ? `${signed(added.p50)}: gateway ${ms(lat.gateway.p50)}, direct ${ms(lat.direct.p50)}` : 'not measured: a run failed',
    met: measured(added.p50) && added.p50 < ADDED_GOALS_MS.p50,
  };
  const p99: Verdict = {
    section: SECTION,
    target: `latency the gateway adds to a call, p99 under ${ms(ADDED_GOALS_MS.p99)}`,
    figure: measured(added.p99) ? `${signed(added.p99)}: gateway ${ms(lat.gateway.p99)}, direct ${ms(lat.direct.p99)}` : 'not measured: a run failed',
    met: measured(added.p99) && added.p99 < ADDED_GOALS_MS.p99,
  };
  const b = g.budget;
  const budget: Verdict = {
    section: SECTION,
    target: `with the budget on (default ${BUDGET_LIMIT}/s), the broker sees at most ${BUDGET_LIMIT} calls in any second`,
    figure: `at most ${b.busiestSecond} in any second, ${b.callsAtBroker} in ${b.seconds.toFixed(1)} s${b.wrk.problems.length ? `; wrk: ${b.wrk.problems.join('; ')}` : ''}`,
    met: b.busiestSecond <= BUDGET_LIMIT && b.callsAtBroker > 0 && b.wrk.problems.length === 0,
  };

  const lines: string[] = [
    '## 6. Gateway: added latency and throughput ceiling',
    '',
    `Three processes, each of its own, as in production. The broker simulator (\`bench/simulator-server.ts\`), with its per-second quota raised to ${num(UNLIMITED)} so that it never refuses a call for the rate. A sidecar with one KIS real account whose \`baseUrl\` is the simulator, and the gateway on for one client with local credentials; \`gateway.callsPerSecond\` is ${num(UNLIMITED)} for the account, so the budget is in effect off (a value above 18 is accepted only because the \`baseUrl\` is not KIS's own host). And the bare proxy (\`bench/bare-proxy.ts\`): the gateway's own server (\`listen\`) and forwarding (\`forward\`, the same undici keep-alive pool), and nothing else (no routing by account, no local credentials, no budget, no token swap, no metrics, no inspection of the answer). It is the floor for any proxy in a process of its own.`,
    '',
    `The call is KIS inquire-price (\`tr_id: FHKST01010100\`) with the headers \`kis_auth.py\` sends. **direct**: to the simulator with the real token, app key and secret; the token is read from the sidecar's token file, as a bot reads it. **gateway**: to \`/main/uapi/...\` with the client's local token (from the gateway's own \`tokenP\`, answered without the broker) and local key and secret. **bare proxy**: the real ones, passed on as they came. Before measuring, one call through each answered 200 with \`rt_cd\` "0". Each target got a ${WRK_WARMUP} warm-up at 32 connections. Then came ${GATEWAY_ROUNDS} rounds; each round ran the three targets (each round starting with another) first one call at a time (\`${loadFlags(LATENCY_LOAD)}\`), then with 32 connections (\`${loadFlags(THROUGHPUT_LOAD)}\`). One call at a time, nothing queues, so a call's latency is its own cost: the added-latency figures and the goals come from these runs. At 32 connections every process is busy and the latencies are mostly time spent waiting in queues: those runs give the throughput ceiling only. Figures are medians of the ${GATEWAY_ROUNDS} rounds; an added latency is the difference of two such medians, a throughput ratio the median of the per-round ratios. A run with any non-2xx answer or socket error is a failed measurement; its figures are not given. Non-2xx answers in this run: ${GATEWAY_TARGETS.some((t) => lat[t].error || thr[t].error) ? 'see the errors below' : 'none'}. Refusals counted by the simulator during the rounds (quota, token, credentials, input): ${g.simulatorRefusals}.`,
    '',
    `### Latency, one call at a time (\`${loadFlags(LATENCY_LOAD)}\`)`,
    '',
    '| target | p50 | p99 | req/s | CPU per call of the process answering (simulator or proxy) | p50 per round (ms) | p99 per round (ms) |',
    '|---|---|---|---|---|---|---|',
    ...GATEWAY_TARGETS.map((t) => {
      const x = lat[t];
      const perRound = (f: (w: GatewaySeries['rounds'][number]) => number) => x.rounds.map((w) => f(w).toFixed(3)).join(' / ');
      return x.error
        ? `| ${LABEL[t]} | ${failure(x)} | | | | | |`
        : `| ${LABEL[t]} | ${ms(x.p50)} | ${ms(x.p99)} | ${rps(x.rps)} | ${us(x.cpuPerCallUs)} | ${perRound((w) => w.p50)} | ${perRound((w) => w.p99)} |`;
    }),
    '',
    '| added latency (difference of the medians) | p50 | p99 |',
    '|---|---|---|',
    `| gateway − direct: what the gateway adds | ${signed(added.p50)} | ${signed(added.p99)} |`,
    `| bare proxy − direct: the hop itself, which any proxy adds | ${signed(g.added.bare.p50)} | ${signed(g.added.bare.p99)} |`,
    `| gateway − bare proxy: the gateway's own work | ${signed(g.added.gatewayOverBare.p50)} | ${signed(g.added.gatewayOverBare.p99)} |`,
    '',
    sentence(p50),
    sentence(p99),
    '',
    ...latencyNotes(g, cores, p50),
    `### Throughput ceiling, budget off (\`${loadFlags(THROUGHPUT_LOAD)}\`)`,
    '',
    '| target | req/s (median) | req/s per round | p50 | p99 | CPU per call of the process answering (simulator or proxy) |',
    '|---|---|---|---|---|---|',
    ...GATEWAY_TARGETS.map((t) => {
      const x = thr[t];
      return x.error
        ? `| ${LABEL[t]} | ${failure(x)} | | | | |`
        : `| ${LABEL[t]} | ${rps(x.rps)} | ${x.rounds.map((w) => rps(w.rps)).join(' / ')} | ${ms(x.p50)} | ${ms(x.p99)} | ${us(x.cpuPerCallUs)} |`;
    }),
    '',
    '| ratio (median of the per-round ratios) | value |',
    '|---|---|',
    `| gateway / direct, throughput | ${ratio(g.ratios.gatewayOverDirect)} |`,
    `| bare proxy / direct, throughput | ${ratio(g.ratios.bareOverDirect)} |`,
    `| gateway / bare proxy, throughput | ${ratio(g.ratios.gatewayOverBare)} |`,
    '',
    `No target is set for the ceiling. On this ${cores}-CPU machine wrk, the simulator and the proxy share the cores, so the ceiling through a proxy is set by the CPU all three processes spend on a call, not by the proxy alone: the simulator answering directly needs the cores for itself and wrk only. For scale: the budget that matters in production is ${BUDGET_LIMIT} calls a second per app key. With the budget off, the sliding-window log behind it (sliding-window-rate-limiter, in memory) still holds every call of the last 1.05 s and filters that list at every call, so at thousands of calls a second each call pays for a list of thousands; at ${BUDGET_LIMIT} a second the list never holds more than ${BUDGET_LIMIT}.`,
    '',
    `### Budget on: the default ${BUDGET_LIMIT} calls a second`,
    '',
    `The sidecar was restarted from the same state (its token kept, nothing issued) without \`callsPerSecond\`, so the budget is the default for a KIS real account, ${BUDGET_LIMIT} a second. Then \`${loadFlags(BUDGET_LOAD, BUDGET_DURATION)}\` through the gateway: four callers, each waiting for its slot, never longer than the 2 s \`maxWait\` allows. A slot frees a second after the broker answered the call that took it (and no sooner than the shared window of 1.05 s after its grant), so a burst of ${BUDGET_LIMIT} frees ${BUDGET_LIMIT} slots together about a second later: calls go in bursts, and a call that misses one waits up to about a second for the next, which is where the p99 below comes from. The count is the simulator's own log of when each price call arrived, as the broker counts.`,
    '',
    '| figure | value |',
    '|---|---|',
    `| price calls at the simulator | ${b.callsAtBroker} in ${b.seconds.toFixed(1)} s (${(b.callsAtBroker / b.seconds).toFixed(1)} a second) |`,
    `| most price calls within any one second | ${b.busiestSecond} |`,
    `| the sidecar's \`broker_token_gateway_budget_granted_total\`, increase | ${b.granted} |`,
    `| answers to wrk | ${num(b.wrk.requests)}${b.wrk.problems.length ? `; ${b.wrk.problems.join('; ')}` : ', all 2xx'}; p50 ${ms(b.wrk.p50)}, p99 ${ms(b.wrk.p99)} (the wait for a slot) |`,
    '',
    sentence(budget),
    '',
    `The budget counts windows of 1 s + the 50 ms \`windowMargin\`, so over a long run it lets through ${BUDGET_LIMIT} calls per 1.05 s (about ${(BUDGET_LIMIT / 1.05).toFixed(1)} a second); the first window can take its ${BUDGET_LIMIT} at once.`,
    '',
    "Commands (this run's temp paths shortened to `$TMP/...`; `$TOKEN`, `$APPKEY`, `$APPSECRET` stand for the account's real token, key and secret, `$LOCAL_*` for the client's local ones):",
    '',
    '```sh',
    tidy(g.commands.simulator),
    tidy(g.commands.sidecarOff),
    tidy(g.commands.bare),
    ...GATEWAY_TARGETS.map((t) => tidy(lat[t].command)),
    ...GATEWAY_TARGETS.map((t) => tidy(thr[t].command)),
    '# budget on',
    tidy(g.commands.sidecarDefault),
    tidy(b.command),
    '```',
    '',
  ];
  return { verdicts: [p50, p99, budget], lines };
}

function latencyNotes(g: GatewayResult, cores: number, p50: Verdict): string[] {
  const lat = g.latency;
  const directP99s = lat.direct.rounds.map((w) => w.p99);
  const hop = g.added.bare.p50;
  const own = g.added.gatewayOverBare.p50;
  const notes = [
    `What the added latency consists of, at the median: ${signed(hop)} is the hop itself, which the bare proxy pays as well. That is a second HTTP server's parse and answer, one more loopback connection and a process woken twice more per call; on this ${cores}-CPU machine wrk, the simulator and the proxy take turns on the cores. The remaining ${signed(own)} is the gateway's own work on a call: routing by account; checking the local key and secret (SHA-256 of the presented secret, compared in constant time); a slot of the budget (a fair queue in front of a sliding-window log); swapping in the real token, key and secret; reading the answer (up to 64 KiB) and parsing it as JSON to tell a dead token or an EGW00201; and the metrics (a counter and two histograms). The CPU time per call, which no scheduling delay inflates, tells the same: the sidecar spent ${us(lat.gateway.cpuPerCallUs)} of CPU per call and the bare proxy ${us(lat['bare-proxy'].cpuPerCallUs)}, so the gateway's own work costs ${us(lat.gateway.cpuPerCallUs - lat['bare-proxy'].cpuPerCallUs)} of CPU per call; the simulator spent ${us(lat.direct.cpuPerCallUs)} per answer (utime + stime from \`/proc/<pid>/stat\` over each run, divided by its calls).`,
    '',
    `One call at a time has a long tail here even straight to the simulator, with no gateway in the way: a p99 of ${ms(lat.direct.p99)} against a p50 of ${ms(lat.direct.p50)}, and from ${ms(min(directP99s))} to ${ms(max(directP99s))} from one round to the next. That tail is the simulator's (a Node process that keeps a log of every request, with garbage-collection pauses of several ms at these rates) and the shared virtual machine's scheduling. The p99 differences are therefore differences of two noisy tails, and a difference smaller than that spread says little either way; the per-round figures above show how far they move.`,
    '',
  ];
  if (!p50.met && Number.isFinite(own)) {
    notes.push(
      `Why the p50 goal is missed: the hop alone, which any proxy in a process of its own adds, costs ${signed(hop)} here${hop >= ADDED_GOALS_MS.p50 ? ', already over the goal' : ''}; the gateway's own work adds ${signed(own)} on top.`,
      '',
    );
  }
  return notes;
}

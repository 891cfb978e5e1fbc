/** The report's Gateway section: added latency (budget in memory and in Redis), throughput ceiling and the budget held, from bench/gateway.ts. */
import {
  ADDED_GOALS_MS,
  BUDGET_DURATION,
  BUDGET_LOAD,
  BUDGET_LIMIT,
  GATEWAY_ROUNDS,
  HOP_RATIO_GOAL,
  LATENCY_LOAD,
  THROUGHPUT_LOAD,
  type BudgetCheck,
  type GatewayResult,
  type GatewaySeries,
  type ModeSeen,
} from './gateway';
import { BUDGET_STORES, GATEWAY_TARGETS, UNLIMITED, type BudgetStore, type GatewayTarget } from './gateway-env';
import { max, min, ms, num, ratio } from './lib';
import { rps, sentence, tidy, type Verdict } from './report-parts';
import { WRK_DURATION, WRK_WARMUP, wrkArgs, type WrkLoad } from './wrk';

const SECTION = '6';
const LABEL: Record<GatewayTarget, string> = {
  direct: 'direct to the simulator',
  gateway: 'through the gateway, budget in memory',
  'gateway-redis': 'through the gateway, budget in Redis',
  'bare-proxy': 'through the bare proxy',
};
const STORE_LABEL: Record<BudgetStore, string> = { memory: 'in memory', redis: 'in Redis' };
const loadFlags = (load: WrkLoad, duration = WRK_DURATION): string => wrkArgs('URL', duration, [], load).slice(0, 3).join(' ');
/** A latency difference, signed: the tails of two noisy runs can come out either way. */
const signed = (value: number): string => (Number.isFinite(value) && value < 0 ? `−${ms(-value)}` : ms(value));
const us = (value: number): string => (Number.isFinite(value) ? `${num(value)} µs` : 'n/a');
const measured = (v: number) => Number.isFinite(v);
const loadText = (load: number[]): string => load.map((l) => l.toFixed(2)).join(', ');

function failure(x: GatewaySeries): string {
  if (x.skipped) return 'not measured (see above)';
  return x.error ? `**error** (${x.error}): not measured` : '';
}

/** The CPU a call cost the process answering it, and redis-server's share when the budget is counted there. */
const cpuCell = (t: GatewayTarget, x: GatewaySeries): string =>
  t === 'gateway-redis' ? `${us(x.cpuPerCallUs)} + ${us(x.redisCpuPerCallUs)} in redis-server` : us(x.cpuPerCallUs);

/** How a sidecar's budget mode came to be the expected one once it was ready: at once, or through others first. */
function modeWay(m: ModeSeen): string {
  const before = m.seen.filter((mode) => mode !== m.mode);
  return before.length ? `\`${before.join('`, then `')}\` once ready, \`${m.mode}\` ${(m.afterMs / 1000).toFixed(1)} s later` : `\`${m.mode}\` once ready`;
}

function budgetVerdict(store: BudgetStore, b: BudgetCheck): Verdict {
  const target = `with the budget on (default ${BUDGET_LIMIT}/s) counted ${STORE_LABEL[store]}, the broker sees at most ${BUDGET_LIMIT} calls in any second`;
  return {
    section: SECTION,
    target,
    figure: `at most ${b.busiestSecond} in any second, ${b.callsAtBroker} in ${b.seconds.toFixed(1)} s${b.wrk.problems.length ? `; wrk: ${b.wrk.problems.join('; ')}` : ''}`,
    met: b.busiestSecond <= BUDGET_LIMIT && b.callsAtBroker > 0 && b.wrk.problems.length === 0,
  };
}

export function renderGateway(g: GatewayResult, cores: number): { verdicts: Verdict[]; lines: string[] } {
  const lat = g.latency;
  const thr = g.throughput;
  const added = g.added.gateway;
  const memoryRatio = g.hopRatio.memory;
  const redisRatio = g.hopRatio.redis;
  const redisFigure = measured(redisRatio.p50)
    ? `in Redis ${ratio(redisRatio.p50)} (${signed(g.added.gatewayRedis.p50)}), no goal`
    : `in Redis not measured${g.redisAbsence ? ', no redis-server' : ', a run failed'}`;
  const hop: Verdict = {
    section: SECTION,
    target: `in memory, what the gateway adds to a call at p50 (gateway − direct) at most ${HOP_RATIO_GOAL}× what the bare hop adds (bare proxy − direct)`,
    figure: measured(memoryRatio.p50)
      ? `${ratio(memoryRatio.p50)}: ${signed(added.p50)} against ${signed(g.added.bare.p50)}; ${redisFigure}`
      : 'not measured: a run failed',
    met: measured(memoryRatio.p50) && memoryRatio.p50 <= HOP_RATIO_GOAL,
  };
  const p50: Verdict = {
    section: SECTION,
    target: `latency the gateway (budget in memory) adds to a call, p50 under ${ms(ADDED_GOALS_MS.p50)}`,
    figure: measured(added.p50) ? `${signed(added.p50)}: gateway ${ms(lat.gateway.p50)}, direct ${ms(lat.direct.p50)}` : 'not measured: a run failed',
    met: measured(added.p50) && added.p50 < ADDED_GOALS_MS.p50,
  };
  const p99: Verdict = {
    section: SECTION,
    target: `latency the gateway (budget in memory) adds to a call, p99 under ${ms(ADDED_GOALS_MS.p99)}`,
    figure: measured(added.p99) ? `${signed(added.p99)}: gateway ${ms(lat.gateway.p99)}, direct ${ms(lat.direct.p99)}` : 'not measured: a run failed',
    met: measured(added.p99) && added.p99 < ADDED_GOALS_MS.p99,
  };
  // A store not measured (no redis-server) has no verdict: the section says why.
  const budgetVerdicts = BUDGET_STORES.flatMap((store) => {
    const b = g.budget[store];
    return b ? [budgetVerdict(store, b)] : [];
  });
  const redisServer = g.redisAbsence
    ? `No redis-server ran: ${g.redisAbsence}. The Redis rows below say so; everything else was measured as usual.`
    : `redis-server ${g.redisVersion ?? ''} (Debian's), started by the bench on a free loopback port without persistence (\`--save '' --appendonly no\`), as the tests start it.`;
  const processes = g.redisAbsence ? 'Four' : 'Five';
  const sidecars = g.redisAbsence ? 'Two sidecars were meant to run (only the first did)' : 'Two sidecars';
  const modes = BUDGET_STORES.flatMap((store) => {
    const m = g.modes[store];
    return m ? [`${STORE_LABEL[store]}, ${modeWay(m.start)} and \`${m.after}\` after the rounds`] : [];
  });

  const lines: string[] = [
    '## 6. Gateway: added latency and throughput ceiling',
    '',
    `${processes} processes, each of its own, as in production. The broker simulator (\`bench/simulator-server.ts\`), with its per-second quota raised to ${num(UNLIMITED)} so that it never refuses a call for the rate. ${redisServer} ${sidecars}, each with one KIS real account whose \`baseUrl\` is the simulator and the gateway on for one client with local credentials; they differ only in where the call budget (\`src/budget/\`) is counted. The first has the default file store, so its budget is counted **in memory**; the second has \`store: { type: redis, url: ... }\` against that redis-server, so its budget is counted **in Redis**, as replicas share it. Each sidecar's \`broker_token_gateway_budget_mode\` said where, and the rounds began only once both said so: ${modes.length ? modes.join('; ') : 'not read (a sidecar failed)'}. (A Redis-counted sidecar starts in \`fallback\`, because its budget's first heartbeat goes out before the store's connection is up; it moves to \`rejoining\` at the next heartbeat, and to \`shared\` only at a grant 10 s after that. So the bench sent one call a second through its gateway until it said \`shared\`.) The second sidecar got the first one's token from the simulator (KIS answers a token request within 6 hours with the same token), so both forward with the same real token. And the bare proxy (\`bench/bare-proxy.ts\`): the gateway's own server (\`listen\`) and forwarding (\`forward\`, the same undici keep-alive pool), and nothing else (no routing by account, no local credentials, no budget, no token swap, no metrics, no inspection of the answer). It is the floor for any proxy in a process of its own.`,
    '',
    `**The budget is off for the latency and throughput runs**, in both sidecars: \`gateway.callsPerSecond\` is ${num(UNLIMITED)} for the account, far above what this machine can send (a value above 18 is accepted only because the \`baseUrl\` is not KIS's own host). Off means the budget never makes a call wait, not that its code is skipped: every call still goes through the fair queue, takes a slot of the log (in memory, or by a Lua script in Redis) and settles it after the answer. So these runs measure what the budget costs a call that finds a slot free, which is every call below the limit.`,
    '',
    `The call is KIS inquire-price (\`tr_id: FHKST01010100\`) with the headers \`kis_auth.py\` sends. **direct**: to the simulator with the real token, app key and secret; the token is read from the first sidecar's token file, as a bot reads it. **gateway**: to \`/main/uapi/...\` on either sidecar's gateway port, with the client's local token (from that gateway's own \`tokenP\`, answered without the broker) and local key and secret. **bare proxy**: the real ones, passed on as they came. Before measuring, one call through each answered 200 with \`rt_cd\` "0". Each target got a ${WRK_WARMUP} warm-up at 32 connections. Then came ${GATEWAY_ROUNDS} rounds; each round ran the four targets (each round starting with another) first one call at a time (\`${loadFlags(LATENCY_LOAD)}\`), then with 32 connections (\`${loadFlags(THROUGHPUT_LOAD)}\`). One call at a time, nothing queues, so a call's latency is its own cost: the added-latency figures and the goals come from these runs. At 32 connections every process is busy and the latencies are mostly time spent waiting in queues: those runs give the throughput ceiling only. Figures are medians of the ${GATEWAY_ROUNDS} rounds; an added latency is the difference of two such medians, a throughput ratio the median of the per-round ratios. A run with any non-2xx answer or socket error is a failed measurement; its figures are not given. Non-2xx answers in this run: ${GATEWAY_TARGETS.some((t) => lat[t].error || thr[t].error) ? 'see the errors below' : 'none'}. Refusals counted by the simulator during the rounds (quota, token, credentials, input): ${g.simulatorRefusals}. The machine is shared: its load average (1, 5, 15 min) was ${loadText(g.load.start)} when this section began and ${loadText(g.load.end)} when it ended.`,
    '',
    `### Latency, one call at a time (\`${loadFlags(LATENCY_LOAD)}\`), budget off`,
    '',
    '| target | p50 | p99 | req/s | CPU per call of the process answering (simulator or proxy) | p50 per round (ms) | p99 per round (ms) |',
    '|---|---|---|---|---|---|---|',
    ...GATEWAY_TARGETS.map((t) => {
      const x = lat[t];
      const perRound = (f: (w: GatewaySeries['rounds'][number]) => number) => x.rounds.map((w) => f(w).toFixed(3)).join(' / ');
      return x.error || x.skipped
        ? `| ${LABEL[t]} | ${failure(x)} | | | | | |`
        : `| ${LABEL[t]} | ${ms(x.p50)} | ${ms(x.p99)} | ${rps(x.rps)} | ${cpuCell(t, x)} | ${perRound((w) => w.p50)} | ${perRound((w) => w.p99)} |`;
    }),
    '',
    '| added latency (difference of the medians) | p50 | p99 |',
    '|---|---|---|',
    `| gateway, budget in memory − direct: what the gateway adds | ${signed(added.p50)} | ${signed(added.p99)} |`,
    `| gateway, budget in Redis − direct: what the gateway adds | ${signed(g.added.gatewayRedis.p50)} | ${signed(g.added.gatewayRedis.p99)} |`,
    `| bare proxy − direct: the hop itself, which any proxy adds | ${signed(g.added.bare.p50)} | ${signed(g.added.bare.p99)} |`,
    `| gateway, budget in memory − bare proxy: the gateway's own work | ${signed(g.added.gatewayOverBare.p50)} | ${signed(g.added.gatewayOverBare.p99)} |`,
    `| gateway, budget in Redis − bare proxy: the same, with the budget in Redis | ${signed(g.added.redisOverBare.p50)} | ${signed(g.added.redisOverBare.p99)} |`,
    '',
    `| what the gateway adds ÷ what the bare hop adds, (gateway − direct) / (bare proxy − direct), at p50 | of the medians | round by round |`,
    '|---|---|---|',
    ...BUDGET_STORES.map((store) => {
      const r = g.hopRatio[store];
      const goal = store === 'memory' ? `goal: at most ${HOP_RATIO_GOAL}×` : 'no goal: stated';
      return `| budget ${STORE_LABEL[store]} (${goal}) | ${ratio(r.p50)} | ${r.p50PerRound.length ? r.p50PerRound.map(ratio).join(' / ') : 'n/a'} |`;
    }),
    '',
    sentence(hop),
    sentence(p50),
    sentence(p99),
    '',
    ...latencyNotes(g, cores, p50, hop),
    `### Throughput ceiling, budget off (\`${loadFlags(THROUGHPUT_LOAD)}\`)`,
    '',
    '| target | req/s (median) | req/s per round | p50 | p99 | CPU per call of the process answering (simulator or proxy) |',
    '|---|---|---|---|---|---|',
    ...GATEWAY_TARGETS.map((t) => {
      const x = thr[t];
      return x.error || x.skipped
        ? `| ${LABEL[t]} | ${failure(x)} | | | | |`
        : `| ${LABEL[t]} | ${rps(x.rps)} | ${x.rounds.map((w) => rps(w.rps)).join(' / ')} | ${ms(x.p50)} | ${ms(x.p99)} | ${cpuCell(t, x)} |`;
    }),
    '',
    '| ratio (median of the per-round ratios) | value |',
    '|---|---|',
    `| gateway (budget in memory) / direct, throughput | ${ratio(g.ratios.gatewayOverDirect)} |`,
    `| gateway (budget in Redis) / direct, throughput | ${ratio(g.ratios.redisOverDirect)} |`,
    `| bare proxy / direct, throughput | ${ratio(g.ratios.bareOverDirect)} |`,
    `| gateway (budget in memory) / bare proxy, throughput | ${ratio(g.ratios.gatewayOverBare)} |`,
    '',
    `No target is set for the ceiling. On this ${cores}-CPU machine wrk, the simulator and the proxy share the cores (and redis-server, for the Redis-counted gateway), so the ceiling through a proxy is set by the CPU all the processes spend on a call, not by the proxy alone: the simulator answering directly needs the cores for itself and wrk only. For scale: the budget that matters in production is ${BUDGET_LIMIT} calls a second per app key. With the budget off, the slot log still holds every call's slot until a window (1.05 s) after its answer, so at thousands of calls a second it holds thousands. In memory that is one \`Map\` per key, passed over only at the limit or once it has doubled since the last pass, so a grant costs O(1) on average. In Redis it is one sorted set per key, which every decision trims of the lapsed slots (\`ZREMRANGEBYSCORE\`) before it counts them (\`ZCARD\`). At ${BUDGET_LIMIT} a second neither holds more than ${BUDGET_LIMIT} slots.`,
    '',
    `### Budget on: the default ${BUDGET_LIMIT} calls a second, in memory and in Redis`,
    '',
    `After the rounds both sidecars were stopped, and each was restarted alone from its own state (its token kept, nothing issued) without \`callsPerSecond\`, so its budget is the default for a KIS real account, ${BUDGET_LIMIT} a second; the other stayed stopped, so that its proofs (the same price call) were not counted with these. Once its budget said it was counted where it should be, and a window after the call that checked it, \`${loadFlags(BUDGET_LOAD, BUDGET_DURATION)}\` ran through its gateway: four callers, each waiting for its slot, never longer than the 2 s \`maxWait\` allows. A slot counts from its grant until a window (1 s + the 50 ms \`windowMargin\`) after the broker answered its call, in memory and in Redis alike (there on the Redis server's clock), so a burst of ${BUDGET_LIMIT} frees ${BUDGET_LIMIT} slots together about a second later. Calls go in bursts, and a call that misses one waits up to about a second for the next, which is where the p99 below comes from. The count is the simulator's own log of when each price call arrived, as the broker counts.`,
    '',
    `| figure | ${BUDGET_STORES.map((s) => `budget ${STORE_LABEL[s]}`).join(' | ')} |`,
    `|---|${BUDGET_STORES.map(() => '---|').join('')}`,
    ...(
      [
        ['price calls at the simulator', (b) => `${b.callsAtBroker} in ${b.seconds.toFixed(1)} s (${(b.callsAtBroker / b.seconds).toFixed(1)} a second)`],
        ['most price calls within any one second', (b) => String(b.busiestSecond)],
        ["the sidecar's `broker_token_gateway_budget_granted_total`, increase", (b) => String(b.granted)],
        [
          'where the budget was counted (`broker_token_gateway_budget_mode`); the run began once it was the expected one',
          (b) => `${modeWay(b.modeAtStart)}; \`${b.modeAfter}\` after the run`,
        ],
        [
          'answers to wrk',
          (b) =>
            `${num(b.wrk.requests)}${b.wrk.problems.length ? `; ${b.wrk.problems.join('; ')}` : ', all 2xx'}; p50 ${ms(b.wrk.p50)}, p99 ${ms(b.wrk.p99)} (the wait for a slot)`,
        ],
      ] as Array<[string, (b: BudgetCheck) => string]>
    ).map(([name, f]) => `| ${name} | ${BUDGET_STORES.map((s) => (g.budget[s] ? f(g.budget[s]) : 'not measured')).join(' | ')} |`),
    '',
    ...budgetVerdicts.map(sentence),
    ...(g.budget.redis ? [] : [`Budget on, counted in Redis: not measured (${g.redisAbsence ?? 'not run'}).`]),
    '',
    `Over a long run the budget lets through ${BUDGET_LIMIT} calls per 1.05 s plus a call's round trip (a little under ${(BUDGET_LIMIT / 1.05).toFixed(1)} a second); the first window can take its ${BUDGET_LIMIT} at once.`,
    '',
    "Commands (this run's temp paths shortened to `$TMP/...`; `$TOKEN`, `$APPKEY`, `$APPSECRET` stand for the account's real token, key and secret, `$LOCAL_*` for the client's local ones):",
    '',
    '```sh',
    tidy(g.commands.simulator),
    ...(g.redisAbsence ? [] : [g.commands.redis]),
    tidy(g.commands.sidecarOff.memory),
    ...(g.redisAbsence ? [] : [tidy(g.commands.sidecarOff.redis)]),
    tidy(g.commands.bare),
    ...GATEWAY_TARGETS.flatMap((t) => (lat[t].skipped ? [] : [tidy(lat[t].command)])),
    ...GATEWAY_TARGETS.flatMap((t) => (thr[t].skipped ? [] : [tidy(thr[t].command)])),
    ...BUDGET_STORES.flatMap((store) => {
      const b = g.budget[store];
      return b ? [`# budget on, ${STORE_LABEL[store]}`, tidy(g.commands.sidecarDefault[store]), tidy(b.command)] : [];
    }),
    '```',
    '',
  ];
  return { verdicts: [hop, p50, p99, ...budgetVerdicts], lines };
}

function latencyNotes(g: GatewayResult, cores: number, p50: Verdict, hopGoal: Verdict): string[] {
  const lat = g.latency;
  const directP99s = lat.direct.rounds.map((w) => w.p99);
  const hop = g.added.bare.p50;
  const own = g.added.gatewayOverBare.p50;
  const redisOwn = g.added.redisOverBare.p50;
  const redisCpu = lat['gateway-redis'];
  const notes = [
    `What the added latency consists of, at the median: ${signed(hop)} is the hop itself, which the bare proxy pays as well. That is a second HTTP server's parse and answer, one more loopback connection and a process woken twice more per call; on this ${cores}-CPU machine wrk, the simulator and the proxy take turns on the cores. The remaining ${signed(own)} (budget in memory) is the gateway's own work on a call. It routes by account and authenticates the caller from its headers alone (SHA-256 of the presented secret, compared in constant time), before the body is read. It takes a slot of the budget (\`src/budget/\`): a fair queue per key in front of the slot log, a per-key log of slots each counted from its grant until a window (1.05 s) after its call's answer; a call that finds a slot free still passes through the queue's promise and its turn. It swaps in the real token, key and secret, and forwards. It reads the answer (up to 64 KiB) and parses it as JSON to tell a dead token or an EGW00201. It settles the slot, and counts the call in the metrics (two counters and two histograms, through the event bus). The CPU time per call, which no scheduling delay inflates, tells the same: the sidecar spent ${us(lat.gateway.cpuPerCallUs)} of CPU per call and the bare proxy ${us(lat['bare-proxy'].cpuPerCallUs)}, so the gateway's own work costs ${us(lat.gateway.cpuPerCallUs - lat['bare-proxy'].cpuPerCallUs)} of CPU per call; the simulator spent ${us(lat.direct.cpuPerCallUs)} per answer (utime + stime from \`/proc/<pid>/stat\` over each run, divided by its calls).`,
    '',
    redisCpu.skipped || redisCpu.error
      ? `Budget in Redis: not measured (${redisCpu.skipped ?? redisCpu.error}).`
      : `With the budget in Redis the gateway's own work is ${signed(redisOwn)}, ${signed(redisOwn - own)} more than in memory. The difference is the slot's decision: one Lua script (\`src/budget/redis-slot-log.ts\`: the time from Redis \`TIME\`, \`ZREMRANGEBYSCORE\` of the lapsed slots, \`ZCARD\`, \`ZADD\`, \`PEXPIRE\`) sent over the loopback connection to redis-server and awaited before the call leaves, so a round trip, and redis-server woken, lies on every call's path. After the answer a second script settles the slot (its new end, a window from now); the client's answer does not wait for it, but the sidecar sends it and reads its reply, so it costs CPU and a wake-up in both processes. The sidecar spent ${us(redisCpu.cpuPerCallUs)} of CPU per call (${us(redisCpu.cpuPerCallUs - lat.gateway.cpuPerCallUs)} more than counting in memory: the two commands, their replies, and the slot kept in memory as well, for when Redis is out of reach), and redis-server ${us(redisCpu.redisCpuPerCallUs)} per call. The replicas' heartbeat (one more script a second) is not per call.`,
    '',
    `One call at a time has a long tail here even straight to the simulator, with no gateway in the way: a p99 of ${ms(lat.direct.p99)} against a p50 of ${ms(lat.direct.p50)}, and from ${ms(min(directP99s))} to ${ms(max(directP99s))} from one round to the next. That tail is the simulator's (a Node process that keeps a log of every request, with garbage-collection pauses of several ms at these rates) and the shared virtual machine's scheduling. The p99 differences are therefore differences of two noisy tails, and a difference smaller than that spread says little either way; the per-round figures above show how far they move. The ratios rest on differences of p50s a few tenths of a millisecond apart, so they move from round to round as well; the ratio of the medians is the figure for the goal, and the per-round ones show its spread.`,
    '',
  ];
  if (!hopGoal.met && Number.isFinite(own) && Number.isFinite(hop)) {
    notes.push(
      `Why the ratio goal is missed: at ${HOP_RATIO_GOAL}× the gateway may add at most ${signed(HOP_RATIO_GOAL * hop)} when the hop costs ${signed(hop)}, so its own work may take ${signed((HOP_RATIO_GOAL - 1) * hop)}; it took ${signed(own)}. One call at a time nothing overlaps, so the CPU the sidecar spends on a call before its answer leaves is latency: it spent ${us(lat.gateway.cpuPerCallUs - lat['bare-proxy'].cpuPerCallUs)} a call more than the bare proxy (a little of it, the metrics and the slot's settling, after the answer). Where that CPU goes is for a profile of the sidecar, not this bench.`,
      '',
    );
  }
  if (!p50.met && Number.isFinite(own)) {
    notes.push(
      `Why the p50 goal is missed: the hop alone, which any proxy in a process of its own adds, costs ${signed(hop)} here${hop >= ADDED_GOALS_MS.p50 ? ', already over the goal' : ''}; the gateway's own work adds ${signed(own)} on top.`,
      '',
    );
  }
  return notes;
}

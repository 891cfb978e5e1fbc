/** The report's Real-time section: the endpoint beside a bare `ws` relay, from bench/realtime.ts. */
import { bytes, ms, num } from './lib';
import { tidy } from './report-parts';
import { REALTIME_TARGETS, ROUNDS, SCENARIOS, WARMUP_MS, WINDOW_MS, type RealtimeResult, type RealtimeTarget } from './realtime';
import type { ReplicaDelayResult } from './realtime-replicas';

const LABEL: Record<RealtimeTarget, string> = { sidecar: "the sidecar's real-time endpoint", relay: 'a bare `ws` relay' };
const perSecond = (frames: number, seconds: number): string => num(frames / seconds);

export function renderRealtime(r: RealtimeResult, replicas: ReplicaDelayResult): string[] {
  const delay = r.runs.delay;
  const fan10 = r.runs['fanout-10'];
  const fan50 = r.runs['fanout-50'];
  const row = (label: string, cell: (target: RealtimeTarget) => string) => `| ${label} | ${REALTIME_TARGETS.map(cell).join(' | ')} |`;
  return [
    '## 7. Real-time: added delay per frame, fan-out, memory per client',
    '',
    "The sidecar's real-time endpoint (one session at the simulator, registrations counted and routed, each client's queue bounded) beside a bare `ws` relay (one session, every frame to every client, nothing else), in the same run, each a process of its own in front of the simulator (a process too), each on a key of its own. The clients run in one more process; each record's arrival is timed against a session of a third key straight at the simulator, which sends every session the same record in the same beat: the difference is what the hop adds. Ten streams (H0STCNT0, one record a frame), every client subscribed to all ten.",
    '',
    `| | ${REALTIME_TARGETS.map((t) => LABEL[t]).join(' | ')} |`,
    '|---|---|---|',
    row(
      `added delay per frame, p50 / p99 (${SCENARIOS[0]!.clients} clients, ${SCENARIOS[0]!.framesPerSecond * 10} frames/s in)`,
      (t) => `${ms(delay[t].p50)} / ${ms(delay[t].p99)}`,
    ),
    row(
      `frames/s fanned out to ${SCENARIOS[1]!.clients} clients (${SCENARIOS[1]!.framesPerSecond * 10} frames/s in); added delay p50 / p99`,
      (t) => `${perSecond(fan10[t].frames, fan10[t].seconds)}; ${ms(fan10[t].p50)} / ${ms(fan10[t].p99)}`,
    ),
    row(
      `frames/s fanned out to ${SCENARIOS[2]!.clients} clients (${SCENARIOS[2]!.framesPerSecond * 10} frames/s in); added delay p50 / p99`,
      (t) => `${perSecond(fan50[t].frames, fan50[t].seconds)}; ${ms(fan50[t].p50)} / ${ms(fan50[t].p99)}`,
    ),
    row(`frames that did not reach a client, of all it should have got (${SCENARIOS[2]!.clients} clients)`, (t) =>
      num(Math.max(0, fan50[t].upstreamFrames * SCENARIOS[2]!.clients - fan50[t].frames)),
    ),
    row(`resident memory after start-up, and per client at ${SCENARIOS[2]!.clients}`, (t) => `${bytes(r.idleRss[t])}; ${bytes(r.perClient[t])}`),
    row('client connections closed during the runs', (t) => String(SCENARIOS.reduce((n, s) => n + r.runs[s.name][t].closed, 0))),
    '',
    `Each figure is the median of ${ROUNDS} runs of ${WINDOW_MS / 1000} s (after ${WARMUP_MS / 1000} s of warm-up each); the two targets alternate which goes first from one round to the next. "Per client" is the resident memory during a 50-client run less that right before its clients connected, divided by 50 (the median of the rounds; a garbage collection between the two readings can make it small or even negative): it includes what the clients' sockets hold in the process (ws's buffers), which a bound caps in the sidecar and nothing caps in the bare relay. The sidecar's bound is \`realtime.client.maxQueueBytes\` (1 MiB by default) per client: ${bytes(1024 * 1024 * 64)} for 64 clients at most (README, Real-time).`,
    '',
    '### Through Redis: the session shared by replicas',
    '',
    `Two replicas on one redis-server and one key (\`bench/realtime-replicas.ts\`, in the same run): the holder runs the session at the simulator, the other receives its frames through Redis (Pub/Sub). The same probe, ${replicas.clients} clients at ${replicas.framesPerSecond} frames/s in, times each record against a direct session of a second key, at the holder's clients (the path of one replica alone) and at the other replica's (through Redis), alternating, ${ROUNDS} rounds each.`,
    '',
    '| | clients of the holder (one replica) | clients of the other replica (through Redis) |',
    '|---|---|---|',
    `| added delay per frame, p50 / p99 | ${ms(replicas.paths.holder.p50)} / ${ms(replicas.paths.holder.p99)} | ${ms(replicas.paths.relayed.p50)} / ${ms(replicas.paths.relayed.p99)} |`,
    `| Redis's share, p50 / p99 (the difference) | | ${ms(replicas.paths.relayed.p50 - replicas.paths.holder.p50)} / ${ms(replicas.paths.relayed.p99 - replicas.paths.holder.p99)} |`,
    `| client connections closed during the runs | ${replicas.paths.holder.closed} | ${replicas.paths.relayed.closed} |`,
    '',
    'Commands (each its own process):',
    '',
    '```',
    ...Object.values(r.commands).map(tidy),
    '```',
    '',
  ];
}

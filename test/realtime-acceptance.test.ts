/**
 * Issue 24's acceptance, with the replicas of the real clients as processes (test/replicas/: the official
 * KISWebSocket and python-kis) on one app key, through the sidecar's real-time endpoint against the simulator:
 * one session at the broker however many programs, the registrations a counted budget, every frame to every
 * client with no gap, fill notices decrypted with the key each client was given, and a killed session replayed
 * without any client noticing more than the frames sent while it was down.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import WebSocket from 'ws';
import { VOLUME_STEP } from '../src/simulator';
import { localClient, type Client } from './gateway-harness';
import { markerCredential, recordReliability, tempDir, tier, until } from './helpers';
import { approvalKey, firstGap, HANG_MS, kisRequest, realtimeReplicaPython, ReplicaProcess } from './realtime-harness';
import { localApprovalKey, realtimeEndpoint } from './realtime-endpoint-harness';
import { writeCredentialFiles, writeKisDevlp } from './replicas';

const kis = markerCredential('kis', 'rtacc');
const python = realtimeReplicaPython();
const skip = python === undefined ? 'needs /usr/bin/python3 with websockets, Cryptodome and yaml' : false;

const T = (i: number) => String(100_000 + i); // a stock code; trades (H0STCNT0) and order books (H0STASP0) of it
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => T(from + i));

interface Plan {
  kind: 'official' | 'pykis';
  price: string[];
  orderbook: string[];
  fills?: boolean;
  /** python-kis's WebSocket host without the account: the approval key names it. */
  bareHost?: boolean;
}

/**
 * Ten programs, 60 registrations: the first nine want 48 that overlap into 41 distinct (20 trade streams, 20 order
 * books, the fill notices of trader01); the tenth, started once those are live, wants 12, three of them new.
 */
const FIRST_NINE: Plan[] = [
  { kind: 'official', price: range(0, 4), orderbook: [], fills: true },
  { kind: 'official', price: [], orderbook: range(0, 4), fills: true },
  { kind: 'official', price: range(5, 9), orderbook: range(5, 6) },
  { kind: 'pykis', price: range(10, 14), orderbook: [] },
  { kind: 'official', price: [], orderbook: range(7, 11) },
  { kind: 'pykis', price: range(15, 19), orderbook: [], bareHost: true },
  { kind: 'official', price: [], orderbook: range(12, 16) },
  { kind: 'official', price: [T(0), T(5)], orderbook: range(17, 19) },
  { kind: 'pykis', price: [T(10), T(15), T(1), T(6)], orderbook: [] },
];
const OVERFLOW = [T(20), T(21), T(22)];
const TENTH: Plan = { kind: 'official', price: [T(1), T(2), T(3), T(6), T(7), T(11), T(16), ...OVERFLOW], orderbook: [T(1), T(8)] };

const registrationsOf = (plan: Plan) => plan.price.length + plan.orderbook.length + (plan.fills ? 1 : 0);

function startBot(t: TestContext, h: Awaited<ReturnType<typeof realtimeEndpoint>>, client: Client, plan: Plan): ReplicaProcess {
  const home = tempDir(t, 'bts-rtacc-');
  const wsHost = plan.bareHost ? h.endpoint.url : h.ws;
  if (plan.kind === 'official') {
    writeKisDevlp(home, client, h.base, wsHost);
    const args = [
      ...(plan.price.length ? ['--price', ...plan.price] : []),
      ...(plan.orderbook.length ? ['--orderbook', ...plan.orderbook] : []),
      ...(plan.fills ? ['--fills'] : []),
    ];
    return ReplicaProcess.start(t, python!, 'kis_ws_bot.py', args, { HOME: home, TZ: 'Asia/Seoul' });
  }
  const files = writeCredentialFiles(join(home, 'secrets'), { ...kis, appKey: client.appKey, appSecret: client.appSecret }, 'kis');
  const args = [
    '--id',
    'trader01',
    '--appkey-file',
    files.appKeyFile,
    '--secret-file',
    files.secretFile,
    '--keep-token',
    join(home, 'pykis'),
    '--price',
    ...plan.price,
  ];
  // python-kis joins its paths to a bare host: the gateway routes it to its client's one account.
  const env = { HOME: home, TZ: 'Asia/Seoul', PYKIS_REPLICA_REAL_DOMAIN: h.gateway.url, PYKIS_REPLICA_WEBSOCKET_REAL_DOMAIN: wsHost };
  return ReplicaProcess.start(t, python!, 'pykis_ws_bot.py', args, env);
}

/** What a bot was told for each registration it sent: OPSP0000 or the refusal's code. */
function answersOf(bot: ReplicaProcess, kind: Plan['kind']): Map<string, string> {
  const answers = new Map<string, string>();
  if (kind === 'official') {
    for (const e of bot.of('control')) if (e.msgCd !== undefined && !answers.has(`${e.trId}|${e.trKey}`)) answers.set(`${e.trId}|${e.trKey}`, e.msgCd);
  } else {
    for (const e of bot.of('log', (l) => l.message.startsWith('RTC Subscribed to ')))
      answers.set(e.message.slice('RTC Subscribed to '.length).replace('.', '|'), 'OPSP0000');
  }
  return answers;
}

/** Per stream (tr_id|code): the growing volumes a bot saw, in order. */
function streamsOf(bot: ReplicaProcess, kind: Plan['kind']): Map<string, number[]> {
  const streams = new Map<string, number[]>();
  const add = (name: string, volume: number) => streams.set(name, [...(streams.get(name) ?? []), volume]);
  for (const e of bot.of('data')) {
    // python-kis calls every handler of a TR for each event (its filters by code sit above, in the objects the
    // replica leaves out): a bot with N codes sees each event N times in a row.
    if (kind === 'pykis' && streams.get(`${e.trId}|${e.symbol}`)?.at(-1) === Number(e.volume)) continue;
    if (kind === 'pykis') add(`${e.trId}|${e.symbol}`, Number(e.volume));
    else if (e.trId !== 'H0STCNI0') add(`${e.trId}|${e.rows[0].MKSC_SHRN_ISCD}`, Number(e.rows[0].ACML_VOL));
  }
  return streams;
}

const wanted = (plan: Plan) => [
  ...plan.price.map((c) => `H0STCNT0|${c}`),
  ...plan.orderbook.map((c) => `H0STASP0|${c}`),
  ...(plan.fills ? ['H0STCNI0|trader01'] : []),
];

test(
  'ten programs on one app key: one session and 41 registrations at the broker, the overflow refused locally, every frame to every client, fills decrypted; the session killed and replayed within 2 s, no client reconnecting',
  { skip, timeout: 240_000 },
  async (t) => {
    const clients = Array.from({ length: 10 }, (_, i) => localClient(`bot${i}`));
    const h = await realtimeEndpoint(t, kis, clients, {
      simulator: { approvalSpacingMs: 1_000, realtime: { framesPerSecond: 2, pingIntervalMs: 2_000, pingUnansweredLimit: 10 } },
      realtime: `fills: { bot0: [trader01], bot1: [trader01] }\nclient: { pingInterval: 2s }`,
    });
    const plans = [...FIRST_NINE, TENTH];
    assert.equal(
      plans.reduce((n, p) => n + registrationsOf(p), 0),
      60,
    );

    const bots = FIRST_NINE.map((plan, i) => startBot(t, h, clients[i]!, plan));
    await Promise.all(
      bots.map((bot, i) =>
        until(
          `bot${i}'s ${registrationsOf(FIRST_NINE[i]!)} answers`,
          4 * HANG_MS,
          () => answersOf(bot, FIRST_NINE[i]!.kind).size >= registrationsOf(FIRST_NINE[i]!),
        ),
      ),
    );
    const tenth = startBot(t, h, clients[9]!, TENTH);
    bots.push(tenth);
    await until('the tenth bot’s 12 answers', 2 * HANG_MS, () => answersOf(tenth, 'official').size >= 12);

    // The overflow: the three new codes refused here (OPSP0008), never sent; everything else subscribed.
    for (const [i, bot] of bots.entries()) {
      const answers = answersOf(bot, plans[i]!.kind);
      for (const name of wanted(plans[i]!)) {
        const refusedHere = i === 9 && OVERFLOW.some((c) => name === `H0STCNT0|${c}`);
        assert.equal(answers.get(name), refusedHere ? 'OPSP0008' : 'OPSP0000', `bot${i} ${name}`);
      }
    }
    const before = h.simulator.realtime.stats(kis.appKey);
    assert.deepEqual([before.sessions, before.peakConcurrentSessions, before.peakRegistrations], [1, 1, 41]);
    assert.equal(before.refusals['OPSP0008'], undefined, 'the broker never saw the 42nd');
    assert.equal(before.refusals['OPSP8996'], undefined, 'no second session was ever tried');

    // Fill notices: the two clients allowed them decrypt the notice with the key and iv they were given.
    const fillsSeen = (bot: ReplicaProcess) => bot.of('data', (e) => e.trId === 'H0STCNI0' && e.rows[0].CUST_ID === 'trader01').length;
    assert.equal(h.simulator.realtime.fill('trader01'), 1, 'one fill notice, to the one session');
    await until('both fill readers decrypting the notice', HANG_MS, () => fillsSeen(bots[0]!) === 1 && fillsSeen(bots[1]!) === 1);

    // Every client has frames of each of its registrations, each stream with no gap.
    const enough = 4;
    await until(
      'four frames of every registration at every client',
      2 * HANG_MS,
      () =>
        bots.every((bot, i) => {
          const streams = streamsOf(bot, plans[i]!.kind);
          return wanted(plans[i]!)
            .filter((n) => !n.startsWith('H0STCNI0') && !(i === 9 && OVERFLOW.some((c) => n.endsWith(`|${c}`))))
            .every((n) => (streams.get(n)?.length ?? 0) >= enough);
        }),
      200,
    );
    for (const [i, bot] of bots.entries()) {
      for (const [name, volumes] of streamsOf(bot, plans[i]!.kind)) assert.equal(firstGap(volumes, VOLUME_STEP), undefined, `bot${i} ${name}`);
    }

    // The session killed at the broker: the sidecar reconnects and replays the 41, paced; no client reconnects.
    const connectsBefore = bots.map((bot) => bot.of('connect').length + bot.of('log', (e) => e.message.startsWith('RTC Connected')).length);
    const killedAt = Date.now();
    assert.equal(h.simulator.realtime.kill(kis.appKey), 1);
    await until(
      'the 41 registrations replayed',
      HANG_MS,
      () => h.simulator.realtime.sessionList({ appKey: kis.appKey, open: true })[0]?.registrations.length === 41,
      10,
    );
    const replayedMs = Date.now() - killedAt;
    t.diagnostic(`session killed: reconnected and 41 registrations replayed in ${replayedMs} ms`);
    // The 2 s (a second's gap after the close, then 41 registrations one in flight at a time) is asserted in the
    // long tier (npm run reliability, in CI too: one file at a time; 1.4 s measured). In npm test three files share two
    // cores with this process, which holds the sidecar and the simulator: a CI run saw 3.27 s there, the host's time.
    const replayBoundMs = tier(5_000, 2_000);
    assert.ok(replayedMs <= replayBoundMs, `replayed in ${replayedMs} ms (bound ${replayBoundMs} ms)`);
    const afterKill = h.simulator.realtime.stats(kis.appKey);
    assert.deepEqual([afterKill.sessions, afterKill.peakConcurrentSessions, afterKill.rapidReconnects], [2, 1, 0]);

    // Frames again at every client; the one gap in each stream is what the market traded while the session was down.
    const counts = bots.map((bot) => bot.of('data').length);
    await until('frames after the replay at every client', HANG_MS, () => bots.every((bot, i) => bot.of('data').length >= counts[i]! + 3));
    const outageFrames = Math.ceil((replayedMs / 1000) * 2) + 1;
    for (const [i, bot] of bots.entries()) {
      for (const [name, volumes] of streamsOf(bot, plans[i]!.kind)) {
        const steps = volumes.slice(1).map((v, k) => (v - volumes[k]!) / VOLUME_STEP);
        const jumps = steps.filter((s) => s !== 1);
        assert.ok(jumps.length <= 1, `bot${i} ${name}: one gap at most, got steps ${JSON.stringify(steps)}`);
        assert.ok(
          jumps.every((s) => s > 1 && s - 1 <= outageFrames),
          `bot${i} ${name}: a gap of ${JSON.stringify(jumps)} frames, the outage was ${outageFrames}`,
        );
      }
    }
    const connectsAfter = bots.map((bot) => bot.of('connect').length + bot.of('log', (e) => e.message.startsWith('RTC Connected')).length);
    assert.deepEqual(connectsAfter, connectsBefore, 'no client connected again');

    // The new session's key and iv reached both fill readers: the next notice decrypts too.
    assert.equal(h.simulator.realtime.fill('trader01'), 1);
    await until('both fill readers decrypting with the new session’s key', HANG_MS, () => fillsSeen(bots[0]!) === 2 && fillsSeen(bots[1]!) === 2);
    assert.ok(bots.every((bot) => bot.of('exception').length === 0));

    recordReliability({
      kind: 'realtime',
      scenario: 'ten client processes (7 official KISWebSocket, 3 python-kis) on one app key, 60 registrations; the session killed at the broker',
      outcome:
        'one session and 41 registrations at the broker, 3 refused locally (OPSP0008); no gap; fills decrypted by both readers before and after; no client reconnected',
      figure: `replayed in ${replayedMs} ms`,
    });
  },
);

/** A raw client that notes when each data frame arrived, by stream and record number (its growing volume). */
class TimedProbe {
  readonly arrivals = new Map<string, number>();
  frames = 0;
  closeCode: number | undefined;
  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const at = performance.now();
      const text = data.toString('utf8');
      if (!text.startsWith('0|')) return;
      const fields = text.split('|')[3]!.split('^', 14);
      this.arrivals.set(`${fields[0]}|${fields[13]}`, at);
      this.frames++;
    });
    ws.on('close', (code) => (this.closeCode = code));
  }

  static async open(t: TestContext, url: string, register: (ws: WebSocket) => void): Promise<TimedProbe> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    t.after(() => ws.terminate());
    const probe = new TimedProbe(ws);
    register(ws);
    return probe;
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

test(
  'one client stops reading: the others’ frame delay stays within 2× of the run without it, the slow one is closed at its bound, its queue never past it',
  { timeout: 120_000 },
  async (t) => {
    const direct = markerCredential('kis', 'rtdirect');
    const bots = [localClient('bot'), localClient('slow')];
    const maxQueueBytes = 256 * 1024;
    const h = await realtimeEndpoint(t, kis, bots, {
      otherCredentials: [direct],
      simulator: { approvalSpacingMs: 0, realtime: { framesPerSecond: 20, recordsPerFrame: 20, pingIntervalMs: 3_600_000 } },
      realtime: `client: { maxQueueBytes: ${maxQueueBytes}, maxQueueDelay: 1s }`,
    });
    const codes = range(0, 9);
    const registerAll = (key: string) => (ws: WebSocket) => codes.forEach((code) => ws.send(kisRequest(key, 'H0STCNT0', code)));
    // The reference: a session of another key at the simulator, fed the same records in the same beat.
    const reference = await TimedProbe.open(t, `${h.sim.wsUrl}/tryitout`, registerAll(await approvalKey(h.sim.url, direct)));
    const key = await localApprovalKey(h.base, bots[0]!);
    const readers = await Promise.all(Array.from({ length: 10 }, () => TimedProbe.open(t, `${h.ws}/tryitout`, registerAll(key))));
    await until('frames at every reader', HANG_MS, () => readers.every((r) => r.frames >= 20) && reference.frames >= 20);

    const delays = (from: number, to: number): number[] => {
      const out: number[] = [];
      for (const [record, directAt] of reference.arrivals) {
        if (directAt < from || directAt >= to) continue;
        for (const reader of readers) {
          const at = reader.arrivals.get(record);
          if (at !== undefined) out.push(at - directAt);
        }
      }
      return out;
    };
    // Phases with and without a slow client take turns, equally long, so that a stall of the host (a GC of this
    // process, which holds the sidecar, the simulator and every client) lands in either as likely, and drift cancels.
    // In the phases with one, a client that stops reading comes back as soon as it is closed (a buggy bot's loop).
    const closes: string[] = [];
    h.sidecar.bus.on('realtime.client', (e) => e.change === 'closed' && e.reason !== null && closes.push(`${e.client}:${e.reason}`));
    let peakQueue = 0;
    h.sidecar.bus.on('realtime.snapshot', (s) => (peakQueue = Math.max(peakQueue, s.queueBytes['slow'] ?? 0)));
    h.sidecar.bus.on('realtime.client', (e) => e.client === 'slow' && (peakQueue = Math.max(peakQueue, e.queuedBytes)));
    const slowKey = await localApprovalKey(h.base, bots[1]!);
    const rounds = tier(1, 3);
    const phaseMs = tier(4_000, 6_000);
    const without: Array<[number, number]> = [];
    const withSlow: Array<[number, number]> = [];
    const closedAfterMs: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const aFrom = performance.now();
      await new Promise((resolve) => setTimeout(resolve, phaseMs));
      without.push([aFrom, performance.now()]);
      const bFrom = performance.now();
      do {
        const closedBefore = closes.length;
        // It stops reading at once: the kernel's buffers, which grow while a socket is read, stay at their defaults.
        await TimedProbe.open(t, `${h.ws}/tryitout`, (ws) => {
          registerAll(slowKey)(ws);
          (ws as unknown as { _socket: { pause(): void } })._socket.pause();
        });
        const stoppedAt = performance.now();
        await until('the slow client closed', 60_000, () => closes.length > closedBefore, 50);
        closedAfterMs.push(Math.round(performance.now() - stoppedAt));
      } while (performance.now() - bFrom < phaseMs);
      withSlow.push([bFrom, performance.now()]);
    }
    // Every frame of the last phase has reached the readers.
    await new Promise((resolve) => setTimeout(resolve, 1_000));

    const a = without.flatMap(([from, to]) => delays(from, to));
    const b = withSlow.flatMap(([from, to]) => delays(from, to));
    const [aP50, aP99, bP50, bP99] = [percentile(a, 50), percentile(a, 99), percentile(b, 50), percentile(b, 99)];
    const figure = `others' added delay p50/p99 ${aP50.toFixed(1)}/${aP99.toFixed(1)} ms without, ${bP50.toFixed(1)}/${bP99.toFixed(1)} ms with a slow client (${a.length} and ${b.length} frames, ${rounds} turn${rounds === 1 ? '' : 's'} of each); ${closedAfterMs.length} slow client${closedAfterMs.length === 1 ? '' : 's'}, each closed ${Math.min(...closedAfterMs)}–${Math.max(...closedAfterMs)} ms after it stopped reading, its queue at most ${peakQueue} bytes (bound ${maxQueueBytes})`;
    t.diagnostic(figure);
    assert.ok(a.length > 1000 && b.length > 1000, `enough frames measured: ${a.length}, ${b.length}`);
    // Within 2x of the phases without it; a floor of 2 ms keeps a sub-millisecond p99 from failing on a scheduler tick.
    // Asserted in the long tier (npm run reliability, in CI too: one file at a time, three turns of each), where it
    // measures the endpoint. In npm test three files share two cores with their child processes, and one turn of 4 s
    // measures the host: runs here saw a p99 of 314 and 331 ms in the phase *without* the slow client, and 249 ms in the
    // one with it, each a stall of the whole test process landing in one phase or the other.
    if (tier(false, true)) assert.ok(bP99 <= Math.max(2 * aP99, aP99 + 2), figure);
    assert.ok(
      readers.every((r) => r.closeCode === undefined),
      'no reader was closed',
    );
    // Its bound, and the one frame that crossed it (20 records of ~600 bytes here).
    assert.ok(peakQueue <= maxQueueBytes + 16 * 1024, figure);
    assert.deepEqual(
      closes,
      closedAfterMs.map(() => 'slow:slow'),
    );
    recordReliability({
      kind: 'realtime',
      scenario: 'ten readers through the endpoint, and a client that stops reading its socket, back each time it is closed',
      outcome: 'each slow one closed (4008), the others undisturbed',
      figure,
    });
  },
);

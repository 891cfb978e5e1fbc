/**
 * Issue 25's acceptance: three sidecar replicas (real processes) on one real redis-server share one KIS app key's
 * real-time session. Each has clients of its own (raw WebSocket clients holding local approval keys), 50 distinct
 * registrations wanted across them. The simulator must see one session at every instant and at most 41
 * registrations; every client every frame of its registrations with no gap; the holder SIGKILLed five times (each
 * time restarted as a new replica), a new holder within 3 s and the set replayed, the other replicas' clients never
 * disconnected; then Redis killed: no second session, the holder's clients still receiving.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type WebSocket from 'ws';
import { localClient, type Client } from './gateway-harness';
import { markerCredential, recordReliability, until } from './helpers';
import { HANG_MS, kisRequest, startRealtimeSimulator } from './realtime-harness';
import { localApprovalKey } from './realtime-endpoint-harness';
import { redisAvailable, startRedis } from './redis-harness';
import { holderPid as holderPidOf, killHolder, startReplica, type ReplicaProcess, openSocket, streamGaps } from './realtime-replicas-harness';

const kis = markerCredential('kis', 'rtreplicas');
const skip = redisAvailable() ? false : 'needs redis-server';
const code = (i: number) => String(200_000 + i);

/** A raw client: its registrations' answers, and per stream the volumes it saw, in order. */
class Reader {
  readonly answers = new Map<string, string>();
  readonly volumes = new Map<string, number[]>();
  closed = false;

  private constructor(
    readonly name: string,
    private readonly ws: WebSocket,
  ) {
    ws.on('message', (data: Buffer) => this.read(data.toString('utf8')));
    ws.on('close', () => (this.closed = true));
  }

  static async open(t: TestContext, url: string, name: string): Promise<Reader> {
    const reader = new Reader(name, await openSocket(t, url));
    return reader;
  }

  register(approvalKey: string, codes: string[]): void {
    for (const c of codes) this.ws.send(kisRequest(approvalKey, 'H0STCNT0', c));
  }

  private read(text: string): void {
    if (text.startsWith('{')) {
      const message = JSON.parse(text) as { header: { tr_id: string; tr_key?: string }; body?: { msg_cd?: string } };
      // The endpoint's keep-alive, answered as python-kis does (the text sent back): a silent client is closed.
      if (message.header.tr_id === 'PINGPONG') this.ws.send(text);
      if (message.header.tr_id === 'H0STCNT0' && message.body?.msg_cd && message.header.tr_key) {
        if (!this.answers.has(message.header.tr_key) || message.body.msg_cd === 'OPSP0000') this.answers.set(message.header.tr_key, message.body.msg_cd);
      }
      return;
    }
    const [, trId, , payload] = text.split('|');
    if (trId !== 'H0STCNT0' || payload === undefined) return;
    const fields = payload.split('^');
    // One record per frame (the simulator's default): the stock code first, ACML_VOL the 14th field.
    const stream = fields[0]!;
    this.volumes.set(stream, [...(this.volumes.get(stream) ?? []), Number(fields[13])]);
  }

  get live(): string[] {
    return [...this.answers].filter(([, c]) => c === 'OPSP0000').map(([k]) => k);
  }

  /** Streams with a gap other than those allowed (the frames a failover cost, counted apart). */
  gaps(): string[] {
    return streamGaps(this.name, this.volumes);
  }
}

interface Replica extends ReplicaProcess {
  readers: Reader[];
}

test(
  'three replicas on one Redis share one session: one session and ≤ 41 registrations for 50 wanted, no gap; the holder SIGKILLed five times; Redis killed',
  { skip, timeout: 300_000 },
  async (t) => {
    const redis = await startRedis(t);
    const sim = await startRealtimeSimulator(t, [kis], {
      spacingMs: 1_000,
      approvalSpacingMs: 1_000,
      realtime: { framesPerSecond: 2, pingIntervalMs: 2_000, pingUnansweredLimit: 10 },
    });
    const clients = Array.from({ length: 6 }, (_, i) => localClient(`bot${i}`));
    const stats = () => sim.simulator.realtime.stats(kis.appKey);

    // Every replica's process, its gateway (for the clients' approval keys) and its real-time endpoint.
    const start = async (index: number): Promise<Replica> => ({
      ...(await startReplica(t, {
        index,
        redis,
        simUrl: sim.url,
        credential: kis,
        clients,
        ready: async (gateway) => (await localApprovalKey(gateway, clients[0]!).catch(() => undefined)) !== undefined,
      })),
      readers: [],
    });
    const connect = async (replica: Replica, client: Client, codes: string[]) => {
      const reader = await Reader.open(t, `${replica.ws}/tryitout`, `r${replica.index}/${client.name}`);
      reader.register(await localApprovalKey(replica.gateway, client), codes);
      replica.readers.push(reader);
      return reader;
    };
    const holderPid = () => holderPidOf(redis, kis.appKey);

    const replicas = [await start(0), await start(1), await start(2)];
    // 50 distinct codes wanted, overlapping: replica 0 wants 0–19, replica 1 10–34, replica 2 30–49 (two clients each).
    const plans: Array<[number, number, number]> = [
      [0, 0, 12],
      [0, 8, 20],
      [1, 10, 24],
      [1, 20, 35],
      [2, 30, 42],
      [2, 40, 50],
    ];
    const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => code(from + i));
    const readers = await Promise.all(plans.map(([r, from, to], i) => connect(replicas[r]!, clients[i]!, range(from, to))));
    await until('every registration answered', 2 * HANG_MS, () => readers.every((r, i) => r.answers.size === plans[i]![2] - plans[i]![1]), 200);
    const liveCodes = new Set(readers.flatMap((r) => r.live));
    const refusedCodes = new Set(readers.flatMap((r) => [...r.answers].filter(([, c]) => c === 'OPSP0008').map(([k]) => k)));
    t.diagnostic(`live ${liveCodes.size}, refused ${refusedCodes.size} (OPSP0008)`);
    assert.equal(liveCodes.size, 41, 'the union within the 41');
    assert.equal(liveCodes.size + [...refusedCodes].filter((c) => !liveCodes.has(c)).length, 50);
    for (const r of readers) for (const [k, c] of r.answers) assert.ok(c === 'OPSP0000' || c === 'OPSP0008', `${r.name} ${k}: ${c}`);
    const steady = stats();
    assert.deepEqual([steady.sessions, steady.peakConcurrentSessions], [1, 1]);
    assert.ok(steady.peakRegistrations <= 41, `${steady.peakRegistrations} registrations at the broker`);
    assert.equal(steady.refusals['OPSP0008'], undefined, 'the broker never saw the 42nd');
    assert.equal(steady.refusals['OPSP8996'], undefined, 'no second session was ever tried');

    // Every client: frames of each of its live registrations, each stream with no gap.
    await until(
      'five frames of every live registration at every client',
      2 * HANG_MS,
      () => readers.every((r) => r.live.every((c) => (r.volumes.get(c)?.length ?? 0) >= 5)),
      200,
    );
    assert.deepEqual(
      readers.flatMap((r) => r.gaps()),
      [],
    );

    // The holder SIGKILLed five times, each time restarted as a new replica with a new client of its own.
    const kills = 5;
    const takeovers: number[] = [];
    const reopened: number[] = [];
    for (let k = 0; k < kills; k++) {
      let sessionsBefore = 0;
      const { victim, newHolderMs, killedAt } = await killHolder(redis, kis.appKey, replicas, `kill ${k + 1}`, () => (sessionsBefore = stats().sessions));
      takeovers.push(newHolderMs);
      // The other replicas' clients that have registrations live (a client whose every want was refused gets no frame).
      const survivors = replicas.filter((r) => r !== victim).flatMap((r) => r.readers);
      const wantedLive = () => Math.min(41, new Set(survivors.flatMap((r) => r.live)).size);
      await until(
        () =>
          `the set replayed after kill ${k + 1}: ${JSON.stringify(stats())} ${JSON.stringify(sim.simulator.realtime.sessionList({ appKey: kis.appKey, open: true }).map((s) => s.registrations.length))} wanted ${wantedLive()}`,
        HANG_MS,
        () => {
          const open = sim.simulator.realtime.sessionList({ appKey: kis.appKey, open: true });
          return (
            stats().sessions > sessionsBefore &&
            open.length === 1 &&
            open[0]!.registrations.length >= Math.min(41, new Set(survivors.flatMap((r) => r.live)).size)
          );
        },
        20,
      );
      reopened.push(Date.now() - killedAt);
      assert.ok(
        survivors.every((r) => !r.closed),
        'no client of another replica disconnected',
      );
      const receiving = survivors.filter((r) => r.live.length > 0);
      const counts = receiving.map((r) => [...r.volumes.values()].reduce((n, v) => n + v.length, 0));
      await until(
        'frames again at every surviving client',
        HANG_MS,
        () => receiving.every((r, i) => [...r.volumes.values()].reduce((n, v) => n + v.length, 0) > counts[i]! + r.live.length),
        200,
      );
      // The replacement: a new replica, a new client on it.
      const index = replicas.indexOf(victim);
      replicas[index] = await start(3 + k);
      await connect(replicas[index], clients[index * 2]!, range(plans[index * 2]![1], plans[index * 2]![2]));
    }
    const afterKills = stats();
    t.diagnostic(`takeovers ${takeovers.join(', ')} ms; session open and replayed ${reopened.join(', ')} ms after each kill`);
    assert.equal(afterKills.peakConcurrentSessions, 1, 'never two sessions at once');
    assert.equal(afterKills.refusals['OPSP8996'], undefined, 'no second session was ever tried');
    assert.ok(afterKills.peakRegistrations <= 41);
    for (const ms of takeovers) assert.ok(ms <= 3_000, `a new holder ${ms} ms after the kill`);
    const survivorsClosed = replicas.flatMap((r) => r.readers).filter((r) => r.closed);
    assert.deepEqual(
      survivorsClosed.map((r) => r.name),
      [],
    );

    // Redis killed: the holder's clients keep receiving; no replica opens a session of its own.
    const holderPidNow = await holderPid();
    const holderReplica = replicas.find((r) => r.child.pid === holderPidNow)!;
    const sessionsBeforeOutage = stats().sessions;
    await redis.stop();
    const holderReaders = holderReplica.readers.filter((r) => r.live.length > 0);
    const before = holderReaders.map((r) => [...r.volumes.values()].reduce((n, v) => n + v.length, 0));
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    const receivedDuring = holderReaders.map((r, i) => [...r.volumes.values()].reduce((n, v) => n + v.length, 0) - before[i]!);
    t.diagnostic(`frames at the holder's clients during 6 s without Redis: ${receivedDuring.join(', ')}`);
    assert.ok(
      receivedDuring.every((n) => n > 0),
      'the holder’s clients kept receiving',
    );
    const duringOutage = stats();
    assert.equal(duringOutage.sessions, sessionsBeforeOutage, 'no new session while Redis was down');
    assert.equal(duringOutage.peakConcurrentSessions, 1);
    await redis.start();
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const afterOutage = stats();
    assert.equal(afterOutage.peakConcurrentSessions, 1, 'never two sessions, Redis back');
    assert.equal(afterOutage.refusals['OPSP8996'], undefined);
    assert.ok(
      replicas.flatMap((r) => r.readers).every((r) => !r.closed),
      'no client disconnected by the outage',
    );

    recordReliability({
      kind: 'realtime',
      scenario: 'three sidecar replicas (processes) on one Redis, six clients, 50 distinct registrations wanted',
      outcome: `one session and ${steady.peakRegistrations} registrations at the broker, ${refusedCodes.size} refused by the holder (OPSP0008); no gap at any client`,
      figure: `${liveCodes.size} live`,
    });
    recordReliability({
      kind: 'realtime',
      scenario: `the holder replica SIGKILLed ${kills} times (restarted each time)`,
      outcome: 'at most one session at the broker at every instant, no OPSP8996; the set replayed; no client of another replica disconnected',
      figure: `new holder in ${Math.max(...takeovers)} ms at most (${takeovers.join(', ')}); session replayed within ${Math.max(...reopened)} ms`,
    });
    recordReliability({
      kind: 'realtime',
      scenario: 'Redis killed for 6 s under three replicas, then restarted empty',
      outcome: 'no second session ever; the holder’s clients kept receiving; no client disconnected',
      figure: `${Math.min(...receivedDuring)} frames at least per holder client during the outage`,
    });
  },
);

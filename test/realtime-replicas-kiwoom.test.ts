/**
 * Issue 25 for Kiwoom: three sidecar replicas (real processes) on one real redis-server, each with clients of its
 * own logged in on one Kiwoom app key. A second LOGIN on a Kiwoom key knocks the first session off (R10001), so the
 * simulator must see exactly one session and no replacement ever; every client every REAL push of its items with
 * no gap; the holder SIGKILLed twice, a new holder opens the session with the union replayed, the other replicas'
 * clients never disconnected.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type WebSocket from 'ws';
import { localClient, type Client } from './gateway-harness';
import { markerCredential, until } from './helpers';
import { HANG_MS, startRealtimeSimulator } from './realtime-harness';
import { localKiwoomToken } from './realtime-endpoint-harness';
import { killHolder, startReplica, type ReplicaProcess, openSocket, streamGaps } from './realtime-replicas-harness';
import { redisAvailable, startRedis } from './redis-harness';

const kiwoom = markerCredential('kiwoom', 'rtrepkw');
const skip = redisAvailable() ? false : 'needs redis-server';
const item = (i: number) => String(300_000 + i);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => item(from + i));

/** A raw Kiwoom client: its REG answers, and per item the trade volumes (FID 13) it saw, in order. */
class KiwoomReader {
  readonly regAnswers: number[] = [];
  loginAnswer: number | undefined;
  readonly volumes = new Map<string, number[]>();
  closed = false;

  private constructor(
    readonly name: string,
    private readonly ws: WebSocket,
  ) {
    ws.on('message', (data: Buffer) => this.read(data.toString('utf8')));
    ws.on('close', () => (this.closed = true));
  }

  static async open(t: TestContext, url: string, name: string, token: string): Promise<KiwoomReader> {
    const ws = await openSocket(t, url);
    const reader = new KiwoomReader(name, ws);
    ws.send(JSON.stringify({ trnm: 'LOGIN', token }));
    // A REG before the LOGIN's answer would be refused (the endpoint checks the local token first).
    await until(`${name}'s LOGIN answered`, HANG_MS, () => reader.loginAnswer !== undefined, 50);
    assert.equal(reader.loginAnswer, 0);
    return reader;
  }

  register(items: string[]): void {
    this.ws.send(JSON.stringify({ trnm: 'REG', grp_no: '1', refresh: '1', data: [{ item: items, type: ['0B'] }] }));
  }

  private read(text: string): void {
    const message = JSON.parse(text) as { trnm: string; return_code?: number; data?: Array<{ item: string; values: Record<string, string> }> };
    // The endpoint's keep-alive, echoed as Kiwoom's clients do: a silent client is closed.
    if (message.trnm === 'PING') this.ws.send(text);
    if (message.trnm === 'LOGIN') this.loginAnswer = message.return_code ?? -1;
    if (message.trnm === 'REG') this.regAnswers.push(message.return_code ?? -1);
    if (message.trnm !== 'REAL') return;
    for (const entry of message.data ?? []) {
      const volume = Number((entry.values['13'] ?? '').replace(/^[+-]/, ''));
      this.volumes.set(entry.item, [...(this.volumes.get(entry.item) ?? []), volume]);
    }
  }

  frames(): number {
    return [...this.volumes.values()].reduce((n, v) => n + v.length, 0);
  }

  gaps(): string[] {
    return streamGaps(this.name, this.volumes);
  }
}

interface Replica extends ReplicaProcess {
  readers: KiwoomReader[];
}

test(
  'three replicas on one Redis share one Kiwoom session: one LOGIN at the broker, never an R10001, every client its pushes; the holder SIGKILLed twice',
  { skip, timeout: 240_000 },
  async (t) => {
    const redis = await startRedis(t);
    const sim = await startRealtimeSimulator(t, [kiwoom], {
      spacingMs: 1_000,
      realtime: { framesPerSecond: 2, pingIntervalMs: 2_000, pingUnansweredLimit: 10 },
    });
    const clients = Array.from({ length: 3 }, (_, i) => localClient(`bot${i}`));
    const stats = () => sim.simulator.realtime.stats(kiwoom.appKey);
    const open = () => sim.simulator.realtime.sessionList({ appKey: kiwoom.appKey, open: true });
    // Overlapping wants, 20 distinct items: replica 0 wants 0–9, replica 1 5–14, replica 2 10–19.
    const plans: Array<[number, number]> = [
      [0, 10],
      [5, 15],
      [10, 20],
    ];

    const start = async (index: number): Promise<Replica> => ({
      ...(await startReplica(t, {
        index,
        redis,
        simUrl: sim.url,
        credential: kiwoom,
        clients,
        ready: async (gateway) => (await localKiwoomToken(gateway, clients[0]!).catch(() => undefined)) !== undefined,
      })),
      readers: [],
    });
    const connect = async (replica: Replica, slot: number) => {
      const client: Client = clients[slot]!;
      const token = await localKiwoomToken(replica.gateway, client);
      const reader = await KiwoomReader.open(t, `${replica.ws}/api/dostk/websocket`, `r${replica.index}/${client.name}`, token);
      reader.register(range(...plans[slot]!));
      replica.readers.push(reader);
      return reader;
    };

    const replicas = [await start(0), await start(1), await start(2)];
    const readers = await Promise.all(replicas.map((r, i) => connect(r, i)));
    await until('every REG answered', 2 * HANG_MS, () => readers.every((r) => r.regAnswers.length > 0), 200);
    assert.deepEqual(
      readers.map((r) => r.regAnswers),
      [[0], [0], [0]],
    );
    const steady = stats();
    assert.equal(steady.peakConcurrentSessions, 1, 'one session at the broker');
    assert.equal(steady.closes.replaced ?? 0, 0, 'no LOGIN ever replaced another (R10001)');
    assert.equal(open().length, 1);
    assert.equal(new Set(open()[0]!.registrations.map((r) => r.key)).size, 20, 'the union registered once');

    const allItems = (r: KiwoomReader, slot: number) => range(...plans[slot]!).every((i) => (r.volumes.get(i)?.length ?? 0) >= 3);
    await until('three pushes of every item at every client', 2 * HANG_MS, () => readers.every((r, i) => allItems(r, i)), 200);
    assert.deepEqual(
      readers.flatMap((r) => r.gaps()),
      [],
    );

    // The holder SIGKILLed twice, each time restarted as a new replica with its client again.
    const takeovers: number[] = [];
    for (let k = 0; k < 2; k++) {
      let sessionsBefore = 0;
      const { victim, newHolderMs } = await killHolder(redis, kiwoom.appKey, replicas, `kill ${k + 1}`, () => (sessionsBefore = stats().sessions));
      takeovers.push(newHolderMs);
      const survivors = replicas.filter((r) => r !== victim).flatMap((r) => r.readers);
      const wanted = new Set(replicas.filter((r) => r !== victim).flatMap((r) => r.readers.flatMap((x) => [...x.volumes.keys()])));
      await until(
        () => `the union replayed after kill ${k + 1}: ${JSON.stringify(stats())}`,
        HANG_MS,
        () => stats().sessions > sessionsBefore && open().length === 1 && open()[0]!.registrations.filter((r) => wanted.has(r.key)).length >= wanted.size,
        50,
      );
      assert.ok(
        survivors.every((r) => !r.closed),
        'no client of another replica disconnected',
      );
      const counts = survivors.map((r) => r.frames());
      await until('pushes again at every surviving client', HANG_MS, () => survivors.every((r, i) => r.frames() > counts[i]! + 10), 200);
      const index = replicas.indexOf(victim);
      replicas[index] = await start(3 + k);
      await connect(replicas[index], index);
    }
    const after = stats();
    t.diagnostic(`new holder ${takeovers.join(', ')} ms after each kill; ${after.sessions} sessions in all`);
    assert.equal(after.peakConcurrentSessions, 1, 'never two sessions at once');
    assert.equal(after.closes.replaced ?? 0, 0, 'no R10001 ever');
    assert.deepEqual(
      replicas
        .flatMap((r) => r.readers)
        .filter((r) => r.closed)
        .map((r) => r.name),
      [],
    );
  },
);

/**
 * The real-time endpoint at the protocol level, against the simulator with raw clients (and, where a client's own
 * reaction is the point, the replicas): local credentials, a registration shared and counted, answers only after
 * the broker confirmed, fill notices only where configured, PINGPONG answered, and the upstream session kept
 * within the pacing rule whatever happens to it (refused, killed, stalled, replaced). Every wait is for an event;
 * times are asserted only as "no sooner than the rule" or against the clock of the run itself.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLOSE_CODES } from '../src/realtime/client';
import { WebSocketServer } from 'ws';
import { localClient } from './gateway-harness';
import { fakeSlack, markerCredential, parseExposition, sampleValue, tempDir, until } from './helpers';
import { approvalKey, HANG_MS, kisRequest, realtimeReplicaPython, ReplicaProcess, splitFrame, WsProbe } from './realtime-harness';
import { localApprovalKey, localKiwoomToken, realtimeEndpoint } from './realtime-endpoint-harness';
import { writeKisDevlp } from './replicas';

const kis = markerCredential('kis', 'rtep');
const kiwoom = markerCredential('kiwoom', 'rtepk');
const isControl = (m: any): boolean => m.body !== undefined;
const isData = (m: string): boolean => m.startsWith('0|') || m.startsWith('1|');
const codeOf = (m: any): string => m.body.msg_cd;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A TCP hop between the sidecar and the simulator's WebSocket, to do to the upstream what a network does: pass,
 * refuse new connections, or swallow everything in both directions (a stall, with no close ever seen).
 */
class Hop {
  mode: 'pass' | 'refuse' | 'swallow' = 'pass';
  readonly connectTimes: number[] = [];
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server) {}

  get connects(): number {
    return this.connectTimes.length;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  static async start(t: TestContext, targetPort: number): Promise<Hop> {
    const server = createServer();
    const hop = new Hop(server);
    server.on('connection', (client) => hop.relay(client, targetPort));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      for (const socket of hop.sockets) socket.destroy();
      server.close();
    });
    return hop;
  }

  private relay(client: Socket, targetPort: number): void {
    this.connectTimes.push(Date.now());
    if (this.mode === 'refuse') return void client.destroy();
    const upstream = connect(targetPort, '127.0.0.1');
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.sockets.add(from);
      from.on('data', (chunk) => this.mode === 'pass' && to.write(chunk));
      from.on('error', () => to.destroy());
      from.on('close', () => {
        this.sockets.delete(from);
        to.destroy();
      });
    }
  }
}

describe('KIS through the endpoint', () => {
  test('Approval gives a client its own approval key, never the real one; the endpoint takes it, the broker does not', async (t) => {
    const [bot, other] = [localClient('bot'), localClient('other')];
    const h = await realtimeEndpoint(t, kis, [bot, other]);
    const key = await localApprovalKey(h.base, bot);
    assert.match(key, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'shaped as the broker’s');
    assert.equal(await localApprovalKey(h.base, bot), key, 'stable for the client');
    assert.notEqual(await localApprovalKey(h.base, other), key, 'its own for each client');
    const real = h.sidecar.account('main')!.snapshot().state.approvalKey?.key;
    assert.ok(real && real !== key, 'the sidecar holds the real one');
    assert.ok(!h.logs.text().includes(real) && !h.logs.text().includes(key), 'neither key in the log');

    // At the broker a local key is nobody's.
    const direct = await WsProbe.open(t, `${h.sim.wsUrl}/tryitout`);
    direct.send(kisRequest(key, 'H0STCNT0', '005930'));
    assert.equal(codeOf(await direct.nextJson('the broker’s answer', isControl)), 'OPSP0011');

    const ws = await WsProbe.open(t, `${h.ws}/tryitout`);
    ws.send(kisRequest(key, 'H0STCNT0', '005930'));
    assert.equal(codeOf(await ws.nextJson('OPSP0000', isControl)), 'OPSP0000');
  });

  test('a refused client gets the broker’s OPSP0011 and keeps its socket: the official KISWebSocket, holding a key the sidecar did not give, does not loop', async (t) => {
    const python = realtimeReplicaPython();
    const bot = localClient('bot');
    const h = await realtimeEndpoint(t, kis, [bot]);
    const refusals: string[] = [];
    h.sidecar.bus.on('realtime.refused', (e) => refusals.push(`${e.reason}:${e.code}`));

    const ws = await WsProbe.open(t, `${h.ws}/tryitout`);
    ws.send(kisRequest('d1f2e3a4-0000-4000-8000-123456789abc', 'H0STCNT0', '005930'));
    const answer = await ws.nextJson('OPSP0011', isControl);
    assert.deepEqual([answer.header.tr_id, answer.header.tr_key, codeOf(answer), answer.body.rt_cd], ['H0STCNT0', '005930', 'OPSP0011', '1']);
    assert.match(answer.body.msg1, /^invalid approval : NOT FOUND \(broker-token-sidecar: /);
    assert.deepEqual(refusals, ['unauthenticated:OPSP0011']);

    if (python === undefined) return t.diagnostic('the replica part needs python3 with websockets, Cryptodome and yaml');
    // kis_devlp.yaml's prod is the broker itself: auth_ws() gets a real approval key, which the endpoint refuses.
    const home = tempDir(t, 'bts-rtep-');
    writeKisDevlp(home, kis, h.sim.url, h.ws);
    const official = ReplicaProcess.start(t, python, 'kis_ws_bot.py', ['--price', '005930', '000660'], { HOME: home, TZ: 'Asia/Seoul' });
    await official.waitFor('control', 2, (e) => e.msgCd === 'OPSP0011');
    await sleep(3_000);
    assert.equal(official.of('connect').length, 1, 'connected once, still waiting on its socket');
    assert.equal(official.of('closed').length, 0);
    assert.equal(h.simulator.realtime.stats(kis.appKey).sessions, 0, 'nothing reached the broker');
  });

  test('one registration shared: the broker sees one, the second client is answered at once with the key and iv, the broker is told only when the last leaves', async (t) => {
    const bot = localClient('bot');
    const h = await realtimeEndpoint(t, kis, [bot], { simulator: { realtime: { framesPerSecond: 10 } } });
    const key = await localApprovalKey(h.base, bot);
    const [a, b] = [await WsProbe.open(t, `${h.ws}/tryitout`), await WsProbe.open(t, `${h.ws}/tryitout/H0STCNT0`)];
    a.send(kisRequest(key, 'H0STCNT0', '005930'));
    const first = await a.nextJson('OPSP0000', isControl);
    b.send(kisRequest(key, 'H0STCNT0', '005930'));
    const second = await b.nextJson('OPSP0000 at once', isControl);
    assert.equal(codeOf(second), 'OPSP0000');
    assert.deepEqual(second.body.output, first.body.output, 'the session’s key and iv');
    b.send(kisRequest(key, 'H0STCNT0', '005930'));
    assert.equal(codeOf(await b.nextJson('OPSP0002', isControl)), 'OPSP0002', 'already subscribed, as the broker says');
    await b.next('a frame', isData);
    assert.equal(h.simulator.realtime.stats(kis.appKey).registrations, 1);

    // Byte for byte: the frame a direct session of another key gets for the same record is the same text.
    a.send(kisRequest(key, 'H0STCNT0', '005930', '2'));
    assert.equal(codeOf(await a.nextJson('OPSP0001', isControl)), 'OPSP0001');
    const after = h.simulator.realtime.stats(kis.appKey);
    assert.equal(after.unregistrations, 0, 'the other client still wants it');
    const seen = b.messages.length;
    await until('frames go on for the other', HANG_MS, () => b.messages.slice(seen).filter(isData).length >= 3);
    a.send(kisRequest(key, 'H0STCNT0', '005930', '2'));
    assert.equal(codeOf(await a.nextJson('OPSP0003', isControl)), 'OPSP0003', 'not subscribed any more');
    b.send(kisRequest(key, 'H0STCNT0', '005930', '2'));
    await b.nextJson('OPSP0001', (m) => m.body?.msg_cd === 'OPSP0001');
    await until('the broker told', HANG_MS, () => h.simulator.realtime.stats(kis.appKey).unregistrations === 1);
  });

  test('frames pass byte for byte: the text a direct session of another key receives for the same record', async (t) => {
    const direct = markerCredential('kis', 'rtepd');
    const bot = localClient('bot');
    const h = await realtimeEndpoint(t, kis, [bot], {
      otherCredentials: [direct],
      simulator: { approvalSpacingMs: 0, realtime: { framesPerSecond: 10, recordsPerFrame: 2 } },
    });
    const reference = await WsProbe.open(t, `${h.sim.wsUrl}/tryitout`);
    reference.send(kisRequest(await approvalKey(h.sim.url, direct), 'H0STASP0', '005930'));
    const ws = await WsProbe.open(t, `${h.ws}/tryitout`);
    ws.send(kisRequest(await localApprovalKey(h.base, bot), 'H0STASP0', '005930'));
    await until('frames at both', HANG_MS, () => ws.messages.filter(isData).length >= 5 && reference.messages.filter(isData).length >= 5);
    const theirs = new Set(reference.messages.filter(isData));
    const ours = ws.messages.filter(isData);
    assert.ok(ours.filter((m) => theirs.has(m)).length >= 3, 'the same frames, to the byte');
    assert.ok(ours.every((m) => splitFrame(m).count === 2));
  });

  test('the 42nd distinct registration is answered OPSP0008 here and never sent; an unregistration frees a place', async (t) => {
    const bot = localClient('bot');
    const h = await realtimeEndpoint(t, kis, [bot], { realtime: 'fills: { bot: [trader01] }' });
    const key = await localApprovalKey(h.base, bot);
    const ws = await WsProbe.open(t, `${h.ws}/tryitout`);
    const code = (i: number) => String(100_000 + i);
    for (let i = 0; i < 20; i++) ws.send(kisRequest(key, 'H0STCNT0', code(i)));
    for (let i = 0; i < 20; i++) ws.send(kisRequest(key, 'H0STASP0', code(i)));
    ws.send(kisRequest(key, 'H0STCNI0', 'trader01'));
    ws.send(kisRequest(key, 'H0STASP0', code(20)));
    const refused = await ws.nextJson('OPSP0008', (m) => m.body?.msg_cd === 'OPSP0008');
    assert.deepEqual([refused.header.tr_id, refused.header.tr_key, refused.body.rt_cd], ['H0STASP0', code(20), '1']);
    assert.match(refused.body.msg1, /^MAX SUBSCRIBE OVER \(broker-token-sidecar: the session's 41 registrations are in use\)$/);
    await until('41 confirmed', HANG_MS, () => ws.messages.filter((m) => m.includes('"OPSP0000"')).length === 41);
    assert.deepEqual([h.simulator.realtime.stats(kis.appKey).peakRegistrations, h.simulator.realtime.stats().refusals['OPSP0008']], [41, undefined]);

    ws.send(kisRequest(key, 'H0STCNT0', code(0), '2'));
    await until('the broker told', HANG_MS, () => h.simulator.realtime.stats(kis.appKey).unregistrations === 1);
    ws.send(kisRequest(key, 'H0STASP0', code(20)));
    await ws.nextJson('the place taken', (m) => m.body?.msg_cd === 'OPSP0000' && m.header.tr_key === code(20));
  });

  test('fill notices only for the HTS ids a client is given: the key and iv to it, OPSP8992 to another', async (t) => {
    const [reader, other] = [localClient('reader'), localClient('other')];
    const h = await realtimeEndpoint(t, kis, [reader, other], { realtime: 'fills: { reader: [trader01] }' });
    const ws = await WsProbe.open(t, `${h.ws}/tryitout`);
    ws.send(kisRequest(await localApprovalKey(h.base, other), 'H0STCNI0', 'trader01'));
    const no = await ws.nextJson('the refusal', isControl);
    assert.deepEqual([codeOf(no), no.header.encrypt], ['OPSP8992', 'Y']);
    const ok = await WsProbe.open(t, `${h.ws}/tryitout`);
    ok.send(kisRequest(await localApprovalKey(h.base, reader), 'H0STCNI0', 'trader01'));
    const yes = await ok.nextJson('OPSP0000', isControl);
    assert.deepEqual([codeOf(yes), yes.header.encrypt], ['OPSP0000', 'Y']);
    assert.match(yes.body.output.key, /^[a-z]{32}$/);
    assert.equal(h.simulator.realtime.fill('trader01'), 1);
    assert.equal(splitFrame(await ok.next('the notice', isData)).trId, 'H0STCNI0');
    await sleep(200);
    assert.equal(ws.messages.filter(isData).length, 0, 'nothing to the other');
  });

  /** The endpoint's upstream through a Hop the test controls. */
  async function throughHop(t: TestContext, bot: ReturnType<typeof localClient>, realtime = '') {
    const hopRef: { hop?: Hop } = {};
    const h = await realtimeEndpoint(t, kis, [bot], {
      simulator: { realtime: { framesPerSecond: 10 } },
      realtime,
      beforeStart: async (sim) => {
        hopRef.hop = await Hop.start(t, Number(new URL(sim.url).port));
        return `websocketUrl: ws://127.0.0.1:${hopRef.hop.port}`;
      },
    });
    return { ...h, hop: hopRef.hop! };
  }

  test('the upstream refused: a register is answered only once the broker confirmed it, and reconnects keep the pacing rule', async (t) => {
    const bot = localClient('bot');
    const h = await throughHop(t, bot);
    const key = await localApprovalKey(h.base, bot);
    h.hop.mode = 'refuse';
    const ws = await WsProbe.open(t, `${h.ws}/tryitout`);
    ws.send(kisRequest(key, 'H0STCNT0', '005930'));
    const refusedFrom = Date.now();
    await until('three refused connects', HANG_MS, () => h.hop.connects >= 3);
    assert.equal(ws.messages.length, 0, 'no answer while the broker has not confirmed');
    const times = h.hop.connectTimes;
    const gaps = times.slice(1).map((at, i) => at - times[i]!);
    t.diagnostic(`connects refused at +${times.map((at) => at - refusedFrom).join(', +')} ms`);
    assert.ok(
      gaps.every((gap) => gap >= 950),
      `never within a second: ${gaps.join(', ')} ms`,
    );
    assert.ok(gaps[1]! > gaps[0]!, `the backoff grows: ${gaps.join(', ')} ms`);
    h.hop.mode = 'pass';
    assert.equal(codeOf(await ws.nextJson('OPSP0000 once the broker confirmed', isControl)), 'OPSP0000');
    await ws.next('frames', isData);
  });

  test('a stalled session (nothing comes, no close either) is replaced after the stall timeout; the clients keep their sockets', async (t) => {
    const bot = localClient('bot');
    const h = await throughHop(t, bot, 'stallTimeout: 3s');
    const ws = await WsProbe.open(t, `${h.ws}/tryitout`);
    ws.send(kisRequest(await localApprovalKey(h.base, bot), 'H0STCNT0', '005930'));
    await ws.next('frames', isData);
    const ends: string[] = [];
    h.sidecar.bus.on('realtime.session', (e) => e.reason && ends.push(e.reason));
    h.hop.mode = 'swallow';
    const stalledAt = Date.now();
    await until('the stall seen', HANG_MS, () => ends.includes('stalled'));
    const seenAfter = Date.now() - stalledAt;
    assert.ok(seenAfter >= 2_900, `not before the stall timeout: ${seenAfter} ms`);
    h.hop.mode = 'pass';
    await until('a new session', HANG_MS, () => h.simulator.realtime.stats(kis.appKey).sessions === 2);
    const count = ws.messages.length;
    await until('frames again on the same client socket', HANG_MS, () => ws.messages.slice(count).filter(isData).length >= 3);
    assert.equal(ws.closeCode, undefined);
  });

  test('another program holds the key (OPSP8996): the endpoint waits its turn at a growing interval, then takes the key when it is free', async (t) => {
    const bot = localClient('bot');
    const h = await realtimeEndpoint(t, kis, [bot], { simulator: { approvalSpacingMs: 0 } });
    const holder = await WsProbe.open(t, `${h.sim.wsUrl}/tryitout`);
    holder.send(kisRequest(await approvalKey(h.sim.url, kis), 'H0STCNT0', '000660'));
    await holder.nextJson('the holder subscribed', isControl);
    const ws = await WsProbe.open(t, `${h.ws}/tryitout`);
    ws.send(kisRequest(await localApprovalKey(h.base, bot), 'H0STCNT0', '005930'));
    await until('three refusals', HANG_MS, () => (h.simulator.realtime.stats(kis.appKey).refusals['OPSP8996'] ?? 0) >= 3);
    const stats = h.simulator.realtime.stats(kis.appKey);
    assert.equal(stats.rapidReconnects, 0, 'never within a second of the last close');
    const refused = h.simulator.realtime.sessionList({ appKey: kis.appKey }).filter((s) => s.closedBy === 'refused');
    const gaps = refused.slice(1).map((s, i) => s.openedAt - refused[i]!.closedAt!);
    assert.ok(gaps[1]! > gaps[0]!, `the wait grows: ${gaps.join(', ')} ms`);
    assert.equal(ws.messages.length, 0);
    holder.close();
    assert.equal(codeOf(await ws.nextJson('OPSP0000 once the key is free', isControl)), 'OPSP0000');
    assert.equal(h.simulator.realtime.stats(kis.appKey).peakConcurrentSessions, 1);
  });

  test('the session opens with the first registration and closes idleClose after the last leaves; with keepOpen it opens at start and stays', async (t) => {
    const bot = localClient('bot');
    const h = await realtimeEndpoint(t, kis, [bot], { realtime: 'idleClose: 1s' });
    await sleep(300);
    assert.equal(h.simulator.realtime.stats().connects, 0, 'nothing registered, no connection');
    const ws = await WsProbe.open(t, `${h.ws}/tryitout`);
    const key = await localApprovalKey(h.base, bot);
    ws.send(kisRequest(key, 'H0STCNT0', '005930'));
    await ws.nextJson('OPSP0000', isControl);
    ws.send(kisRequest(key, 'H0STCNT0', '005930', '2'));
    await ws.nextJson('OPSP0001', isControl);
    const leftAt = Date.now();
    await until('the session closed', HANG_MS, () => h.simulator.realtime.sessionList({ appKey: kis.appKey, open: false }).length === 1);
    assert.ok(Date.now() - leftAt >= 900, 'not before idleClose');
    assert.equal(ws.closeCode, undefined, 'the client stays connected');

    const kept = await realtimeEndpoint(t, markerCredential('kis', 'rtkeep'), [bot], { realtime: 'keepOpen: true' });
    await until('a connection at start', HANG_MS, () => kept.simulator.realtime.stats().connects === 1);
  });

  test('PINGPONG from the broker is answered: a session pinged every 300 ms, dropped after two unanswered, lives on', async (t) => {
    const bot = localClient('bot');
    const h = await realtimeEndpoint(t, kis, [bot], { simulator: { realtime: { framesPerSecond: 0, pingIntervalMs: 300, pingUnansweredLimit: 2 } } });
    const ws = await WsProbe.open(t, `${h.ws}/tryitout`);
    ws.send(kisRequest(await localApprovalKey(h.base, bot), 'H0STCNT0', '005930'));
    await ws.nextJson('OPSP0000', isControl);
    await until('ten pings answered', HANG_MS, () => h.simulator.realtime.stats(kis.appKey).pingsAnswered >= 10);
    const stats = h.simulator.realtime.stats(kis.appKey);
    assert.deepEqual([stats.sessions, stats.closes.pingpong], [1, 0]);
    assert.ok(
      ws.messages.every((m) => !m.includes('PINGPONG')),
      'the broker’s keep-alive is the endpoint’s to answer; clients get the endpoint’s own, on its own clock',
    );
  });

  test('routing: a bare /tryitout takes its account from the approval key; a path naming another account, or an unknown one, is refused', async (t) => {
    const bot = localClient('bot');
    const h = await realtimeEndpoint(t, kis, [bot]);
    const key = await localApprovalKey(h.base, bot);
    const bare = await WsProbe.open(t, `${h.endpoint.url}/tryitout`);
    bare.send(kisRequest(key, 'H0STCNT0', '005930'));
    assert.equal(codeOf(await bare.nextJson('OPSP0000', isControl)), 'OPSP0000');
    await assert.rejects(WsProbe.open(t, `${h.endpoint.url}/nobody/tryitout`), /404/);
    await assert.rejects(WsProbe.open(t, `${h.endpoint.url}/main/api/dostk/websocket`), /404/, 'main is a KIS account');
    const response = await fetch(`${h.endpoint.url.replace('ws:', 'http:')}/main/tryitout`);
    assert.equal(response.status, 426);
    const ws = await WsProbe.open(t, `${h.ws}/tryitout`);
    ws.send('{not json');
    assert.equal(codeOf(await ws.nextJson('OPSP9999', isControl)), 'OPSP9999');
  });

  test('connections: a newcomer takes the place of one that never authenticated; when every place serves a client it is refused before the upgrade', async (t) => {
    const bot = localClient('bot');
    const h = await realtimeEndpoint(t, kis, [bot], { realtime: 'maxClients: 3' });
    const key = await localApprovalKey(h.base, bot);
    const silent = await WsProbe.open(t, `${h.ws}/tryitout`);
    const clients = [await WsProbe.open(t, `${h.ws}/tryitout`), await WsProbe.open(t, `${h.ws}/tryitout`)];
    for (const c of clients) c.send(kisRequest(key, 'H0STCNT0', '005930'));
    for (const c of clients) await c.nextJson('subscribed', isControl);
    await sleep(1_100);
    const newcomer = await WsProbe.open(t, `${h.ws}/tryitout`);
    assert.equal(await silent.closed('the silent one'), CLOSE_CODES.evicted);
    newcomer.send(kisRequest(key, 'H0STCNT0', '005930'));
    await newcomer.nextJson('subscribed', isControl);
    await assert.rejects(WsProbe.open(t, `${h.ws}/tryitout`), /503/);
    assert.ok(clients.every((c) => c.closeCode === undefined));
  });
});

describe('Kiwoom through the endpoint', () => {
  test('LOGIN with the local token; groups are the client’s own: a refresh "0" drops only its own registrations, upstream always refresh "1" in the sidecar’s group', async (t) => {
    const [a, b] = [localClient('a'), localClient('b')];
    const h = await realtimeEndpoint(t, kiwoom, [a, b], { simulator: { realtime: { framesPerSecond: 10 } } });
    const url = `${h.ws}/api/dostk/websocket`;
    const wa = await WsProbe.open(t, url);
    wa.send(JSON.stringify({ trnm: 'REG', grp_no: '1', refresh: '1', data: [{ item: ['005930'], type: ['0B'] }] }));
    assert.equal((await wa.nextJson('8005 before LOGIN')).return_code, 3);
    wa.send(JSON.stringify({ trnm: 'LOGIN', token: 'not-a-token' }));
    assert.match((await wa.nextJson('8005')).return_msg, /8005/);
    wa.send(JSON.stringify({ trnm: 'LOGIN', token: await localKiwoomToken(h.base, a) }));
    assert.equal((await wa.nextJson('LOGIN ok')).return_code, 0);
    wa.send(JSON.stringify({ trnm: 'REG', grp_no: '1', refresh: '1', data: [{ item: ['005930'], type: ['0B'] }] }));
    assert.deepEqual(await wa.nextJson('REG ok', (m) => m.trnm === 'REG'), { trnm: 'REG', return_code: 0, return_msg: '' });

    const wb = await WsProbe.open(t, url);
    wb.send(JSON.stringify({ trnm: 'LOGIN', token: await localKiwoomToken(h.base, b) }));
    await wb.nextJson('LOGIN ok');
    wb.send(JSON.stringify({ trnm: 'REG', grp_no: '7', refresh: '1', data: [{ item: ['005930', '000660'], type: ['0B'] }] }));
    await wb.nextJson('REG ok', (m) => m.trnm === 'REG');
    await wb.nextJson('a REAL', (m) => m.trnm === 'REAL');
    wb.send(JSON.stringify({ trnm: 'REG', grp_no: '1', refresh: '0', data: [{ item: ['035720'], type: ['0B'] }] }));
    await wb.nextJson('REG ok', (m) => m.trnm === 'REG');
    await until('000660 removed upstream', HANG_MS, () => {
      const regs = h.simulator.realtime.sessionList({ appKey: kiwoom.appKey, open: true })[0]?.registrations ?? [];
      return regs.length === 2 && !regs.some((r) => r.key === '000660');
    });
    const upstream = h.simulator.realtime.sessionList({ appKey: kiwoom.appKey, open: true })[0]!.registrations;
    assert.deepEqual(new Set(upstream.map((r) => `${r.group}:${r.key}`)), new Set(['1:005930', '1:035720']));
    const seen = wa.messages.length;
    await until('a keeps its 005930', HANG_MS, () => wa.messages.slice(seen).filter((m) => m.includes('"REAL"') && m.includes('005930')).length >= 3);
    const afterRefresh = wb.messages.length;
    await until('b gets only 035720 now', HANG_MS, () => wb.messages.slice(afterRefresh).filter((m) => m.includes('"REAL"')).length >= 3);
    assert.ok(wb.messages.slice(afterRefresh + 2).every((m) => !m.includes('"REAL"') || m.includes('035720')));
    assert.equal(h.simulator.realtime.stats(kiwoom.appKey).sessions, 1);
  });

  test('another login takes the key (R10001): the sidecar waits afterReplaced before taking it back, one replacement each way, never a war', async (t) => {
    const a = localClient('a');
    const h = await realtimeEndpoint(t, kiwoom, [a], { simulator: { realtime: { framesPerSecond: 10 } }, realtime: 'afterReplaced: 3s' });
    const ws = await WsProbe.open(t, `${h.ws}/api/dostk/websocket`);
    ws.send(JSON.stringify({ trnm: 'LOGIN', token: await localKiwoomToken(h.base, a) }));
    await ws.nextJson('LOGIN');
    ws.send(JSON.stringify({ trnm: 'REG', grp_no: '1', refresh: '1', data: [{ item: ['005930'], type: ['0B'] }] }));
    await ws.nextJson('REG ok', (m) => m.trnm === 'REG');
    const intruder = await WsProbe.open(t, `${h.sim.wsUrl}/api/dostk/websocket`);
    // Another program logging in with the key: here, with the sidecar's own token (read from its file, say).
    intruder.send(JSON.stringify({ trnm: 'LOGIN', token: h.sidecar.account('main')!.gatewayToken()!.accessToken }));
    const replacedAt = Date.now();
    await intruder.nextJson('the intruder in');
    assert.equal(await intruder.closed('the intruder, replaced in turn'), 1000);
    const waited = Date.now() - replacedAt;
    assert.ok(waited >= 2_900, `the sidecar waited ${waited} ms`);
    const count = ws.messages.length;
    await until('frames again for the client, on its own socket', HANG_MS, () => ws.messages.slice(count).filter((m) => m.includes('"REAL"')).length >= 3);
    assert.equal(h.simulator.realtime.stats(kiwoom.appKey).closes.replaced, 2);
    assert.equal(ws.closeCode, undefined);
  });

  test('a renewed token is presented on the open session: LOGIN again, no new connection', async (t) => {
    // A stand-in for Kiwoom's socket that notes every LOGIN on each connection and accepts any token.
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    t.after(() => server.close());
    const logins: string[][] = [];
    server.on('connection', (socket) => {
      const mine: string[] = [];
      logins.push(mine);
      socket.on('message', (data: Buffer) => {
        const message = JSON.parse(data.toString()) as { trnm: string; token?: string };
        if (message.trnm === 'LOGIN') {
          mine.push(message.token!);
          socket.send(JSON.stringify({ trnm: 'LOGIN', return_code: 0, sor_yn: 'Y' }));
        } else if (message.trnm === 'REG') socket.send(JSON.stringify({ trnm: 'REG', return_code: 0, return_msg: '' }));
      });
    });
    await new Promise((resolve) => server.once('listening', resolve));
    const a = localClient('a');
    const h = await realtimeEndpoint(t, kiwoom, [a], { account: `websocketUrl: ws://127.0.0.1:${(server.address() as AddressInfo).port}` });
    const ws = await WsProbe.open(t, `${h.ws}/api/dostk/websocket`);
    ws.send(JSON.stringify({ trnm: 'LOGIN', token: await localKiwoomToken(h.base, a) }));
    await ws.nextJson('LOGIN');
    ws.send(JSON.stringify({ trnm: 'REG', grp_no: '1', refresh: '1', data: [{ item: ['005930'], type: ['0B'] }] }));
    await ws.nextJson('REG ok', (m) => m.trnm === 'REG');
    const first = h.sidecar.account('main')!.gatewayToken()!.accessToken;
    assert.deepEqual(logins, [[first]]);
    await sleep(1_100); // the account's spacing
    assert.equal((await h.sidecar.renew('main', true))?.result, 'issued');
    const renewed = h.sidecar.account('main')!.gatewayToken()!.accessToken;
    assert.notEqual(renewed, first);
    await until('LOGIN again with the renewed token', HANG_MS, () => logins[0]!.length === 2);
    assert.deepEqual(logins, [[first, renewed]], 'on the same connection');
    assert.ok(!h.logs.text().includes(first) && !h.logs.text().includes(renewed), 'no token in the log');
  });

  test(
    'two Kiwoom guide clients on one key through the endpoint: both receive, nobody is logged out',
    { skip: realtimeReplicaPython() === undefined },
    async (t) => {
      const python = realtimeReplicaPython()!;
      const [a, b] = [localClient('a'), localClient('b')];
      const h = await realtimeEndpoint(t, kiwoom, [a, b], { simulator: { realtime: { framesPerSecond: 10, pingIntervalMs: 500, pingUnansweredLimit: 10 } } });
      const bots = [];
      for (const client of [a, b]) {
        const dir = tempDir(t, 'bts-rtep-kiwoom-');
        mkdirSync(join(dir, 'secrets'), { mode: 0o700 });
        const tokenFile = join(dir, 'secrets', 'token');
        writeFileSync(tokenFile, `${await localKiwoomToken(h.base, client)}\n`, { mode: 0o600 });
        bots.push(
          ReplicaProcess.start(
            t,
            python,
            'kiwoom_ws.py',
            ['--url', `${h.ws}/api/dostk/websocket`, '--token-file', tokenFile, '--item', '005930', '--type', '0B'],
            { HOME: dir },
          ),
        );
      }
      for (const bot of bots) await bot.waitFor('real', 5);
      assert.ok(bots.every((bot) => bot.of('system').length === 0 && bot.of('closed').length === 0));
      const stats = h.simulator.realtime.stats(kiwoom.appKey);
      assert.deepEqual([stats.sessions, stats.closes.replaced, stats.closes.pingpong], [1, 0, 0]);
    },
  );
});

describe('observability', () => {
  test('metrics: the session’s state, connects by reason, registrations of the limit, clients, frames, refusals and closes', async (t) => {
    const bot = localClient('bot');
    const h = await realtimeEndpoint(t, kis, [bot], { simulator: { realtime: { framesPerSecond: 10 } } });
    const scrape = async () => parseExposition((await h.sidecar.metrics.render(false)).body);
    const labels = { account: 'main', provider: 'kis', env: 'real' };
    let samples = await scrape();
    assert.equal(sampleValue(samples, 'broker_token_realtime_upstream_state', { ...labels, state: 'idle' }), 1);
    assert.equal(sampleValue(samples, 'broker_token_realtime_registration_limit', labels), 41);
    assert.equal(sampleValue(samples, 'broker_token_realtime_refusals_total', { reason: 'budget_full' }), 0, 'pre-set to 0');

    const key = await localApprovalKey(h.base, bot);
    const [a, b] = [await WsProbe.open(t, `${h.ws}/tryitout`), await WsProbe.open(t, `${h.ws}/tryitout`)];
    a.send(kisRequest(key, 'H0STCNT0', '005930'));
    b.send(kisRequest(key, 'H0STCNT0', '005930'));
    b.send(kisRequest('wrong', 'H0STCNT0', '000660'));
    await until('frames at both', HANG_MS, () => a.messages.filter(isData).length >= 3 && b.messages.filter(isData).length >= 3);
    h.simulator.realtime.kill(kis.appKey);
    await until('a second session', HANG_MS, () => h.simulator.realtime.stats(kis.appKey).sessions === 2);
    a.close();
    await a.closed('a');
    await sleep(1_200);
    samples = await scrape();
    assert.equal(sampleValue(samples, 'broker_token_realtime_upstream_state', { ...labels, state: 'open' }), 1);
    assert.equal(sampleValue(samples, 'broker_token_realtime_upstream_connects_total', { ...labels, reason: 'first' }), 1);
    assert.equal(sampleValue(samples, 'broker_token_realtime_upstream_connects_total', { ...labels, reason: 'dropped' }), 1);
    assert.equal(sampleValue(samples, 'broker_token_realtime_registrations', labels), 1);
    assert.equal(sampleValue(samples, 'broker_token_realtime_clients', labels), 1);
    assert.equal(sampleValue(samples, 'broker_token_realtime_refusals_total', { reason: 'unauthenticated' }), 1);
    assert.equal(sampleValue(samples, 'broker_token_realtime_client_closes_total', { reason: 'left' }), 1);
    const received = sampleValue(samples, 'broker_token_realtime_frames_received_total', labels);
    const sent = sampleValue(samples, 'broker_token_realtime_frames_sent_total', labels);
    assert.ok(received >= 3 && sent >= 2 * 3, `received ${received}, sent ${sent}`);
    assert.ok(Math.abs(sampleValue(samples, 'broker_token_realtime_upstream_last_frame_timestamp_seconds', labels) - Date.now() / 1000) < 5);
    assert.equal(sampleValue(samples, 'broker_token_realtime_client_queue_bytes', { ...labels, client: 'bot' }), 0);
    assert.ok(!h.logs.text().includes(key), 'no approval key in the log');
    assert.match(h.logs.text(), /real-time session ended; reconnecting within the pacing rules/);
  });

  test('Slack: the session down past its grace while registrations wait, and resolved when it opens', async (t) => {
    const slack = await fakeSlack(t);
    const bot = localClient('bot');
    const h = await realtimeEndpoint(t, kis, [bot], {
      simulator: { approvalSpacingMs: 0 },
      top: `slack: { webhookUrl: "${slack.url}", evaluationInterval: 200ms, alerts: { realtimeSessionDown: { grace: 1s } } }\n`,
    });
    const holder = await WsProbe.open(t, `${h.sim.wsUrl}/tryitout`);
    holder.send(kisRequest(await approvalKey(h.sim.url, kis), 'H0STCNT0', '000660'));
    await holder.nextJson('the holder subscribed', isControl);
    const ws = await WsProbe.open(t, `${h.ws}/tryitout`);
    ws.send(kisRequest(await localApprovalKey(h.base, bot), 'H0STCNT0', '005930'));
    await until('the alert in Slack', HANG_MS, () => slack.delivered().some((b) => b.includes('Real-time session down')));
    const firing = slack.delivered().find((b) => b.includes('Real-time session down'))!;
    assert.match(firing, /key_in_use/);
    assert.match(firing, /brokertokenrealtimesessiondown/);
    holder.close();
    await ws.nextJson('OPSP0000 once the key is free', isControl);
    await until('the resolution in Slack', HANG_MS, () => slack.delivered().filter((b) => b.includes('Real-time session down')).length >= 2);
    assert.ok(
      slack.delivered().every((b) => !b.includes(kis.appKey)),
      'no app key in Slack',
    );
  });
});

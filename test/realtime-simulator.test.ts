/**
 * The simulated brokers' WebSockets, against the rules of docs/brokers.md#kis-real-time-session and
 * #kiwoom-real-time-session: first at the protocol level with a raw client on a ManualClock (every frame and ping
 * is one step of the clock, so nothing depends on the host's speed), then with the replicas of the real clients
 * (the official KISWebSocket, python-kis, Kiwoom's guide client) as processes, directly against the simulator: the
 * problem the sidecar's real-time endpoint will solve, shown.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ManualClock } from '../src/core/clock';
import { KIS_TR_LAYOUTS, VOLUME_STEP, type RealtimeOptions } from '../src/simulator';
import { kstCompact } from '../src/simulator/token-format';
import { markerCredential, T0, tempDir, until } from './helpers';
import {
  approvalKey,
  firstGap,
  HANG_MS,
  kisRequest,
  kiwoomToken,
  realtimeReplicaPython,
  ReplicaProcess,
  splitFrame,
  startRealtimeSimulator,
  WsProbe,
} from './realtime-harness';
import { writeCredentialFiles, writeKisDevlp } from './replicas';

const kisA = markerCredential('kis', 'rta');
const kisB = markerCredential('kis', 'rtb');
const kisC = markerCredential('kis', 'rtc');
const kiwoom = markerCredential('kiwoom', 'rtk');

/** A simulator on a ManualClock: frames at 10/s (one step of 100 ms each), pings only when a test asks. */
async function manualSimulator(t: TestContext, realtime: RealtimeOptions = {}) {
  const clock = new ManualClock(T0);
  const h = await startRealtimeSimulator(t, [kisA, kisB, kisC, kiwoom], {
    clock,
    approvalSpacingMs: 0,
    realtime: { framesPerSecond: 10, pingIntervalMs: 3_600_000, ...realtime },
  });
  /** One step: waits until both beats (frames, pings) sleep on the clock, so the step cannot fall between them. */
  const step = async (ms: number): Promise<void> => {
    await until('the beats to sleep on the clock', HANG_MS, () => clock.pendingSleepers >= 2, 5);
    clock.advance(ms);
  };
  return { ...h, clock, step };
}

function answerOf(message: any): { trId: string; trKey: string; code: string; rtCd: string; msg1: string } {
  return { trId: message.header.tr_id, trKey: message.header.tr_key, code: message.body.msg_cd, rtCd: message.body.rt_cd, msg1: message.body.msg1 };
}

const isControl = (m: any): boolean => m.body !== undefined;
const isData = (m: string): boolean => m.startsWith('0|') || m.startsWith('1|');

/** The records of a frame, each split into its fields, and each record's growing field. */
function records(frame: string, fieldsPerRecord: number, volumeIndex: number): { fields: string[][]; volumes: number[] } {
  const { count, payload } = splitFrame(frame);
  const all = payload.split('^');
  assert.equal(all.length, count * fieldsPerRecord, `${count} records of ${fieldsPerRecord} fields each`);
  const fields = Array.from({ length: count }, (_, i) => all.slice(i * fieldsPerRecord, (i + 1) * fieldsPerRecord));
  return { fields, volumes: fields.map((f) => Number(f[volumeIndex])) };
}

describe('KIS WebSocket, protocol level', () => {
  test('control answers: the exact shapes and codes, the key and iv in every successful registration', async (t) => {
    const h = await manualSimulator(t);
    const key = await approvalKey(h.url, kisA);
    const ws = await WsProbe.open(t, `${h.wsUrl}/tryitout/H0STCNT0`);

    ws.send(kisRequest('not-an-approval-key', 'H0STCNT0', '005930'));
    assert.deepEqual(answerOf(await ws.nextJson('OPSP0011', isControl)), {
      trId: 'H0STCNT0',
      trKey: '005930',
      code: 'OPSP0011',
      rtCd: '1',
      msg1: 'invalid approval : NOT FOUND',
    });

    ws.send(kisRequest(key, 'H0STCNT0', '005930'));
    const subscribed = await ws.nextJson('OPSP0000', isControl);
    assert.deepEqual(answerOf(subscribed), { trId: 'H0STCNT0', trKey: '005930', code: 'OPSP0000', rtCd: '0', msg1: 'SUBSCRIBE SUCCESS' });
    assert.equal(subscribed.header.encrypt, 'N');
    assert.match(subscribed.body.output.iv, /^[0-9a-f]{16}$/);
    assert.match(subscribed.body.output.key, /^[a-z]{32}$/);

    const cases: Array<[string, string, string, string]> = [
      [kisRequest(key, 'H0STCNT0', '005930'), 'OPSP0002', '1', 'ALREADY IN SUBSCRIBE'],
      [kisRequest(key, 'H0XXXXX0', '005930'), 'OPSP8991', '1', 'SUBSCRIBE ERROR : invalid tr_id'],
      [kisRequest(key, 'H0STASP0', '000660', '2'), 'OPSP0003', '1', 'UNSUBSCRIBE ERROR (not found!)'],
      [kisRequest(key, 'H0STCNT0', '005930', '2'), 'OPSP0001', '0', 'UNSUBSCRIBE SUCCESS'],
      ['{not json', 'OPSP9999', '9', 'JSON PARSING ERROR : invalid json format'],
      [JSON.stringify({ body: {} }), 'OPSP9998', '9', 'JSON PARSING ERROR : header not found'],
      [kisRequest(key, 'H0STCNT0', '005930').replace('"tr_type":"1"', '"tr_type":"0"'), 'OPSP8997', '9', 'JSON PARSING ERROR : invalid tr_type'],
    ];
    for (const [message, code, rtCd, msg1] of cases) {
      ws.send(message);
      const answer = answerOf(await ws.nextJson(code, isControl));
      assert.deepEqual([answer.code, answer.rtCd, answer.msg1], [code, rtCd, msg1]);
    }
    // The official client tells an unsubscribe by the first five characters of msg1.
    assert.equal('UNSUBSCRIBE SUCCESS'.slice(0, 5), 'UNSUB');

    const stats = h.simulator.realtime.stats(kisA.appKey);
    assert.equal(stats.sessions, 1);
    assert.equal(stats.registrations, 1);
    assert.equal(stats.unregistrations, 1);
    assert.deepEqual(h.simulator.realtime.stats().refusals, { OPSP0011: 1, OPSP0002: 1, OPSP8991: 1, OPSP0003: 1, OPSP9999: 1, OPSP9998: 1, OPSP8997: 1 });
  });

  test('41 registrations per session, all TRs together: the 42nd is refused with OPSP0008, an unregistration frees a place', async (t) => {
    const h = await manualSimulator(t);
    const key = await approvalKey(h.url, kisA);
    const ws = await WsProbe.open(t, `${h.wsUrl}/tryitout`);
    const code = (i: number): string => String(100_000 + i);
    const wanted = [
      ...Array.from({ length: 20 }, (_, i) => ['H0STCNT0', code(i)]),
      ...Array.from({ length: 20 }, (_, i) => ['H0STASP0', code(i)]),
      ['H0STCNI0', 'trader01'],
    ] as const;
    for (const [trId, trKey] of wanted) {
      ws.send(kisRequest(key, trId, trKey));
      assert.equal(answerOf(await ws.nextJson(`OPSP0000 for ${trId} ${trKey}`, isControl)).code, 'OPSP0000');
    }
    ws.send(kisRequest(key, 'H0STASP0', code(20)));
    assert.deepEqual(answerOf(await ws.nextJson('the 42nd', isControl)), {
      trId: 'H0STASP0',
      trKey: code(20),
      code: 'OPSP0008',
      rtCd: '1',
      msg1: 'MAX SUBSCRIBE OVER',
    });

    ws.send(kisRequest(key, 'H0STCNT0', code(0), '2'));
    assert.equal(answerOf(await ws.nextJson('OPSP0001', isControl)).code, 'OPSP0001');
    ws.send(kisRequest(key, 'H0STASP0', code(20)));
    assert.equal(answerOf(await ws.nextJson('the 41st again', isControl)).code, 'OPSP0000');

    const stats = h.simulator.realtime.stats(kisA.appKey);
    assert.equal(stats.peakRegistrations, 41);
    assert.deepEqual(stats.refusals, { OPSP0008: 1 });
    assert.equal(h.simulator.realtime.sessionList({ appKey: kisA.appKey, open: true })[0]!.registrations.length, 41);
  });

  test('one session per app key: a second connection gets OPSP8996 and a normal close, the first keeps its frames; a reconnect within 1 s is counted', async (t) => {
    const h = await manualSimulator(t);
    const first = await WsProbe.open(t, `${h.wsUrl}/tryitout`);
    first.send(kisRequest(await approvalKey(h.url, kisA), 'H0STCNT0', '005930'));
    await first.nextJson('the first session subscribed', isControl);
    await h.step(100);
    const before = records(await first.next('a frame before', isData), 46, 13).volumes;

    const refusedAt: number[] = [];
    for (const pause of [0, 0, 1000]) {
      h.clock.advance(pause);
      const newcomer = await WsProbe.open(t, `${h.wsUrl}/tryitout`);
      newcomer.send(kisRequest(await approvalKey(h.url, kisA), 'H0STCNT0', '005930'));
      assert.equal(
        await newcomer.next('OPSP8996', (m) => m.includes('OPSP8996')),
        '{"header":{"tr_id":"(null)","tr_key":"","encrypt":"N"},"body":{"rt_cd":"9","msg_cd":"OPSP8996","msg1":"ALREADY IN USE appkey"}}',
      );
      assert.equal(await newcomer.closed('the newcomer'), 1000);
      refusedAt.push(h.clock.now());
    }

    await h.step(100);
    const after = records(await first.next('a frame after', isData), 46, 13).volumes;
    assert.equal(firstGap([...before, ...after], VOLUME_STEP), undefined, 'the first session lost nothing');
    assert.equal(first.closeCode, undefined);

    const stats = h.simulator.realtime.stats(kisA.appKey);
    assert.equal(stats.sessions, 1);
    assert.equal(stats.peakConcurrentSessions, 1);
    assert.deepEqual(stats.refusals, { OPSP8996: 3 });
    assert.equal(stats.closes.refused, 3);
    // The second came at once after the first refusal closed, the third a full second later: one rapid reconnect.
    assert.equal(stats.rapidReconnects, 1);
    assert.equal(h.simulator.realtime.sessionList({ appKey: kisA.appKey, open: true }).length, 1);
  });

  test('every record has its TR’s full field count and the growing field has no gap; a stream left alone moves on meanwhile', async (t) => {
    const h = await manualSimulator(t, { recordsPerFrame: 3 });
    const key = await approvalKey(h.url, kisA);
    const ws = await WsProbe.open(t, `${h.wsUrl}/tryitout`);
    ws.send(kisRequest(key, 'H0STCNT0', '005930'));
    ws.send(kisRequest(key, 'H0STASP0', '000660'));
    await ws.nextJson('two answers', (m) => m.header.tr_id === 'H0STASP0');
    assert.equal(KIS_TR_LAYOUTS['H0STCNT0']!.columns.length, 46);
    assert.equal(KIS_TR_LAYOUTS['H0STASP0']!.columns.length, 59);
    assert.equal(KIS_TR_LAYOUTS['H0STCNI0']!.columns.length, 26);

    const trades: number[] = [];
    const book: number[] = [];
    for (let i = 0; i < 5; i++) {
      await h.step(100);
      const trade = records(await ws.next('a trade frame', (m) => m.startsWith('0|H0STCNT0|003|')), 46, 13);
      assert.ok(trade.fields.every((f) => f[0] === '005930' && f[33] === kstCompact(h.clock.now()).slice(0, 8)));
      trades.push(...trade.volumes);
      book.push(...records(await ws.next('an order-book frame', (m) => m.startsWith('0|H0STASP0|003|')), 59, 53).volumes);
    }
    assert.equal(firstGap(trades, VOLUME_STEP), undefined);
    assert.equal(firstGap(book, VOLUME_STEP), undefined);
    assert.equal(trades.length, 15);

    // Four frames' time without the trade stream: coming back, it has moved on by four frames of three records.
    ws.send(kisRequest(key, 'H0STCNT0', '005930', '2'));
    await ws.nextJson('OPSP0001', (m) => m.body?.msg_cd === 'OPSP0001');
    for (let i = 0; i < 4; i++) await h.step(100);
    ws.send(kisRequest(key, 'H0STCNT0', '005930'));
    await ws.nextJson('OPSP0000 again', (m) => m.body?.msg_cd === 'OPSP0000');
    await h.step(100);
    const back = records(await ws.next('a trade frame after the break', (m) => m.startsWith('0|H0STCNT0|')), 46, 13).volumes;
    assert.equal(back[0]! - trades.at(-1)!, (4 * 3 + 1) * VOLUME_STEP);
  });

  test('PINGPONG: unanswered it drops the session; a pong frame or the JSON sent back as text keeps it', async (t) => {
    const h = await manualSimulator(t, { framesPerSecond: 0, pingIntervalMs: 1000, pingUnansweredLimit: 2 });
    const clients = { silent: kisA, pong: kisB, echo: kisC };
    const probes: Record<string, WsProbe> = {};
    for (const [name, credential] of Object.entries(clients)) {
      probes[name] = await WsProbe.open(t, `${h.wsUrl}/tryitout`);
      probes[name].send(kisRequest(await approvalKey(h.url, credential), 'H0STCNT0', '005930'));
      await probes[name].nextJson(`${name} bound`, isControl);
    }
    for (let beat = 1; beat <= 2; beat++) {
      await h.step(1000);
      const ping = `{"header":{"tr_id":"PINGPONG","datetime":"${kstCompact(h.clock.now())}"}}`;
      for (const probe of Object.values(probes)) assert.equal(await probe.next(`PINGPONG ${beat}`, (m) => m.includes('PINGPONG')), ping);
      probes['pong']!.pong(ping);
      // python-kis sends back json.dumps of the parsed message, with spaces: the same JSON, other bytes.
      probes['echo']!.send(JSON.stringify(JSON.parse(ping), null, 1));
      await until('both answers counted', HANG_MS, () => h.simulator.realtime.stats().pingsAnswered === 2 * beat, 5);
    }
    await h.step(1000);
    assert.equal(await probes['silent']!.closed('the silent client'), 1006, 'cut without a close frame');
    await probes['pong']!.next('a third PINGPONG', (m) => m.includes('PINGPONG'));
    await probes['echo']!.next('a third PINGPONG', (m) => m.includes('PINGPONG'));
    assert.equal(probes['pong']!.closeCode, undefined);
    assert.equal(probes['echo']!.closeCode, undefined);
    assert.equal(h.simulator.realtime.stats(kisA.appKey).closes.pingpong, 1);
    assert.equal(h.simulator.realtime.stats(kisB.appKey).pingsAnswered, 2);
    assert.equal(h.simulator.realtime.stats(kisC.appKey).pingsAnswered, 2);
  });

  test('a fill notice is encrypted with the key and iv of its registration answer, new with every session', async (t) => {
    const h = await manualSimulator(t);
    const keys: string[] = [];
    for (const session of [1, 2]) {
      const ws = await WsProbe.open(t, `${h.wsUrl}/tryitout`);
      ws.send(kisRequest(await approvalKey(h.url, kisA), 'H0STCNI0', 'trader01'));
      const answer = await ws.nextJson('OPSP0000', isControl);
      assert.equal(answer.header.encrypt, 'Y');
      const { key, iv } = answer.body.output as { key: string; iv: string };
      keys.push(key);
      assert.equal(h.simulator.realtime.fill('nobody'), 0);
      for (const expectedOrder of [1, 2]) {
        assert.equal(h.simulator.realtime.fill('trader01'), 1);
        const frame = splitFrame(await ws.next('a fill notice', isData));
        assert.deepEqual([frame.encrypted, frame.trId, frame.count], [true, 'H0STCNI0', 1]);
        const decipher = createDecipheriv('aes-256-cbc', Buffer.from(key, 'utf8'), Buffer.from(iv, 'utf8'));
        const fields = Buffer.concat([decipher.update(frame.payload, 'base64'), decipher.final()])
          .toString('utf8')
          .split('^');
        assert.equal(fields.length, 26);
        assert.equal(fields[0], 'trader01');
        // ODER_NO grows with every fill of the HTS id, across sessions.
        assert.equal(Number(fields[2]), (session - 1) * 2 + expectedOrder);
      }
      ws.close();
      await ws.closed(`session ${session}`);
      await until('the session to end at the simulator', HANG_MS, () => h.simulator.realtime.sessionList({ open: true }).length === 0, 5);
    }
    assert.notEqual(keys[0], keys[1]);
    assert.equal(h.simulator.realtime.stats(kisA.appKey).fillNoticesSent, 4);
  });
});

describe('Kiwoom WebSocket, protocol level', () => {
  test('LOGIN with a REST token, REG/REMOVE by group, REAL with a growing FID 13, PING echoed', async (t) => {
    const h = await manualSimulator(t, { pingIntervalMs: 1000 });
    const ws = await WsProbe.open(t, `${h.wsUrl}/api/dostk/websocket`);
    const reg = (refresh: string, type: string, trnm = 'REG') => JSON.stringify({ trnm, grp_no: '1', refresh, data: [{ item: ['005930'], type: [type] }] });

    ws.send(reg('1', '0B'));
    assert.deepEqual(await ws.nextJson('REG refused before LOGIN'), {
      trnm: 'REG',
      return_code: 3,
      return_msg: '인증에 실패했습니다[8005:Token이 유효하지 않습니다]',
    });
    ws.send(JSON.stringify({ trnm: 'LOGIN', token: 'not-a-token' }));
    assert.equal((await ws.nextJson('LOGIN refused')).return_code, 3);
    ws.send(JSON.stringify({ trnm: 'LOGIN', token: await kiwoomToken(h.url, kiwoom) }));
    assert.deepEqual(await ws.nextJson('LOGIN accepted'), { trnm: 'LOGIN', return_code: 0, sor_yn: 'Y' });

    ws.send(reg('1', '0B'));
    assert.deepEqual(await ws.nextJson('REG accepted'), { trnm: 'REG', return_code: 0, return_msg: '' });
    const volumes: number[] = [];
    for (let i = 0; i < 3; i++) {
      await h.step(100);
      const real = await ws.nextJson('REAL', (m) => m.trnm === 'REAL');
      assert.deepEqual([real.data[0].type, real.data[0].name, real.data[0].item], ['0B', '주식체결', '005930']);
      volumes.push(Number(real.data[0].values['13']));
    }
    assert.equal(firstGap(volumes, VOLUME_STEP), undefined);

    // refresh "0" drops what was registered before: 0B goes, 0D stays.
    ws.send(reg('0', '0D'));
    await ws.nextJson('REG refresh 0', (m) => m.trnm === 'REG');
    assert.deepEqual(h.simulator.realtime.sessionList({ open: true })[0]!.registrations, [{ id: '0D', key: '005930', group: '1' }]);
    ws.send(reg('1', '0D', 'REMOVE'));
    assert.equal((await ws.nextJson('REMOVE', (m) => m.trnm === 'REMOVE')).return_code, 0);

    for (let i = 0; i < 10; i++) await h.step(100);
    const ping = await ws.next('PING', (m) => m.includes('"PING"'));
    assert.equal(ping, '{"trnm":"PING"}');
    ws.send(ping);
    await until('the PING answered', HANG_MS, () => h.simulator.realtime.stats(kiwoom.appKey).pingsAnswered === 1, 5);
    assert.deepEqual(h.simulator.realtime.stats().refusals, { '8005': 2 });
  });

  test('a second LOGIN with the same app key ends the first session with SYSTEM R10001', async (t) => {
    const h = await manualSimulator(t);
    const token = await kiwoomToken(h.url, kiwoom);
    const first = await WsProbe.open(t, `${h.wsUrl}/api/dostk/websocket`);
    first.send(JSON.stringify({ trnm: 'LOGIN', token }));
    await first.nextJson('first LOGIN');
    const second = await WsProbe.open(t, `${h.wsUrl}/api/dostk/websocket`);
    second.send(JSON.stringify({ trnm: 'LOGIN', token }));
    assert.equal((await second.nextJson('second LOGIN')).return_code, 0);

    assert.deepEqual(await first.nextJson('SYSTEM'), {
      trnm: 'SYSTEM',
      code: 'R10001',
      message: '동일한 App key로 접속이 되었습니다. 기존 세션은 종료가 됩니다',
    });
    assert.equal(await first.closed('the first session'), 1000);
    assert.equal(second.closeCode, undefined);
    const stats = h.simulator.realtime.stats(kiwoom.appKey);
    assert.deepEqual([stats.sessions, stats.closes.replaced, stats.peakConcurrentSessions], [2, 1, 1]);
  });
});

describe('control API under /_sim/realtime', () => {
  test('rate, sessions, kill, fills and stats over HTTP; bad input is a 400; another path is no WebSocket', async (t) => {
    const h = await manualSimulator(t);
    const call = async (path: string, body?: unknown) => {
      const response = await fetch(`${h.url}/_sim/realtime${path}`, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) });
      return { status: response.status, body: (await response.json()) as any };
    };
    const ws = await WsProbe.open(t, `${h.wsUrl}/tryitout`);
    ws.send(kisRequest(await approvalKey(h.url, kisA), 'H0STCNI0', 'trader01'));
    await ws.nextJson('OPSP0000', isControl);

    assert.deepEqual(await call('/rate', { framesPerSecond: 5, recordsPerFrame: 2 }), { status: 200, body: { ok: true } });
    assert.equal((await call('/rate', { framesPerSecond: -1 })).status, 400);
    assert.match((await call('/kill', { appkey: 'x' })).body.error, /appKey/);
    const sessions = (await call(`/sessions?appKey=${kisA.appKey}&open=true`)).body;
    assert.deepEqual(sessions[0].registrations, [{ id: 'H0STCNI0', key: 'trader01' }]);
    assert.deepEqual((await call('/fills', { htsId: 'trader01' })).body, { delivered: 1 });
    await ws.next('the fill', isData);

    assert.deepEqual((await call('/kill', { appKey: kisA.appKey })).body, { killed: 1 });
    assert.equal(await ws.closed('the killed session'), 1006);
    const stats = (await call(`/stats?appKey=${kisA.appKey}`)).body;
    assert.deepEqual([stats.closes.killed, stats.fillNoticesSent], [1, 1]);
    assert.equal((await call('/sessions?open=true')).body.length, 0);

    await assert.rejects(WsProbe.open(t, `${h.wsUrl}/somewhere/else`), /404/);
  });
});

/** Files and environment for the replicas of one test: their own HOME, the credentials in 0600 files. */
function replicaHome(t: TestContext, h: { url: string; wsUrl: string }, credential = kisA) {
  const home = tempDir(t, 'bts-rt-');
  writeKisDevlp(home, credential, h.url, h.wsUrl);
  const files = writeCredentialFiles(join(home, 'secrets'), credential, 'kis');
  const pykisArgs = ['--id', 'trader01', '--appkey-file', files.appKeyFile, '--secret-file', files.secretFile, '--keep-token', join(home, 'pykis')];
  const env = { HOME: home, TZ: 'Asia/Seoul', PYKIS_REPLICA_REAL_DOMAIN: h.url, PYKIS_REPLICA_WEBSOCKET_REAL_DOMAIN: h.wsUrl };
  return { home, env, pykisArgs };
}

const volumesOf = (events: any[], column = 'ACML_VOL') => events.map((e) => Number(e.rows[0][column]));

/**
 * Keep-alive for the replica tests: a ping every 500 ms, dropped only after ten unanswered (5 s), so a replica
 * descheduled for a while on a busy host is not mistaken for one that never answers (that rule is tested above,
 * step by step on a ManualClock).
 */
const REPLICA_PINGS = { pingIntervalMs: 500, pingUnansweredLimit: 10 };

describe('replicas of the real clients, directly against the simulator', () => {
  const python = realtimeReplicaPython();
  const skip = python === undefined ? 'needs /usr/bin/python3 with websockets, Cryptodome and yaml' : false;

  test('the official KISWebSocket receives full records with no gap, answers PINGPONG with pong frames, and sees one row per frame', { skip }, async (t) => {
    const h = await startRealtimeSimulator(t, [kisA], { approvalSpacingMs: 0, realtime: { framesPerSecond: 10, ...REPLICA_PINGS } });
    const { env } = replicaHome(t, h);
    const bot = ReplicaProcess.start(t, python!, 'kis_ws_bot.py', ['--price', '005930', '--orderbook', '000660'], env);
    const trades = await bot.waitFor('data', 15, (e) => e.trId === 'H0STCNT0');
    const book = await bot.waitFor('data', 15, (e) => e.trId === 'H0STASP0');
    assert.equal(firstGap(volumesOf(trades), VOLUME_STEP), undefined);
    assert.equal(firstGap(volumesOf(book), VOLUME_STEP), undefined);
    // Full records: the last column is there, nothing spilled into pandas' implicit index.
    assert.ok(trades.every((e) => e.indexLength === 0 && e.rows[0].VI_STND_PRC !== null && e.rows[0].MKSC_SHRN_ISCD === '005930'));
    assert.ok(book.every((e) => e.indexLength === 0 && e.rows[0].STCK_DEAL_CLS_CODE !== null));
    await until('three PINGPONGs answered', HANG_MS, () => h.simulator.realtime.stats(kisA.appKey).pingsAnswered >= 3);

    // Three records a frame: read with read_csv's names=46 columns, the row is the last record, the rest its index.
    h.simulator.realtime.setFrameRate(10, 3);
    const multi = await bot.waitFor('data', 10, (e) => e.trId === 'H0STCNT0' && e.count === 3);
    assert.ok(multi.every((e) => e.indexLength === 2 * 46));
    const all = bot.of('data', (e) => e.trId === 'H0STCNT0');
    assert.equal(
      firstGap(
        volumesOf(all),
        VOLUME_STEP,
        all.map((e) => e.count),
      ),
      undefined,
    );

    const stats = h.simulator.realtime.stats(kisA.appKey);
    assert.deepEqual([stats.sessions, stats.closes.pingpong, bot.of('exception').length], [1, 0, 0]);
    assert.ok(bot.of('pingpong').length >= 3);
  });

  test('the official client’s cap counts kinds of subscription, not items: it sends 42 registrations and the broker refuses the 42nd', { skip }, async (t) => {
    const h = await startRealtimeSimulator(t, [kisA], { approvalSpacingMs: 0, realtime: { framesPerSecond: 0 } });
    const { env } = replicaHome(t, h);
    const codes = Array.from({ length: 42 }, (_, i) => String(100_000 + i));
    const bot = ReplicaProcess.start(t, python!, 'kis_ws_bot.py', ['--price', ...codes], env);
    const answers = await bot.waitFor('control', 42);
    assert.equal(bot.of('sent').length, 42);
    assert.deepEqual(
      answers.map((a) => a.msgCd),
      [...Array.from({ length: 41 }, () => 'OPSP0000'), 'OPSP0008'],
    );
    const stats = h.simulator.realtime.stats(kisA.appKey);
    assert.deepEqual([stats.peakRegistrations, stats.refusals['OPSP0008']], [41, 1]);
  });

  test(
    'a second process on the app key gets OPSP8996; the official KISWebSocket then reconnects at once, again and again, while the first session loses nothing',
    { skip },
    async (t) => {
      const h = await startRealtimeSimulator(t, [kisA], { approvalSpacingMs: 0, realtime: { framesPerSecond: 10 } });
      const { env, pykisArgs } = replicaHome(t, h);
      const holder = ReplicaProcess.start(t, python!, 'pykis_ws_bot.py', [...pykisArgs, '--price', '005930'], env);
      await holder.waitFor('data', 3);

      // Two subscriptions: the blocking sleep between the sends keeps the close unread, so the second send works too.
      const second = ReplicaProcess.start(t, python!, 'kis_ws_bot.py', ['--price', '005930', '--orderbook', '000660'], env);
      const refusals = 15;
      await until(
        () => `${refusals} refusals (got ${JSON.stringify(h.simulator.realtime.stats(kisA.appKey).refusals)})`,
        HANG_MS,
        () => (h.simulator.realtime.stats(kisA.appKey).refusals['OPSP8996'] ?? 0) >= refusals,
      );
      await second.stop();

      const refused = h.simulator.realtime.sessionList({ appKey: kisA.appKey }).filter((s) => s.closedBy === 'refused');
      const spanMs = refused.at(-1)!.closedAt! - refused[0]!.openedAt;
      t.diagnostic(`official KISWebSocket: ${refused.length} OPSP8996 refusals in ${spanMs} ms, ${second.of('exception').length} retries counted`);
      // Every refusal ended in a normal close, which the client does not count as a failure: it never slept or stopped.
      assert.ok(second.of('control', (e) => e.msgCd === 'OPSP8996').length >= refusals - 1);
      assert.ok(second.of('closed', (e) => e.code === 1000).length >= refusals - 1);
      assert.deepEqual([second.of('exception').length, second.of('exit').length], [0, 0]);
      const stats = h.simulator.realtime.stats(kisA.appKey);
      // The client never waits on this path; how fast it comes back is the host's speed, so only "counted" is asserted.
      assert.ok(stats.rapidReconnects >= 1, `rapid reconnects ${stats.rapidReconnects}`);
      assert.equal(stats.peakConcurrentSessions, 1, 'never two sessions for the key at once');
      assert.equal(h.simulator.realtime.sessionList({ appKey: kisA.appKey, open: true }).length, 1);

      await holder.waitFor('data', holder.of('data').length + 2);
      assert.equal(
        firstGap(
          holder.of('data').map((e) => e.volume),
          VOLUME_STEP,
        ),
        undefined,
        'the first session lost nothing',
      );
    },
  );

  test(
    'python-kis asks an approval key for each subscription, back to back: under the broker’s approval limit only the first goes through',
    { skip },
    async (t) => {
      // Any approval spacing longer than python-kis's back-to-back requests shows it; a long one keeps a slow host from hiding it.
      const h = await startRealtimeSimulator(t, [kisA], { approvalSpacingMs: 60_000, realtime: { framesPerSecond: 10 } });
      const { env, pykisArgs } = replicaHome(t, h);
      const bot = ReplicaProcess.start(t, python!, 'pykis_ws_bot.py', [...pykisArgs, '--price', '005930', '--orderbook', '000660'], env);
      await bot.waitFor('log', 1, (e) => e.message.startsWith('RTC Subscribed to'));
      await bot.waitFor('log', 1, (e) => e.message.startsWith('RTC Websocket error:'));
      await bot.waitFor('data', 3);
      assert.equal(bot.of('log', (e) => e.message.startsWith('RTC Subscribed to')).length, 1, 'the second subscription never reached the broker');
      assert.equal(bot.of('approvals').at(-1).count, 2);
      assert.deepEqual([h.simulator.stats(kisA.appKey).approvals, h.simulator.stats(kisA.appKey).approvalsRateLimited], [1, 1]);
      assert.equal(h.simulator.realtime.stats(kisA.appKey).registrations, 1);
    },
  );

  test('python-kis refused with OPSP8996 logs it and connects again every 5 s, with a new approval key each time', { skip }, async (t) => {
    const h = await startRealtimeSimulator(t, [kisA], { approvalSpacingMs: 0, realtime: { framesPerSecond: 10 } });
    const { env, pykisArgs } = replicaHome(t, h);
    const holder = ReplicaProcess.start(t, python!, 'kis_ws_bot.py', ['--price', '005930'], env);
    await holder.waitFor('data', 3);
    const second = ReplicaProcess.start(t, python!, 'pykis_ws_bot.py', [...pykisArgs, '--price', '005930'], env);
    await second.waitFor('log', 2, (e) => e.message === 'RTC Session already in use');
    const refused = h.simulator.realtime.sessionList({ appKey: kisA.appKey }).filter((s) => s.closedBy === 'refused');
    assert.equal(refused.length, 2);
    assert.ok(refused[1]!.openedAt - refused[0]!.closedAt! >= 5000, 'python-kis waits its reconnect_interval');
    assert.ok(second.of('log', (e) => e.message === 'RTC Reconnecting in 5 seconds...').length >= 1);
    // The replica reports its approval count as it goes: on a busy host that line may follow the refusal it led to.
    await second.waitFor('approvals', 1, (e) => e.count >= 2);
    assert.equal(h.simulator.realtime.stats(kisA.appKey).peakConcurrentSessions, 1);
    assert.equal(firstGap(volumesOf(holder.of('data')), VOLUME_STEP), undefined);
  });

  test('fill notices: the official client decrypts them with its session’s key; python-kis cannot parse the 26-field layout', { skip }, async (t) => {
    const h = await startRealtimeSimulator(t, [kisA, kisB], { approvalSpacingMs: 0, realtime: { framesPerSecond: 1, ...REPLICA_PINGS } });
    const official = replicaHome(t, h, kisA);
    const pykis = replicaHome(t, h, kisB);
    const bot = ReplicaProcess.start(t, python!, 'kis_ws_bot.py', ['--fills'], official.env);
    const pykisBot = ReplicaProcess.start(t, python!, 'pykis_ws_bot.py', [...pykis.pykisArgs, '--fills'], pykis.env);
    await bot.waitFor('control', 1, (e) => e.trId === 'H0STCNI0' && e.msgCd === 'OPSP0000' && e.encrypt === 'Y' && e.keyIv);
    await pykisBot.waitFor('log', 1, (e) => e.message === 'RTC Subscribed to H0STCNI0.trader01');

    assert.equal(h.simulator.realtime.fill('trader01'), 2);
    const [fill] = await bot.waitFor('data', 1, (e) => e.trId === 'H0STCNI0');
    assert.deepEqual([fill.rows[0].CUST_ID, fill.rows[0].ODER_NO, fill.rows[0].CNTG_YN, fill.indexLength], ['trader01', '0000000001', '2', 0]);
    await pykisBot.waitFor('log', 1, (e) => e.message === 'RTC Failed to parse message: H0STCNI0 Invalid data length: 26');
    assert.equal(pykisBot.of('data').length, 0);

    // Both answer PINGPONG their own way (a pong frame, the JSON as text) and keep their sessions.
    await until('PINGPONGs answered by both', HANG_MS, () => [kisA, kisB].every((c) => h.simulator.realtime.stats(c.appKey).pingsAnswered >= 3));
    assert.equal(h.simulator.realtime.stats().closes.pingpong, 0);
  });

  test('Kiwoom guide client: LOGIN, REG and REAL with no gap; a second process logging in with the key ends the first with R10001', { skip }, async (t) => {
    const h = await startRealtimeSimulator(t, [kiwoom], { realtime: { framesPerSecond: 10, ...REPLICA_PINGS } });
    const dir = tempDir(t, 'bts-rt-kiwoom-');
    mkdirSync(join(dir, 'secrets'), { mode: 0o700 });
    const tokenFile = join(dir, 'secrets', 'token');
    writeFileSync(tokenFile, `${await kiwoomToken(h.url, kiwoom)}\n`, { mode: 0o600 });
    const args = ['--url', `${h.wsUrl}/api/dostk/websocket`, '--token-file', tokenFile, '--item', '005930', '--type', '0B'];
    const env = { HOME: dir };

    const first = ReplicaProcess.start(t, python!, 'kiwoom_ws.py', args, env);
    await first.waitFor('login', 1, (e) => e.returnCode === 0);
    await first.waitFor('answer', 1, (e) => e.trnm === 'REG' && e.returnCode === 0);
    const reals = await first.waitFor('real', 10);
    assert.equal(
      firstGap(
        reals.map((e) => Number(e.values['13'])),
        VOLUME_STEP,
      ),
      undefined,
    );
    await first.waitFor('ping', 2);

    const second = ReplicaProcess.start(t, python!, 'kiwoom_ws.py', args, env);
    await second.waitFor('real', 3);
    const [system] = await first.waitFor('system', 1);
    assert.equal(system.code, 'R10001');
    await first.waitFor('closed', 1, (e) => e.code === 1000);
    const stats = h.simulator.realtime.stats(kiwoom.appKey);
    // At least one replacement: on a slow host the guide client's own REG can open a second connection (kiwoom_ws.py).
    assert.ok(stats.closes.replaced >= 1);
    assert.deepEqual([stats.peakConcurrentSessions, stats.closes.pingpong], [1, 0]);
    assert.ok(stats.pingsAnswered >= 2);
  });
});

/**
 * The real-time endpoint's pure parts in tables: the reconnect pacing, the registration book, the brokers'
 * messages as the endpoint reads and writes them, and the `realtime:` config.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { earliestCloseAt, earliestConnectAt, reconnectDelayMs } from '../src/realtime/pacing';
import { RegistrationBook } from '../src/realtime/registrations';
import { firstField, isFillTr, kisControl, kisPingpong, readKisClientMessage, readKisUpstream, KIS_ANSWERS } from '../src/realtime/kis-wire';
import { kiwoomChange, kiwoomPairsAnswer, readKiwoomClientMessage, readKiwoomUpstream } from '../src/realtime/kiwoom-wire';
import { parseTestConfig } from './helpers';
import { ConfigError } from '../src/core/errors';

const policy = { initialDelayMs: 1_000, maxDelayMs: 60_000 };

describe('reconnect pacing', () => {
  test('the wait doubles from the initial delay to the cap, ±20 % jitter, never under the initial delay or a second', () => {
    const table: Array<[number, number, number]> = [
      // failures, random, wait
      [1, 0, 1_000], // 800 jittered, floored at the initial delay
      [1, 0.5, 1_000],
      [1, 1, 1_200],
      [2, 0.5, 2_000],
      [3, 0, 3_200],
      [4, 1, 9_600],
      [7, 0.5, 60_000], // 64 s capped
      [20, 1, 60_000], // the cap holds with jitter too
    ];
    for (const [failures, random, wait] of table)
      assert.equal(
        reconnectDelayMs(failures, policy, () => random),
        wait,
        `${failures} failures, random ${random}`,
      );
    assert.equal(
      reconnectDelayMs(1, { initialDelayMs: 1_000, maxDelayMs: 1_000 }, () => 1),
      1_000,
    );
  });

  test('a connect waits the delay after the last close and a second after the last connect; a close a second after the open', () => {
    assert.equal(earliestConnectAt(100, 0, undefined, undefined), 100, 'the first, at once');
    assert.equal(earliestConnectAt(5_000, 0, 4_500, 4_800), 5_800, 'a close is followed by a second at least, whatever the delay');
    assert.equal(earliestConnectAt(5_000, 2_000, 4_000, 4_100), 6_100);
    assert.equal(earliestConnectAt(10_000, 1_000, 9_500, undefined), 10_500, 'no two connects within a second');
    assert.equal(earliestCloseAt(7_000), 8_000);
  });
});

describe('registration book', () => {
  test('reference counts per (id, key); the broker is asked once, told to let go when the last client leaves', () => {
    const book = new RegistrationBook<string>(41);
    assert.equal(book.add('a', 'H0STCNT0', '005930'), 'waiting');
    assert.equal(book.add('b', 'H0STCNT0', '005930'), 'waiting');
    assert.equal(book.add('a', 'H0STCNT0', '005930'), 'held');
    const work = book.work();
    assert.deepEqual(
      work.map((w) => [w.entry.key, w.register]),
      [['005930', true]],
    );
    assert.deepEqual(book.work(), [], 'sent once');
    assert.deepEqual(book.confirmed(work[0]!.entry).sort(), ['a', 'b']);
    assert.equal(book.add('c', 'H0STCNT0', '005930'), 'live', 'answered at once now');
    assert.ok(book.remove('a', 'H0STCNT0', '005930'));
    assert.ok(!book.remove('a', 'H0STCNT0', '005930'), 'not held any more');
    book.removeClient('b');
    assert.deepEqual(book.work(), [], 'c still wants it');
    book.removeClient('c');
    const release = book.work();
    assert.deepEqual(
      release.map((w) => [w.entry.key, w.register]),
      [['005930', false]],
    );
    assert.equal(book.size, 1, 'counted until the broker let it go');
    book.released(release[0]!.entry);
    assert.equal(book.size, 0);
  });

  test('the limit counts entries wanted or still at the broker; a lost session replays what is wanted and forgets the rest', () => {
    const book = new RegistrationBook<string>(2);
    book.add('a', 'T', '1');
    book.add('a', 'T', '2');
    assert.equal(book.add('b', 'T', '3'), 'full');
    assert.ok(book.fits([{ id: 'T', key: '1' }]) && !book.fits([{ id: 'T', key: '3' }]));
    for (const { entry } of book.work()) book.confirmed(entry);
    book.remove('a', 'T', '2');
    assert.equal(book.add('b', 'T', '3'), 'full', 'T|2 is still at the broker');
    book.lost();
    assert.equal(book.size, 1, 'T|2 was wanted by nobody: gone with the session');
    assert.deepEqual(
      book.work().map((w) => [w.entry.key, w.register]),
      [['1', true]],
    );
    assert.equal(book.add('b', 'T', '3'), 'waiting');
    const [registering] = book.work();
    assert.deepEqual(book.refused(registering!.entry), ['b']);
    assert.equal(book.size, 1);
  });

  test('an entry let go while being registered is unregistered once confirmed; wanted again while unregistering, registered again once released', () => {
    const book = new RegistrationBook<string>(41);
    book.add('a', 'T', '1');
    const [first] = book.work();
    book.remove('a', 'T', '1');
    book.confirmed(first!.entry);
    const [second] = book.work();
    assert.equal(second!.register, false);
    assert.equal(book.add('b', 'T', '1'), 'waiting');
    book.released(second!.entry);
    assert.deepEqual(
      book.work().map((w) => w.register),
      [true],
    );
  });
});

describe('KIS messages', () => {
  const request = (header: Record<string, unknown>, input: Record<string, unknown> = { tr_id: 'H0STCNT0', tr_key: '005930' }) =>
    JSON.stringify({ header: { approval_key: 'k', custtype: 'P', tr_type: '1', 'content-type': 'utf-8', ...header }, body: { input } });

  test('a client message read as the broker reads it', () => {
    assert.deepEqual(readKisClientMessage(request({})), { kind: 'request', approvalKey: 'k', register: true, trId: 'H0STCNT0', trKey: '005930' });
    assert.deepEqual(readKisClientMessage(request({ tr_type: '2' })), {
      kind: 'request',
      approvalKey: 'k',
      register: false,
      trId: 'H0STCNT0',
      trKey: '005930',
    });
    assert.deepEqual(readKisClientMessage('{"header":{"tr_id":"PINGPONG","datetime":"20261120090000"}}'), { kind: 'pingpong' });
    const refusal = (text: string) => {
      const m = readKisClientMessage(text);
      return m.kind === 'malformed' ? m.answer.code : m.kind === 'request' ? m.refusal?.code : m.kind;
    };
    assert.equal(refusal('nope'), 'OPSP9999');
    assert.equal(refusal('[1]'), 'OPSP9999');
    assert.equal(refusal('{"body":{}}'), 'OPSP9998');
    assert.equal(refusal('{"header":{}}'), 'OPSP9992');
    assert.equal(refusal('{"header":{},"body":{}}'), 'OPSP9991');
    assert.equal(refusal(request({ custtype: 'X' })), 'OPSP8998');
    assert.equal(refusal(request({ tr_type: '3' })), 'OPSP8997');
    assert.equal(refusal(request({}, { tr_id: 'h0stcnt0', tr_key: '005930' })), 'OPSP8991');
    assert.equal(refusal(request({}, { tr_id: 'H0STCNT0' })), 'OPSP9990');
    assert.equal(refusal(request({}, { tr_id: 'H0STCNT0', tr_key: 'a b' })), 'OPSP8992');
  });

  test('answers in the broker’s shape; the sidecar’s own refusals say so in msg1', () => {
    assert.equal(
      kisControl(KIS_ANSWERS.subscribed, 'H0STCNI0', 'trader01', true, { iv: '0123456789abcdef', key: 'k'.repeat(32) }),
      `{"header":{"tr_id":"H0STCNI0","tr_key":"trader01","encrypt":"Y"},"body":{"rt_cd":"0","msg_cd":"OPSP0000","msg1":"SUBSCRIBE SUCCESS","output":{"iv":"0123456789abcdef","key":"${'k'.repeat(32)}"}}}`,
    );
    assert.equal(
      kisControl(KIS_ANSWERS.maxSubscriptions, 'H0STCNT0', '1', false, undefined, 'full'),
      '{"header":{"tr_id":"H0STCNT0","tr_key":"1","encrypt":"N"},"body":{"rt_cd":"1","msg_cd":"OPSP0008","msg1":"MAX SUBSCRIBE OVER (broker-token-sidecar: full)"}}',
    );
    assert.deepEqual(['H0STCNI0', 'H0STCNI9', 'H0GSCNI0', 'H0STCNT0', 'H0STASP0'].map(isFillTr), [true, true, true, false, false]);
  });

  test('PINGPONG carries Korean time, whatever the host’s zone: 16:00 UTC is 01:00 the next day in Seoul', () => {
    assert.equal(kisPingpong(Date.UTC(2026, 10, 20, 16, 0, 0)), '{"header":{"tr_id":"PINGPONG","datetime":"20261121010000"}}');
    assert.equal(kisPingpong(Date.UTC(2026, 10, 20, 0, 30, 5)), '{"header":{"tr_id":"PINGPONG","datetime":"20261120093005"}}');
  });

  test('the broker’s frames: a data frame’s TR and payload, a control answer’s fields, the routing key of an encrypted record', () => {
    assert.deepEqual(readKisUpstream('0|H0STCNT0|002|005930^1^2005930^3'), { kind: 'data', trId: 'H0STCNT0', encrypted: false, payload: '005930^1^2005930^3' });
    assert.deepEqual(readKisUpstream('{"header":{"tr_id":"PINGPONG","datetime":"x"}}'), { kind: 'pingpong' });
    assert.deepEqual(
      readKisUpstream('{"header":{"tr_id":"H0STCNT0","tr_key":"005930","encrypt":"N"},"body":{"rt_cd":"1","msg_cd":"OPSP0008","msg1":"MAX SUBSCRIBE OVER"}}'),
      {
        kind: 'control',
        trId: 'H0STCNT0',
        trKey: '005930',
        code: 'OPSP0008',
        ok: false,
        encrypt: false,
        output: undefined,
      },
    );
    assert.deepEqual(readKisUpstream('garbage'), { kind: 'other' });
    const cipher = { key: 'abcdefghijklmnopqrstuvwxyzabcdef', iv: '0123456789abcdef' };
    const aes = createCipheriv('aes-256-cbc', Buffer.from(cipher.key), Buffer.from(cipher.iv));
    const encrypted = Buffer.concat([aes.update('trader01^5000000001^0000000001'), aes.final()]).toString('base64');
    assert.equal(firstField(encrypted, true, cipher), 'trader01');
    assert.equal(firstField(encrypted, true, undefined), undefined);
    assert.equal(firstField('005930^x', false, undefined), '005930');
  });
});

describe('Kiwoom messages', () => {
  test('REG and REMOVE checked whole; types times items become pairs', () => {
    assert.deepEqual(readKiwoomClientMessage('{"trnm":"REG","grp_no":"1","refresh":"0","data":[{"item":["005930","000660"],"type":["0B","0D"]}]}'), {
      kind: 'change',
      trnm: 'REG',
      group: '1',
      refresh: false,
      pairs: [
        { id: '0B', key: '005930' },
        { id: '0B', key: '000660' },
        { id: '0D', key: '005930' },
        { id: '0D', key: '000660' },
      ],
    });
    const refusedOn = (text: string) => {
      const m = readKiwoomClientMessage(text);
      return m.kind === 'refused' ? m.refusal.returnMsg.replace(/.*\((\w+)\)\].*/, '$1') : m.kind;
    };
    assert.equal(refusedOn('{"trnm":"REG","data":[]}'), 'grp_no');
    assert.equal(refusedOn('{"trnm":"REG","grp_no":"12345","data":[]}'), 'grp_no');
    assert.equal(refusedOn('{"trnm":"REG","grp_no":"1","refresh":"2","data":[]}'), 'refresh');
    assert.equal(refusedOn('{"trnm":"REG","grp_no":"1","data":[{"item":["00 5930"],"type":["0B"]}]}'), 'item');
    assert.equal(refusedOn('{"trnm":"REG","grp_no":"1","data":[{"item":["005930"],"type":[]}]}'), 'type');
    assert.match(refusedOn('{"trnm":"CNSRLST"}'), /1504.*not served through the real-time endpoint/);
    assert.equal(refusedOn('not json'), 'ignored');
    assert.deepEqual(readKiwoomClientMessage('{"trnm":"PING"}'), { kind: 'ping' });
  });

  test('upstream: REG always with refresh "1" in the sidecar’s group, grouped by type; REAL pairs and SYSTEM read', () => {
    assert.equal(
      kiwoomChange('REG', '1', [
        { id: '0B', key: '005930' },
        { id: '0D', key: '005930' },
        { id: '0B', key: '000660' },
      ]),
      '{"trnm":"REG","grp_no":"1","refresh":"1","data":[{"item":["005930","000660"],"type":["0B"]},{"item":["005930"],"type":["0D"]}]}',
    );
    assert.deepEqual(readKiwoomUpstream('{"data":[{"type":"0B","name":"x","item":"005930","values":{}}],"trnm":"REAL"}'), {
      kind: 'real',
      pairs: [{ id: '0B', key: '005930' }],
    });
    assert.deepEqual(readKiwoomUpstream('{"trnm":"SYSTEM","code":"R10001","message":"m"}'), { kind: 'system', code: 'R10001', message: 'm' });
    assert.deepEqual(readKiwoomUpstream('{"trnm":"REG","return_code":0,"return_msg":""}'), {
      kind: 'answer',
      trnm: 'REG',
      ok: true,
      returnCode: 0,
      returnMsg: '',
      pairs: [],
    });
    // With replicas, the holder's answer names the pairs it concerns (the broker's name none).
    assert.deepEqual(
      readKiwoomUpstream(
        kiwoomPairsAnswer(
          [
            { id: '0B', key: '005930' },
            { id: '0D', key: '000660' },
          ],
          { returnCode: 2, returnMsg: 'full' },
        ),
      ),
      {
        kind: 'answer',
        trnm: 'REG',
        ok: false,
        returnCode: 2,
        returnMsg: 'full',
        pairs: [
          { id: '0B', key: '005930' },
          { id: '0D', key: '000660' },
        ],
      },
    );
  });
});

describe('realtime: config', () => {
  const account = (extra = '') =>
    `accounts:\n  - name: main\n    provider: kis\n    appKey: "${'P'.repeat(36)}"\n    appSecret: "${'s'.repeat(180)}"\n${extra}    sinks: []\n`;
  const gateway = `gateway:\n  enabled: true\n  clients:\n    - { name: bot, accounts: [main], appKey: "GW${'k'.repeat(34)}", appSecretSha256: "${'0'.repeat(64)}" }\n`;
  const problems = (text: string) => {
    try {
      parseTestConfig(text, '/tmp/rt-config');
      return [];
    } catch (error) {
      return (error as ConfigError).message
        .split('\n')
        .filter((l) => l.includes(': '))
        .map((l) => l.trim().replace(/^- /, ''));
    }
  };

  test('off by default, loopback on 9466; the brokers’ WebSocket hosts by default, the REST base’s origin elsewhere', () => {
    const config = parseTestConfig(`${gateway}${account()}`, '/tmp/rt-config');
    assert.deepEqual([config.realtime.enabled, config.realtime.host, config.realtime.port, config.realtime.keepOpen], [false, '127.0.0.1', 9466, false]);
    assert.equal(config.accounts[0]!.websocketUrl, 'ws://ops.koreainvestment.com:21000');
    const mock = parseTestConfig(`${gateway}${account('    env: mock\n')}`, '/tmp/rt-config');
    assert.equal(mock.accounts[0]!.websocketUrl, 'ws://ops.koreainvestment.com:31000');
    const simulated = parseTestConfig(`${gateway}${account('    baseUrl: http://127.0.0.1:8080\n')}`, '/tmp/rt-config');
    assert.equal(simulated.accounts[0]!.websocketUrl, 'ws://127.0.0.1:8080', 'never the real broker for an account pointed elsewhere');
    const given = parseTestConfig(`${gateway}${account('    websocketUrl: ws://proxy:9000/\n')}`, '/tmp/rt-config');
    assert.equal(given.accounts[0]!.websocketUrl, 'ws://proxy:9000');
  });

  test('enabled without the gateway, fills of an unknown client, a backoff whose cap is under its start: each named', () => {
    assert.deepEqual(
      problems(`realtime: { enabled: true }\n${account()}`).filter((p) => p.startsWith('realtime')),
      [
        'realtime.enabled: needs the gateway (gateway.enabled: true): clients connect with their gateway credentials (KIS: the approval key its Approval gives; Kiwoom: its local token)',
      ],
    );
    assert.deepEqual(
      problems(`${gateway}realtime: { enabled: true, fills: { nobody: [trader01] }, reconnect: { initialDelay: 10s, maxDelay: 5s } }\n${account()}`),
      ['realtime.fills.nobody: names no client of the gateway', 'realtime.reconnect.maxDelay: must not be shorter than initialDelay (10s)'],
    );
    assert.deepEqual(problems(`${gateway}realtime: { stallTimeout: 1s }\n${account()}`), ['realtime.stallTimeout: must be at least 3s']);
    assert.deepEqual(problems(`${gateway}${account('    websocketUrl: https://x\n')}`), ['accounts[0].websocketUrl: must be a ws(s) URL']);
  });
});

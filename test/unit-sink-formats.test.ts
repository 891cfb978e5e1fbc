import { pythonKisFileName } from '../src/config/resolve-sinks';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { JsonLayout, JsonSinkConfig, KisAuthSinkConfig, PythonKisSinkConfig, ApprovalKeySinkConfig, SinkConfig } from '../src/config/types';
import { kisAuthStamps, nextKisAuthChange, readSinkToken, renderSink, sinkDirectory, sinkPaths, type TokenInFile, type TokenView } from '../src/sinks/formats';
import { FILE_ACCESS, HOUR, KIS_APP_KEY, KIWOOM_TOKEN, MINUTE, T0, kisClaims, kisJwt } from './unit-fixtures';

/**
 * The files of docs/brokers.md#token-files as pure functions of the token: exact bytes per format, the token
 * read back the way each consumer reads it, and the daily kis-auth names around midnight in each reader zone.
 * T0 is 2026-11-20 09:00:00 KST (00:00:00 UTC); the token expires a day later.
 */

const jwt = kisJwt(kisClaims(T0));
const common = { access: FILE_ACCESS, notify: undefined };

function kisAuth(overrides: Partial<KisAuthSinkConfig> = {}): KisAuthSinkConfig {
  return {
    ...common,
    name: 'kis',
    format: 'kis-auth',
    dir: '/shared/KIS/config',
    readerTimeZones: ['Asia/Seoul', 'UTC'],
    writeAheadMs: 10 * MINUTE,
    validDateTimeZone: 'Asia/Seoul',
    keepDays: 7,
    ...overrides,
  };
}
function jsonSink(layout: JsonLayout, timeZone = 'Asia/Seoul'): JsonSinkConfig {
  return { ...common, name: 'json', format: 'json', path: '/shared/tokens/main.json', layout, timeZone };
}
const pythonKisDir = '/home/bot/.pykis/cache';
const pythonKis: PythonKisSinkConfig = { ...common, name: 'pykis', format: 'python-kis', dir: pythonKisDir, path: join(pythonKisDir, 'token_real_x.json') };
const approvalKey: ApprovalKeySinkConfig = { ...common, name: 'ws', format: 'approval-key', path: '/shared/tokens/approval_key' };

const kisRaw = { access_token: jwt, access_token_token_expired: '2026-11-21 09:00:00', token_type: 'Bearer', expires_in: 86400 };
const view: TokenView = { accessToken: jwt, tokenType: 'Bearer', expiresAt: T0 + 24 * HOUR, issuedAt: T0 + 123, raw: kisRaw, approvalKey: undefined };
const kiwoomRaw = { expires_dt: '20261121090000', token_type: 'bearer', token: KIWOOM_TOKEN, return_code: 0, return_msg: '정상적으로 처리되었습니다' };
const kiwoomView: TokenView = {
  accessToken: KIWOOM_TOKEN,
  tokenType: 'bearer',
  expiresAt: T0 + 24 * HOUR,
  issuedAt: T0 + 2000,
  raw: kiwoomRaw,
  approvalKey: undefined,
};

describe('renderSink: the exact bytes', () => {
  test('kis-auth: the two lines kis_auth.py writes, valid-date as a KST wall clock', () => {
    assert.equal(renderSink(kisAuth(), view), `token: ${jwt}\nvalid-date: 2026-11-21 09:00:00\n`);
  });
  test('kis-auth for UTC readers: valid-date as a UTC wall clock', () => {
    assert.equal(renderSink(kisAuth({ validDateTimeZone: 'UTC' }), view), `token: ${jwt}\nvalid-date: 2026-11-21 00:00:00\n`);
  });
  test('json kis-client: naive wall clocks with microseconds, expires_in from the two instants', () => {
    assert.equal(
      renderSink(jsonSink('kis-client'), view),
      `{\n  "access_token": "${jwt}",\n  "token_type": "Bearer",\n  "expires_in": 86400,\n  "issued_at": "2026-11-20T09:00:00.123000",\n  "expiry_datetime": "2026-11-21T09:00:00.000000"\n}\n`,
    );
  });

  const layouts: Array<[string, SinkConfig, TokenView, Record<string, unknown>]> = [
    [
      'json kis-client in UTC',
      jsonSink('kis-client', 'UTC'),
      view,
      { access_token: jwt, token_type: 'Bearer', expires_in: 86400, issued_at: '2026-11-20T00:00:00.123000', expiry_datetime: '2026-11-21T00:00:00.000000' },
    ],
    [
      'json overseas-cache: ISO with the KST offset',
      jsonSink('overseas-cache'),
      view,
      { access_token: jwt, expires_at: '2026-11-21T09:00:00+09:00', cached_at: '2026-11-20T09:00:00+09:00' },
    ],
    [
      'json kiwoom-token in UTC: +00:00',
      jsonSink('kiwoom-token', 'UTC'),
      kiwoomView,
      { access_token: KIWOOM_TOKEN, expires_at: '2026-11-21T00:00:00+00:00', created_at: '2026-11-20T00:00:02+00:00' },
    ],
    [
      'json kiwoom-token in New York: a negative offset, the previous day',
      jsonSink('kiwoom-token', 'America/New_York'),
      kiwoomView,
      { access_token: KIWOOM_TOKEN, expires_at: '2026-11-20T19:00:00-05:00', created_at: '2026-11-19T19:00:02-05:00' },
    ],
    ['json raw: the KIS answer as received', jsonSink('raw'), view, kisRaw],
    ['json raw: the Kiwoom answer as received', jsonSink('raw'), kiwoomView, kiwoomRaw],
    ['python-kis: the tokenP answer, all four fields there', pythonKis, view, kisRaw],
    [
      'python-kis from an answer lacking the fields (an adopted token): filled in from what the sidecar knows',
      pythonKis,
      { ...view, raw: {} },
      { access_token: jwt, token_type: 'Bearer', expires_in: 86400, access_token_token_expired: '2026-11-21 09:00:00' },
    ],
    [
      "python-kis: an expires_in that is not a number is replaced; other fields kept; the token is the view's",
      pythonKis,
      { ...view, raw: { ...kisRaw, access_token: 'stale-token-in-raw-0000', expires_in: '86400', scope: 'oob' } },
      { ...kisRaw, access_token: jwt, expires_in: 86400, scope: 'oob' },
    ],
  ];
  for (const [what, sink, tokenView, expected] of layouts) {
    test(what, () => {
      const content = renderSink(sink, tokenView);
      assert.equal(content?.endsWith('}\n'), true, 'a JSON object and a newline');
      assert.deepEqual(JSON.parse(content), expected);
    });
  }

  test('approval-key: the key and a newline', () => {
    assert.equal(renderSink(approvalKey, { ...view, approvalKey: 'a1b2c3d4-e5f6-7890-abcd-ef1234567890' }), 'a1b2c3d4-e5f6-7890-abcd-ef1234567890\n');
  });
  test('approval-key without a key yet: nothing to write', () => {
    assert.equal(renderSink(approvalKey, view), undefined);
  });
  test('the same token renders the same bytes (files are checked by comparison)', () => {
    for (const sink of [kisAuth(), jsonSink('kis-client'), jsonSink('overseas-cache'), jsonSink('raw'), pythonKis]) {
      assert.equal(renderSink(sink, { ...view, raw: { ...kisRaw } }), renderSink(sink, view), sink.name);
    }
  });
});

describe('readSinkToken: round trips for every format', () => {
  // A view whose expiry has milliseconds: the seconds-only formats keep the second.
  const msView: TokenView = { ...view, expiresAt: T0 + 24 * HOUR - 1, raw: { ...kisRaw, access_token_token_expired: '2026-11-21 08:59:59' } };
  const secondsOnly = T0 + 24 * HOUR - 1000;
  const rows: Array<[string, SinkConfig, TokenView, TokenInFile]> = [
    ['kis-auth, KST', kisAuth(), view, { accessToken: jwt, expiresAt: T0 + 24 * HOUR }],
    ['kis-auth, UTC valid-date', kisAuth({ validDateTimeZone: 'UTC' }), view, { accessToken: jwt, expiresAt: T0 + 24 * HOUR }],
    ['kis-auth, New York valid-date', kisAuth({ validDateTimeZone: 'America/New_York' }), view, { accessToken: jwt, expiresAt: T0 + 24 * HOUR }],
    ['kis-auth, an expiry with milliseconds: to the second', kisAuth(), msView, { accessToken: jwt, expiresAt: secondsOnly }],
    ['json kis-client, KST', jsonSink('kis-client'), view, { accessToken: jwt, expiresAt: T0 + 24 * HOUR }],
    ['json kis-client, UTC, milliseconds kept', jsonSink('kis-client', 'UTC'), msView, { accessToken: jwt, expiresAt: T0 + 24 * HOUR - 1 }],
    ['json overseas-cache, KST', jsonSink('overseas-cache'), view, { accessToken: jwt, expiresAt: T0 + 24 * HOUR }],
    ['json overseas-cache, New York, to the second', jsonSink('overseas-cache', 'America/New_York'), msView, { accessToken: jwt, expiresAt: secondsOnly }],
    ['json kiwoom-token, KST', jsonSink('kiwoom-token'), kiwoomView, { accessToken: KIWOOM_TOKEN, expiresAt: T0 + 24 * HOUR }],
    ['json kiwoom-token, UTC', jsonSink('kiwoom-token', 'UTC'), kiwoomView, { accessToken: KIWOOM_TOKEN, expiresAt: T0 + 24 * HOUR }],
    ['json raw, a KIS answer', jsonSink('raw'), view, { accessToken: jwt, expiresAt: T0 + 24 * HOUR }],
    ['json raw, a Kiwoom answer (token, expires_dt)', jsonSink('raw', 'UTC'), kiwoomView, { accessToken: KIWOOM_TOKEN, expiresAt: T0 + 24 * HOUR }],
    ['python-kis', pythonKis, view, { accessToken: jwt, expiresAt: T0 + 24 * HOUR }],
    ['python-kis from an empty answer', pythonKis, { ...msView, raw: {} }, { accessToken: jwt, expiresAt: secondsOnly }],
  ];
  for (const [what, sink, tokenView, expected] of rows) {
    test(what, () => assert.deepEqual(readSinkToken(sink, renderSink(sink, tokenView)!), expected));
  }
  test('approval-key: holds no access token to read back', () => {
    const sink = approvalKey;
    assert.equal(readSinkToken(sink, renderSink(sink, { ...view, approvalKey: 'a1b2c3d4-e5f6-7890-abcd-ef1234567890' })!), undefined);
  });
});

describe('readSinkToken: files as others left them', () => {
  const rows: Array<[string, SinkConfig, string, TokenInFile | undefined]> = [
    ['kis-auth: the empty file kis_auth.py creates at import', kisAuth(), '', undefined],
    ['kis-auth: a token line with nothing after it', kisAuth(), 'token: \nvalid-date: 2026-11-21 09:00:00\n', undefined],
    ['kis-auth: no valid-date, the token still read', kisAuth(), `token: ${jwt}\n`, { accessToken: jwt, expiresAt: undefined }],
    ['kis-auth: a valid-date that is no date', kisAuth(), `token: ${jwt}\nvalid-date: tomorrow\n`, { accessToken: jwt, expiresAt: undefined }],
    [
      'kis-auth: a quoted valid-date is read the same',
      kisAuth(),
      `token: ${jwt}\nvalid-date: '2026-11-21 09:00:00'\n`,
      { accessToken: jwt, expiresAt: T0 + 24 * HOUR },
    ],
    ['kis-auth: broken YAML', kisAuth(), 'token: [eyJ\nvalid-date: 2026', undefined],
    ['kis-auth: a token YAML reads as a number', kisAuth(), 'token: 1234567890123456\n', undefined],
    ['kis-auth: a YAML list', kisAuth(), '- token\n- x\n', undefined],
    [
      "json kis-client: the client's own file (naive times, microseconds), read in the sink zone",
      jsonSink('kis-client'),
      JSON.stringify({
        access_token: jwt,
        token_type: 'Bearer',
        expires_in: 86400,
        issued_at: '2025-11-03T19:45:30.123456',
        expiry_datetime: '2025-11-04T19:45:30.123456',
      }),
      { accessToken: jwt, expiresAt: Date.UTC(2025, 10, 4, 10, 45, 30, 123) },
    ],
    [
      'json overseas-cache: an explicit offset wins over the sink zone',
      jsonSink('overseas-cache', 'UTC'),
      JSON.stringify({ access_token: jwt, expires_at: '2026-11-21T09:00:00+09:00', cached_at: '2026-11-20T09:00:00+09:00' }),
      { accessToken: jwt, expiresAt: T0 + 24 * HOUR },
    ],
    [
      'json kiwoom-token: no expires_at',
      jsonSink('kiwoom-token'),
      JSON.stringify({ access_token: KIWOOM_TOKEN }),
      { accessToken: KIWOOM_TOKEN, expiresAt: undefined },
    ],
    [
      'json: a "token" field is read when access_token is missing',
      jsonSink('kiwoom-token'),
      JSON.stringify({ token: KIWOOM_TOKEN }),
      { accessToken: KIWOOM_TOKEN, expiresAt: undefined },
    ],
    ['json: an empty access_token', jsonSink('raw'), '{"access_token": ""}', undefined],
    ['json: an access_token that is a number', jsonSink('raw'), '{"access_token": 42}', undefined],
    ['json: an array', jsonSink('raw'), '[]', undefined],
    ['json: null', jsonSink('raw'), 'null', undefined],
    ['json: cut off', jsonSink('raw'), '{"access_token": "eyJ', undefined],
    [
      'python-kis: the expiry is always KST',
      pythonKis,
      JSON.stringify({ access_token: jwt, access_token_token_expired: '2026-11-21 09:00:00' }),
      { accessToken: jwt, expiresAt: T0 + 24 * HOUR },
    ],
    ['approval-key: nothing', approvalKey, 'a1b2c3d4\n', undefined],
  ];
  for (const [what, sink, content, expected] of rows) {
    test(what, () => assert.deepEqual(readSinkToken(sink, content), expected));
  }
});

describe('kisAuthStamps and nextKisAuthChange: one file per date a reader may compute', () => {
  const at = (day: number, hour: number, minute = 0) => Date.UTC(2026, 10, day, hour, minute);
  const rows: Array<[string, Partial<KisAuthSinkConfig>, number, string[], number]> = [
    // what, sink overrides, now, stamps, next change
    ['09:00 KST: KST and UTC agree', {}, at(20, 0), ['20261120'], at(20, 14, 50)],
    ['23:49 KST: still one date', {}, at(20, 14, 49), ['20261120'], at(20, 14, 50)],
    ['23:50 KST: the next KST day is written ahead', {}, at(20, 14, 50), ['20261120', '20261121'], at(20, 23, 50)],
    ['01:00 KST: the KST date and the UTC date differ', {}, at(20, 16), ['20261121', '20261120'], at(20, 23, 50)],
    ['08:50 KST (23:50 UTC): the next UTC day is written ahead', {}, at(20, 23, 50), ['20261121', '20261120'], at(21, 14, 50)],
    ['09:00 KST the next day: one date again', {}, at(21, 0), ['20261121'], at(21, 14, 50)],
    ['no write-ahead: the change at midnight itself', { writeAheadMs: 0 }, at(20, 14, 59), ['20261120'], at(20, 15)],
    ['a New York reader alone', { readerTimeZones: ['America/New_York'] }, at(20, 0), ['20261119'], at(20, 4, 50)],
    ['KST alone, an hour of write-ahead', { readerTimeZones: ['Asia/Seoul'], writeAheadMs: HOUR }, at(20, 14), ['20261120', '20261121'], at(21, 14)],
  ];
  for (const [what, overrides, now, stamps, next] of rows) {
    test(what, () => {
      const sink = kisAuth(overrides);
      assert.deepEqual([kisAuthStamps(sink, now), nextKisAuthChange(sink, now)], [stamps, next]);
    });
  }
  test('a New York reader across the end of daylight saving (2026-11-01): the next midnight is 05:00 UTC', () => {
    const sink = kisAuth({ readerTimeZones: ['America/New_York'], writeAheadMs: 0 });
    // 2026-10-31 12:00 EDT; the next local midnight (2026-11-01 00:00) is still EDT, at 04:00 UTC.
    assert.equal(nextKisAuthChange(sink, Date.UTC(2026, 9, 31, 16)), Date.UTC(2026, 10, 1, 4));
    // 2026-11-01 12:00 EST; the next local midnight is EST, at 05:00 UTC.
    assert.equal(nextKisAuthChange(sink, Date.UTC(2026, 10, 1, 17)), Date.UTC(2026, 10, 2, 5));
  });
});

describe('sinkPaths and sinkDirectory', () => {
  test('kis-auth: one KIS{date} file per stamp, in its directory', () => {
    const sink = kisAuth();
    assert.deepEqual(sinkPaths(sink, Date.UTC(2026, 10, 20, 16)), ['/shared/KIS/config/KIS20261121', '/shared/KIS/config/KIS20261120']);
    assert.equal(sinkDirectory(sink), '/shared/KIS/config');
  });
  const single: Array<[string, SinkConfig, string, string]> = [
    ['json: its path', jsonSink('raw'), '/shared/tokens/main.json', '/shared/tokens'],
    ['python-kis: its computed path', pythonKis, join(pythonKisDir, 'token_real_x.json'), pythonKisDir],
    ['approval-key: its path', approvalKey, '/shared/tokens/approval_key', '/shared/tokens'],
  ];
  for (const [what, sink, path, dir] of single) {
    test(what, () => assert.deepEqual([sinkPaths(sink, T0), sinkDirectory(sink)], [[path], dir]));
  }
});

describe('pythonKisFileName', () => {
  const secret = 'S'.repeat(180);
  // The digest computed apart from this code: python3 -c "import hashlib; print(hashlib.sha1(('pykis'+'myhtsid'+key+secret+'token').encode()).hexdigest())"
  const digest = '24e1374510ecfcec2e53f547ccfcc8bc3dfd0912';
  test('real: token_real_{id}_{sha1}.json', () => {
    assert.equal(pythonKisFileName('real', 'myhtsid', KIS_APP_KEY, secret), `token_real_myhtsid_${digest}.json`);
  });
  test('mock: python-kis calls it virtual', () => {
    assert.equal(pythonKisFileName('mock', 'myhtsid', KIS_APP_KEY, secret), `token_virtual_myhtsid_${digest}.json`);
  });
  test('another secret, another name (the secret enters the digest)', () => {
    assert.notEqual(pythonKisFileName('real', 'myhtsid', KIS_APP_KEY, `${'S'.repeat(179)}T`), `token_real_myhtsid_${digest}.json`);
  });
});

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerError, type RenewalFailureReason } from '../src/core/errors';
import type { BrokerHttpResponse } from '../src/providers/broker-http';
import { classifyKisError, parseKisProofAnswer, parseKisTokenAnswer } from '../src/providers/kis';
import type { IssuedToken, ProofOutcome } from '../src/providers/types';
import { HOUR, SECOND, T0, json, kisClaims, kisJwt, notJson } from './unit-fixtures';

/**
 * The KIS answers of docs/brokers.md#kis-token-issuance and #kis-errors, as bodies, through the parsers.
 * T0 is 2026-11-20 09:00:00 KST; the answer arrives 2 s later; a token lives 24 h.
 */

const receivedAt = T0 + 2 * SECOND;
const maxLifetime = 24 * HOUR;
const token = kisJwt(kisClaims(T0));

function tokenP(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { access_token: token, access_token_token_expired: '2026-11-21 09:00:00', token_type: 'Bearer', expires_in: 86400, ...fields };
}

type Expected = { token: Partial<IssuedToken> } | { error: RenewalFailureReason; message: string | RegExp; detail?: BrokerError['detail'] };

function check(response: BrokerHttpResponse, expected: Expected): void {
  if ('token' in expected) {
    const issued = parseKisTokenAnswer(response, receivedAt, maxLifetime);
    const picked = Object.fromEntries(Object.keys(expected.token).map((key) => [key, issued[key as keyof IssuedToken]]));
    assert.deepEqual(picked, expected.token);
    return;
  }
  assert.throws(
    () => parseKisTokenAnswer(response, receivedAt, maxLifetime),
    (error: unknown) => {
      assert.ok(error instanceof BrokerError, `a BrokerError, not ${String(error)}`);
      assert.equal(error.code, expected.error);
      if (typeof expected.message === 'string') assert.equal(error.message, expected.message);
      else assert.match(error.message, expected.message);
      if (expected.detail) assert.deepEqual(error.detail, expected.detail);
      return true;
    },
  );
}

describe('parseKisTokenAnswer', () => {
  test('the documented answer: the token, its KST expiry, the JWT iat as issuance, the body as raw', () => {
    const body = tokenP();
    assert.deepEqual(parseKisTokenAnswer(json(200, body), receivedAt, maxLifetime), {
      accessToken: token,
      tokenType: 'Bearer',
      expiresAt: T0 + 24 * HOUR,
      issuedAt: T0,
      raw: body,
      expiryClamped: false,
    });
  });

  const rows: Array<[string, BrokerHttpResponse, Expected]> = [
    ['expires_in is never read: 60 s in it changes nothing', json(200, tokenP({ expires_in: 60 })), { token: { expiresAt: T0 + 24 * HOUR } }],
    [
      'access_token_token_expired wins over the JWT exp',
      json(200, tokenP({ access_token: kisJwt(kisClaims(T0, T0 + 20 * HOUR)) })),
      { token: { expiresAt: T0 + 24 * HOUR } },
    ],
    [
      'no access_token_token_expired: the JWT exp',
      json(200, { access_token: kisJwt(kisClaims(T0, T0 + 20 * HOUR)), token_type: 'Bearer', expires_in: 86400 }),
      { token: { expiresAt: T0 + 20 * HOUR } },
    ],
    [
      'an opaque token and no access_token_token_expired: refused, expires_in is no reference',
      json(200, { access_token: 'opaque-token-0123456789', token_type: 'Bearer', expires_in: 86400 }),
      { error: 'bad_response', message: 'KIS tokenP: answer has neither access_token_token_expired nor a JWT exp' },
    ],
    ['an opaque token: issued when the answer arrived', json(200, tokenP({ access_token: 'opaque-token-0123456789' })), { token: { issuedAt: receivedAt } }],
    [
      'an iat 5 min ahead of our clock is believed',
      json(200, tokenP({ access_token: kisJwt(kisClaims(T0 + 302 * SECOND)) })),
      { token: { issuedAt: T0 + 302 * SECOND } },
    ],
    [
      'an iat more than 5 min ahead is not: the arrival time',
      json(200, tokenP({ access_token: kisJwt({ ...kisClaims(T0), iat: (T0 + 303 * SECOND) / 1000 }) })),
      { token: { issuedAt: receivedAt } },
    ],
    [
      'an iat that is not a number: the arrival time',
      json(200, tokenP({ access_token: kisJwt({ ...kisClaims(T0), iat: '1795132800' }) })),
      { token: { issuedAt: receivedAt } },
    ],
    ['no token_type: Bearer', json(200, tokenP({ token_type: undefined })), { token: { tokenType: 'Bearer' } }],
    ['an empty token_type: Bearer', json(200, tokenP({ token_type: '' })), { token: { tokenType: 'Bearer' } }],
    ['token_type as given', json(200, tokenP({ token_type: 'bearer' })), { token: { tokenType: 'bearer' } }],
    [
      'an expiry 24 h 10 min after issuance: within the allowance, kept',
      json(200, tokenP({ access_token_token_expired: '2026-11-21 09:10:00' })),
      { token: { expiresAt: T0 + 24 * HOUR + 10 * 60 * SECOND, expiryClamped: false } },
    ],
    [
      'an expiry one second past the allowance: cut to 24 h after issuance',
      json(200, tokenP({ access_token_token_expired: '2026-11-21 09:10:01' })),
      { token: { expiresAt: T0 + 24 * HOUR, expiryClamped: true } },
    ],
    [
      'an expiry 61 s after arrival: accepted',
      json(200, tokenP({ access_token_token_expired: '2026-11-20 09:01:03' })),
      { token: { expiresAt: T0 + 63 * SECOND } },
    ],
    [
      'an expiry 60 s after arrival: already past',
      json(200, tokenP({ access_token_token_expired: '2026-11-20 09:01:02' })),
      { error: 'bad_response', message: 'KIS tokenP: expiry 2026-11-20T00:01:02.000Z is already past' },
    ],
    [
      'an ISO expiry is not the documented form',
      json(200, tokenP({ access_token_token_expired: '2026-11-21T09:00:00' })),
      { error: 'bad_response', message: 'KIS tokenP: access_token_token_expired "2026-11-21T09:00:00" is not YYYY-MM-DD HH:MM:SS' },
    ],
    [
      'a date that does not exist (30 February)',
      json(200, tokenP({ access_token_token_expired: '2027-02-30 09:00:00' })),
      { error: 'bad_response', message: 'KIS tokenP: access_token_token_expired "2027-02-30 09:00:00" is not YYYY-MM-DD HH:MM:SS' },
    ],
    ['no access_token', json(200, tokenP({ access_token: undefined })), { error: 'bad_response', message: 'KIS tokenP: no token in the answer' }],
    [
      'an access_token that is a number',
      json(200, tokenP({ access_token: 1234567890123456 })),
      { error: 'bad_response', message: 'KIS tokenP: no token in the answer' },
    ],
    [
      'a 10-character token',
      json(200, tokenP({ access_token: 'eyJ0eXAiOi' })),
      { error: 'bad_response', message: 'KIS tokenP: token of implausible length (10 characters)' },
    ],
    [
      'a token with a space in it',
      json(200, tokenP({ access_token: 'eyJ0eXAiOiJKV1Qi LCJhbGciOiJIUzUxMiJ9' })),
      { error: 'bad_response', message: 'KIS tokenP: token contains characters a token cannot have' },
    ],
    [
      'EGW00133, issuance too frequent (the captured body)',
      json(403, { error_description: '접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)', error_code: 'EGW00133' }),
      {
        error: 'rate_limited',
        message: 'KIS tokenP: HTTP 403 EGW00133 (접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회))',
        detail: { status: 403, brokerCode: 'EGW00133' },
      },
    ],
    [
      'EGW00103, app key not valid',
      json(403, { error_description: '유효하지 않은 AppKey입니다.', error_code: 'EGW00103' }),
      { error: 'auth_rejected', message: 'KIS tokenP: HTTP 403 EGW00103 (유효하지 않은 AppKey입니다.)', detail: { status: 403, brokerCode: 'EGW00103' } },
    ],
    [
      'EGW00105, app secret not valid',
      json(403, { error_description: '유효하지 않은 AppSecret입니다.', error_code: 'EGW00105' }),
      { error: 'auth_rejected', message: 'KIS tokenP: HTTP 403 EGW00105 (유효하지 않은 AppSecret입니다.)' },
    ],
    [
      'an error_code in an HTTP 200 answer is still an error',
      json(200, { error_description: '접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)', error_code: 'EGW00133' }),
      { error: 'rate_limited', message: 'KIS tokenP: HTTP 200 EGW00133 (접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회))' },
    ],
    [
      'HTTP 429 without a body: rate_limited',
      notJson(429, ''),
      { error: 'rate_limited', message: 'KIS tokenP: HTTP 429', detail: { status: 429, brokerCode: undefined } },
    ],
    ['HTTP 401: auth_rejected', json(401, {}), { error: 'auth_rejected', message: 'KIS tokenP: HTTP 401' }],
    ['HTTP 500 with an empty object: server_error', json(500, {}), { error: 'server_error', message: 'KIS tokenP: HTTP 500' }],
    ["a proxy's 502 page: server_error", notJson(502, '<html><body>Bad Gateway</body></html>'), { error: 'server_error', message: 'KIS tokenP: HTTP 502' }],
    [
      'HTTP 200 that is not JSON: bad_response',
      notJson(200, '<html>maintenance</html>'),
      { error: 'bad_response', message: 'KIS tokenP: HTTP 200 with a body that is not a JSON object' },
    ],
    [
      'an unknown error_code: server_error, the code kept',
      json(403, { error_description: '기타 오류', error_code: 'EGW99999' }),
      { error: 'server_error', message: 'KIS tokenP: HTTP 403 EGW99999 (기타 오류)', detail: { status: 403, brokerCode: 'EGW99999' } },
    ],
    [
      'an error_description on two lines arrives on one',
      json(500, { error_description: 'first line\r\nsecond line', error_code: 'EGW00500' }),
      { error: 'server_error', message: 'KIS tokenP: HTTP 500 EGW00500 (first line second line)' },
    ],
    [
      'a 5,000-character error_description is cut to 200',
      json(500, { error_description: 'x'.repeat(5000), error_code: 'EGW00500' }),
      { error: 'server_error', message: `KIS tokenP: HTTP 500 EGW00500 (${'x'.repeat(200)}… (5000 characters))` },
    ],
  ];
  for (const [what, response, expected] of rows) {
    test(what, () => check(response, expected));
  }

  // A 200 whose JSON is not an object is garbage, as Kiwoom's parser says (bad_response); KIS calls it server_error.
  for (const [what, body] of [
    ['null', null],
    ['an array', [tokenP()]],
    ['a string', 'ok'],
  ] as const) {
    test(`HTTP 200 whose JSON is ${what}: bad_response`, () =>
      check(json(200, body), { error: 'bad_response', message: 'KIS tokenP: HTTP 200 with a body that is not a JSON object' }));
  }

  test('broker text in the expiry field is capped and kept on one line, like every broker word', () => {
    check(json(200, tokenP({ access_token_token_expired: `2026-11-21\n${'9'.repeat(300)}` })), { error: 'bad_response', message: /^[^\n]{0,250}$/ });
  });

  test('a JWT iat two days old is not believed: the token is not stored already dead', () => {
    const old = kisJwt(kisClaims(T0 - 48 * HOUR, T0 + 24 * HOUR));
    check(json(200, tokenP({ access_token: old })), { token: { issuedAt: receivedAt, expiresAt: T0 + 24 * HOUR, expiryClamped: false } });
  });
});

describe('classifyKisError', () => {
  const rows: Array<[string, BrokerHttpResponse, RenewalFailureReason, string, BrokerError['detail']]> = [
    [
      'the business-API shape (msg_cd, msg1) is read too',
      json(500, { rt_cd: '1', msg_cd: 'EGW00201', msg1: '초당 거래건수를 초과하였습니다.' }),
      'server_error',
      'KIS x: HTTP 500 EGW00201 (초당 거래건수를 초과하였습니다.)',
      { status: 500, brokerCode: 'EGW00201' },
    ],
    [
      'error_code wins over msg_cd',
      json(403, { error_code: 'EGW00133', msg_cd: 'EGW00105' }),
      'rate_limited',
      'KIS x: HTTP 403 EGW00133',
      { status: 403, brokerCode: 'EGW00133' },
    ],
    [
      'a numeric error_code is no code',
      json(403, { error_code: 133, error_description: 'd' }),
      'server_error',
      'KIS x: HTTP 403 (d)',
      { status: 403, brokerCode: undefined },
    ],
    [
      'a 40-character error_code is cut to 32',
      json(403, { error_code: 'E'.repeat(40) }),
      'server_error',
      `KIS x: HTTP 403 ${'E'.repeat(32)}… (40 characters)`,
      { status: 403, brokerCode: `${'E'.repeat(32)}… (40 characters)` },
    ],
    ['a 401 without a code: auth_rejected', notJson(401, 'Unauthorized'), 'auth_rejected', 'KIS x: HTTP 401', { status: 401, brokerCode: undefined }],
    [
      'a 204 that is not JSON: bad_response',
      notJson(204, ''),
      'bad_response',
      'KIS x: HTTP 204 with a body that is not a JSON object',
      { status: 204, brokerCode: undefined },
    ],
    ['a redirect (302) that is not JSON: server_error', notJson(302, ''), 'server_error', 'KIS x: HTTP 302', { status: 302, brokerCode: undefined }],
  ];
  for (const [what, response, reason, message, detail] of rows) {
    test(what, () => {
      const error = classifyKisError(response, 'KIS x');
      assert.deepEqual([error.code, error.message, error.detail], [reason, message, detail]);
    });
  }
});

describe('parseKisProofAnswer', () => {
  const rows: Array<[string, BrokerHttpResponse, ProofOutcome]> = [
    ['a price answer: ok', json(200, { rt_cd: '0', msg_cd: 'MCA00000', msg1: '정상처리 되었습니다.', output: { stck_prpr: '71000' } }), { result: 'ok' }],
    ['rt_cd "0" in a non-200 answer is no proof', json(500, { rt_cd: '0' }), { result: 'error', message: 'HTTP 500' }],
    ['rt_cd as the number 0 is not the documented "0"', json(200, { rt_cd: 0 }), { result: 'error', message: 'HTTP 200' }],
    [
      'EGW00123, token expired (as the official sample expects it, HTTP 200)',
      json(200, { rt_cd: '1', msg_cd: 'EGW00123', msg1: '기간이 만료된 token 입니다.' }),
      { result: 'rejected', brokerCode: 'EGW00123', message: '기간이 만료된 token 입니다.' },
    ],
    [
      'EGW00121, token not valid (as captured, HTTP 500)',
      json(500, { rt_cd: '1', msg_cd: 'EGW00121', msg1: '유효하지 않은 token 입니다.' }),
      { result: 'rejected', brokerCode: 'EGW00121', message: '유효하지 않은 token 입니다.' },
    ],
    [
      'EGW00123 without msg1: the code is the message',
      json(500, { rt_cd: '1', msg_cd: 'EGW00123' }),
      { result: 'rejected', brokerCode: 'EGW00123', message: 'EGW00123' },
    ],
    [
      'EGW00123 in the OAuth shape: rejected too',
      json(401, { error_code: 'EGW00123', error_description: '기간이 만료된 token 입니다.' }),
      { result: 'rejected', brokerCode: 'EGW00123', message: '기간이 만료된 token 입니다.' },
    ],
    [
      'EGW00201, the per-second limit: no verdict on the token',
      json(500, { rt_cd: '1', msg_cd: 'EGW00201', msg1: '초당 거래건수를 초과하였습니다.' }),
      { result: 'error', message: 'HTTP 500 EGW00201 (초당 거래건수를 초과하였습니다.)' },
    ],
    ['a 401 without a body: no verdict', notJson(401, ''), { result: 'error', message: 'HTTP 401' }],
    ['a 503 page: no verdict', notJson(503, '<html>점검중</html>'), { result: 'error', message: 'HTTP 503' }],
  ];
  for (const [what, response, expected] of rows) {
    test(what, () => assert.deepEqual(parseKisProofAnswer(response), expected));
  }
});

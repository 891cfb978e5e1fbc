import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerError, type RenewalFailureReason } from '../src/core/errors';
import type { BrokerHttpResponse } from '../src/providers/broker-http';
import { classifyKiwoomError, parseKiwoomProofAnswer, parseKiwoomTokenAnswer } from '../src/providers/kiwoom';
import type { IssuedToken, ProofOutcome } from '../src/providers/types';
import { HOUR, KIWOOM_TOKEN, SECOND, T0, json, notJson } from './unit-fixtures';

/**
 * The Kiwoom answers of docs/brokers.md#kiwoom-token and #kiwoom-errors through the parsers. Failures come as
 * HTTP 200 with return_code != 0 and the detail code in brackets in return_msg. T0 is 2026-11-20 09:00:00 KST;
 * the answer arrives 2 s later; a token is believed to live at most 24 h.
 */

const receivedAt = T0 + 2 * SECOND;
const maxLifetime = 24 * HOUR;
const what = 'Kiwoom oauth2/token';

function answer(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { expires_dt: '20261121090000', token_type: 'bearer', token: KIWOOM_TOKEN, return_code: 0, return_msg: '정상적으로 처리되었습니다', ...fields };
}

function failed(returnCode: number, returnMsg: string): Record<string, unknown> {
  return { return_code: returnCode, return_msg: returnMsg };
}

type Expected = { token: Partial<IssuedToken> } | { error: RenewalFailureReason; message: string; brokerCode?: string };

describe('parseKiwoomTokenAnswer', () => {
  test('the documented answer: the token, its KST expiry, issued when it arrived, the body as raw', () => {
    const body = answer();
    assert.deepEqual(parseKiwoomTokenAnswer(json(200, body), receivedAt, maxLifetime), {
      accessToken: KIWOOM_TOKEN,
      tokenType: 'bearer',
      expiresAt: T0 + 24 * HOUR,
      issuedAt: receivedAt,
      raw: body,
      expiryClamped: false,
    });
  });

  const rows: Array<[string, BrokerHttpResponse, Expected]> = [
    ['no token_type: bearer', json(200, answer({ token_type: undefined })), { token: { tokenType: 'bearer' } }],
    ['token_type as given', json(200, answer({ token_type: 'Bearer' })), { token: { tokenType: 'Bearer' } }],
    [
      'an expiry 24 h 10 min after arrival: kept',
      json(200, answer({ expires_dt: '20261121091002' })),
      { token: { expiresAt: receivedAt + 24 * HOUR + 600 * SECOND, expiryClamped: false } },
    ],
    [
      'an expiry one second further: cut to 24 h after arrival',
      json(200, answer({ expires_dt: '20261121091003' })),
      { token: { expiresAt: receivedAt + 24 * HOUR, expiryClamped: true } },
    ],
    [
      'an expiry 60 s after arrival: already past',
      json(200, answer({ expires_dt: '20261120090102' })),
      { error: 'bad_response', message: `${what}: expiry 2026-11-20T00:01:02.000Z is already past` },
    ],
    ['no expires_dt', json(200, answer({ expires_dt: undefined })), { error: 'bad_response', message: `${what}: answer has no expires_dt` }],
    ['expires_dt as a number', json(200, answer({ expires_dt: 20261121090000 })), { error: 'bad_response', message: `${what}: answer has no expires_dt` }],
    [
      'expires_dt in the KIS form',
      json(200, answer({ expires_dt: '2026-11-21 09:00:00' })),
      { error: 'bad_response', message: `${what}: expires_dt "2026-11-21 09:00:00" is not YYYYMMDDHHMMSS` },
    ],
    [
      'expires_dt hour 24',
      json(200, answer({ expires_dt: '20261121240000' })),
      { error: 'bad_response', message: `${what}: expires_dt "20261121240000" is not YYYYMMDDHHMMSS` },
    ],
    ['no token', json(200, answer({ token: undefined })), { error: 'bad_response', message: `${what}: no token in the answer` }],
    [
      'an access_token field instead of token is not read',
      json(200, answer({ token: undefined, access_token: KIWOOM_TOKEN })),
      { error: 'bad_response', message: `${what}: no token in the answer` },
    ],
    [
      'HTTP 200 without return_code',
      json(200, { token: KIWOOM_TOKEN, expires_dt: '20261121090000' }),
      { error: 'bad_response', message: `${what}: answer has no return_code` },
    ],
    [
      'return_code "0" as text is not success',
      json(200, answer({ return_code: '0' })),
      { error: 'server_error', message: `${what}: HTTP 200 return_code 0 (정상적으로 처리되었습니다)` },
    ],
    [
      '8001, app key failed verification (HTTP 200)',
      json(200, failed(3, '인증에 실패했습니다[8001:App Key와 Secret Key 검증에 실패했습니다]')),
      {
        error: 'auth_rejected',
        message: `${what}: HTTP 200 return_code 3 (인증에 실패했습니다[8001:App Key와 Secret Key 검증에 실패했습니다])`,
        brokerCode: '8001',
      },
    ],
    [
      '8002: auth_rejected',
      json(200, failed(3, '인증에 실패했습니다[8002:App Key와 Secret Key 검증에 실패했습니다]')),
      {
        error: 'auth_rejected',
        message: `${what}: HTTP 200 return_code 3 (인증에 실패했습니다[8002:App Key와 Secret Key 검증에 실패했습니다])`,
        brokerCode: '8002',
      },
    ],
    [
      '8020, key or secret missing: auth_rejected',
      json(200, failed(2, '입력값 오류입니다[8020:appkey 또는 secretkey가 없습니다]')),
      { error: 'auth_rejected', message: `${what}: HTTP 200 return_code 2 (입력값 오류입니다[8020:appkey 또는 secretkey가 없습니다])`, brokerCode: '8020' },
    ],
    [
      '8030, a real key on the mock host: auth_rejected',
      json(200, failed(3, '[8030:투자구분(실전/모의)이 달라서 인증에 실패했습니다]')),
      { error: 'auth_rejected', message: `${what}: HTTP 200 return_code 3 ([8030:투자구분(실전/모의)이 달라서 인증에 실패했습니다])`, brokerCode: '8030' },
    ],
    [
      '8031: auth_rejected',
      json(200, failed(3, '[8031:투자구분이 실전/모의가 아닙니다]')),
      { error: 'auth_rejected', message: `${what}: HTTP 200 return_code 3 ([8031:투자구분이 실전/모의가 아닙니다])`, brokerCode: '8031' },
    ],
    [
      '1700, too many requests, as the guide says (HTTP 200)',
      json(200, failed(5, '허용된 요청 개수를 초과하였습니다[1700:허용된 요청 개수를 초과하였습니다. API ID=au10001]')),
      {
        error: 'rate_limited',
        message: `${what}: HTTP 200 return_code 5 (허용된 요청 개수를 초과하였습니다[1700:허용된 요청 개수를 초과하였습니다. API ID=au10001])`,
        brokerCode: '1700',
      },
    ],
    [
      '1700 as third-party logs show it (HTTP 429)',
      json(429, failed(5, '[1700:허용된 요청 개수를 초과하였습니다]')),
      { error: 'rate_limited', message: `${what}: HTTP 429 return_code 5 ([1700:허용된 요청 개수를 초과하였습니다])`, brokerCode: '1700' },
    ],
    ['HTTP 429 without a body', notJson(429, ''), { error: 'rate_limited', message: `${what}: HTTP 429` }],
    [
      '8005 on the token endpoint: server_error, the code kept',
      json(200, failed(3, '인증에 실패했습니다[8005:Token이 유효하지 않습니다]')),
      { error: 'server_error', message: `${what}: HTTP 200 return_code 3 (인증에 실패했습니다[8005:Token이 유효하지 않습니다])`, brokerCode: '8005' },
    ],
    [
      'a failure without a bracketed code',
      json(200, failed(1, '시스템 오류')),
      { error: 'server_error', message: `${what}: HTTP 200 return_code 1 (시스템 오류)` },
    ],
    ['HTTP 401: auth_rejected', json(401, {}), { error: 'auth_rejected', message: `${what}: HTTP 401` }],
    ['HTTP 403: auth_rejected', notJson(403, 'Forbidden'), { error: 'auth_rejected', message: `${what}: HTTP 403` }],
    [
      'HTTP 200 that is not JSON: bad_response',
      notJson(200, '<html>점검</html>'),
      { error: 'bad_response', message: `${what}: HTTP 200 with a body that is not JSON` },
    ],
    ['HTTP 200 with JSON null: bad_response', json(200, null), { error: 'bad_response', message: `${what}: HTTP 200 with a body that is not JSON` }],
    ['HTTP 500 page: server_error', notJson(500, 'Internal Server Error'), { error: 'server_error', message: `${what}: HTTP 500` }],
    [
      'a return_msg on several lines arrives on one',
      json(200, failed(1, '오류\n발생\t[9999:x]')),
      { error: 'server_error', message: `${what}: HTTP 200 return_code 1 (오류 발생 [9999:x])`, brokerCode: '9999' },
    ],
  ];
  for (const [rowWhat, response, expected] of rows) {
    test(rowWhat, () => {
      if ('token' in expected) {
        const issued = parseKiwoomTokenAnswer(response, receivedAt, maxLifetime);
        const picked = Object.fromEntries(Object.keys(expected.token).map((key) => [key, issued[key as keyof IssuedToken]]));
        assert.deepEqual(picked, expected.token);
        return;
      }
      assert.throws(
        () => parseKiwoomTokenAnswer(response, receivedAt, maxLifetime),
        (error: unknown) => {
          assert.ok(error instanceof BrokerError, `a BrokerError, not ${String(error)}`);
          assert.deepEqual([error.code, error.message], [expected.error, expected.message]);
          if (expected.brokerCode !== undefined) assert.equal(error.detail.brokerCode, expected.brokerCode);
          return true;
        },
      );
    });
  }
});

describe('classifyKiwoomError', () => {
  test('a return_code object whose toString is not a function (JSON can say so): a BrokerError, not a TypeError', () => {
    const response: BrokerHttpResponse = { status: 200, text: '', json: JSON.parse('{"return_code": {"toString": {}}, "return_msg": "x"}') as unknown };
    let error: unknown;
    try {
      error = classifyKiwoomError(response, 'K');
    } catch (thrown) {
      error = thrown;
    }
    assert.ok(error instanceof BrokerError, `a BrokerError, not ${String((error as Error).name)}`);
    assert.equal(error.code, 'server_error');
  });
  test('a return_code that is not a number is shown, capped at 32 characters', () => {
    const error = classifyKiwoomError(json(500, { return_code: 'E'.repeat(40), return_msg: 'x' }), 'K');
    assert.deepEqual(
      [error.code, error.message, error.detail],
      ['server_error', `K: HTTP 500 return_code ${'E'.repeat(32)}… (40 characters) (x)`, { status: 500, brokerCode: undefined }],
    );
  });
  test('only four digits before a colon make a detail code', () => {
    const codes = ['[8005:x]', '[800:x]', '[80050:x]', '[8005]', '8005:x', 'a[1700:b]c[8001:d]'].map(
      (msg) => classifyKiwoomError(json(200, failed(3, msg)), 'K').detail.brokerCode,
    );
    assert.deepEqual(codes, ['8005', undefined, undefined, undefined, undefined, '1700']);
  });
});

describe('parseKiwoomProofAnswer', () => {
  const rows: Array<[string, BrokerHttpResponse, ProofOutcome]> = [
    [
      'a stock-information answer: ok',
      json(200, { stk_cd: '005930', stk_nm: '삼성전자', return_code: 0, return_msg: '조회가 완료되었습니다' }),
      { result: 'ok' },
    ],
    [
      '8005, token not valid: rejected',
      json(200, failed(3, '인증에 실패했습니다[8005:Token이 유효하지 않습니다]')),
      { result: 'rejected', brokerCode: '8005', message: '인증에 실패했습니다[8005:Token이 유효하지 않습니다]' },
    ],
    [
      '8005 in a 401 answer: rejected too',
      json(401, failed(3, '[8005:Token이 유효하지 않습니다]')),
      { result: 'rejected', brokerCode: '8005', message: '[8005:Token이 유효하지 않습니다]' },
    ],
    [
      '1700, too many requests: no verdict',
      json(200, failed(5, '[1700:허용된 요청 개수를 초과하였습니다]')),
      { result: 'error', message: '[1700:허용된 요청 개수를 초과하였습니다]' },
    ],
    ['return_code 0 in a 500 answer is no proof', json(500, { return_code: 0, return_msg: 'ok' }), { result: 'error', message: 'ok' }],
    ['a 502 page: no verdict, the status as the message', notJson(502, '<html/>'), { result: 'error', message: 'HTTP 502' }],
    [
      'a 3,000-character return_msg is cut to 200',
      json(200, failed(1, 'y'.repeat(3000))),
      { result: 'error', message: `${'y'.repeat(200)}… (3000 characters)` },
    ],
  ];
  for (const [rowWhat, response, expected] of rows) {
    test(rowWhat, () => assert.deepEqual(parseKiwoomProofAnswer(response), expected));
  }
});

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerError } from '../src/core/errors';
import { MAX_BROKER_TEXT, brokerText, checkExpiry, checkTokenText, readJwtClaims } from '../src/providers/token-checks';
import { HOUR, MINUTE, SECOND, T0, kisClaims, kisJwt } from './unit-fixtures';

/** The shape checks every broker answer passes before the sidecar trusts it. */

function refused(run: () => unknown, message: string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof BrokerError, `a BrokerError, not ${String(error)}`);
    assert.deepEqual([error.code, error.message], ['bad_response', message]);
    return true;
  });
}

describe('checkTokenText', () => {
  const accepted: Array<[string, string]> = [
    ['a KIS JWT', kisJwt(kisClaims(T0))],
    ['16 characters, the shortest plausible', 'abcdefghijklmnop'],
    ['4096 characters, the longest plausible', 'z'.repeat(4096)],
    ['every printable ASCII character but space', Array.from({ length: 94 }, (_, i) => String.fromCharCode(0x21 + i)).join('')],
  ];
  for (const [what, token] of accepted) {
    test(`accepted: ${what}`, () => assert.equal(checkTokenText(token, 'w'), token));
  }
  const rejected: Array<[string, unknown, string]> = [
    ['undefined', undefined, 'w: no token in the answer'],
    ['an empty string', '', 'w: no token in the answer'],
    ['null', null, 'w: no token in the answer'],
    ['a number', 1234567890123456, 'w: no token in the answer'],
    ['an object', { token: 'abcdefghijklmnop' }, 'w: no token in the answer'],
    ['15 characters', 'abcdefghijklmno', 'w: token of implausible length (15 characters)'],
    ['4097 characters (an error page, not a token)', 'z'.repeat(4097), 'w: token of implausible length (4097 characters)'],
    ['a space inside', 'abcdefgh ijklmnop', 'w: token contains characters a token cannot have'],
    ['a trailing newline', 'abcdefghijklmnop\n', 'w: token contains characters a token cannot have'],
    ['a tab', 'abcdefgh\tijklmnop', 'w: token contains characters a token cannot have'],
    ['DEL', 'abcdefghijklmnop\x7f', 'w: token contains characters a token cannot have'],
    ['Hangul', '토큰이아니라오류페이지입니다알림', 'w: token contains characters a token cannot have'],
    ['a non-breaking space', 'abcdefgh\u00a0ijklmnop', 'w: token contains characters a token cannot have'],
  ];
  for (const [what, token, message] of rejected) {
    test(`refused: ${what}`, () => refused(() => checkTokenText(token, 'w'), message));
  }
});

describe('checkExpiry', () => {
  const day = 24 * HOUR;
  // what, expiresAt, issuedAt, receivedAt, expected
  const rows: Array<[string, number, number, number, { expiresAt: number; clamped: boolean }]> = [
    ['a day after issuance: kept', T0 + day, T0, T0, { expiresAt: T0 + day, clamped: false }],
    ['60 s and 1 ms after arrival: kept', T0 + MINUTE + 1, T0, T0, { expiresAt: T0 + MINUTE + 1, clamped: false }],
    ["10 min of allowance for the broker's clock: kept", T0 + day + 10 * MINUTE, T0, T0, { expiresAt: T0 + day + 10 * MINUTE, clamped: false }],
    ['1 ms beyond the allowance: cut to maxLifetime', T0 + day + 10 * MINUTE + 1, T0, T0, { expiresAt: T0 + day, clamped: true }],
    ['a week: cut to maxLifetime', T0 + 7 * day, T0, T0, { expiresAt: T0 + day, clamped: true }],
    ['issued an hour before it arrived: the cut counts from issuance', T0 + day, T0 - HOUR, T0, { expiresAt: T0 + day - HOUR, clamped: true }],
    [
      "issued (by the broker's clock) after it arrived: the cut counts from arrival",
      T0 + day + 10 * MINUTE + 1,
      T0 + 5 * MINUTE,
      T0,
      { expiresAt: T0 + day, clamped: true },
    ],
  ];
  for (const [what, expiresAt, issuedAt, receivedAt, expected] of rows) {
    test(what, () => assert.deepEqual(checkExpiry(expiresAt, issuedAt, receivedAt, day, 'w'), expected));
  }
  test('exactly 60 s after arrival: already past (no use to the apps)', () => {
    refused(() => checkExpiry(T0 + MINUTE, T0, T0, day, 'w'), 'w: expiry 2026-11-20T00:01:00.000Z is already past');
  });
  test('an expiry before arrival: already past', () => {
    refused(() => checkExpiry(T0 - HOUR, T0 - day, T0, day, 'w'), 'w: expiry 2026-11-19T23:00:00.000Z is already past');
  });
  test('an expiry cut to maxLifetime is still checked against the 60 s minimum', () => {
    assert.throws(
      () => checkExpiry(T0 + day, T0 - day, T0, day, 'w'),
      (error: unknown) => error instanceof BrokerError && error.code === 'bad_response' && /^w: expiry .* is already past$/.test(error.message),
    );
  });
  test('a shorter maxLifetime (6 h) cuts a day-long expiry', () => {
    assert.deepEqual(checkExpiry(T0 + day, T0, T0 + 2 * SECOND, 6 * HOUR, 'w'), { expiresAt: T0 + 6 * HOUR, clamped: true });
  });
});

describe('readJwtClaims', () => {
  const rows: Array<[string, string, Record<string, unknown> | undefined]> = [
    ['a KIS token: its claims', kisJwt(kisClaims(T0)), kisClaims(T0)],
    ['claims with Hangul (base64url, not base64)', kisJwt({ sub: '토큰', n: 1 }), { sub: '토큰', n: 1 }],
    ['an opaque Kiwoom-like token: none', 'WQJCwyqInphKnR3bSRtB9NE1lv3c5hRqJMOmMeEAnJTcmTbAXPAOqLQK', undefined],
    ['two parts: none', 'eyJhIjoxfQ.eyJhIjoxfQ', undefined],
    ['four parts: none', 'a.eyJhIjoxfQ.b.c', undefined],
    ['an empty string: none', '', undefined],
    ['a payload that is not JSON: none', `a.${Buffer.from('not json').toString('base64url')}.c`, undefined],
    ['a payload that is a JSON array: none', `a.${Buffer.from('[1,2]').toString('base64url')}.c`, undefined],
    ['a payload that is JSON null: none', `a.${Buffer.from('null').toString('base64url')}.c`, undefined],
    ['a payload that is a JSON number: none', `a.${Buffer.from('42').toString('base64url')}.c`, undefined],
    ['an empty payload: none', 'a..c', undefined],
  ];
  for (const [what, token, expected] of rows) {
    test(what, () => assert.deepEqual(readJwtClaims(token), expected));
  }
});

describe('brokerText', () => {
  const rows: Array<[string, unknown, number | undefined, string | undefined]> = [
    ['a number is no text', 42, undefined, undefined],
    ['null is no text', null, undefined, undefined],
    ['an object is no text', { message: 'x' }, undefined, undefined],
    ['a short message as it is', '접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)', undefined, '접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)'],
    ['the empty string stays empty', '', undefined, ''],
    ['a newline becomes a space', 'a\nb', undefined, 'a b'],
    ['a run of control characters becomes one space', 'a\r\n\t\x00\x1bb', undefined, 'a b'],
    ['DEL becomes a space', 'a\x7fb', undefined, 'a b'],
    ['exactly 200 characters: as it is', 'x'.repeat(MAX_BROKER_TEXT), undefined, 'x'.repeat(200)],
    ['201 characters: cut, with the length said', 'x'.repeat(201), undefined, `${'x'.repeat(200)}… (201 characters)`],
    ['a cap of 32 (codes)', 'E'.repeat(33), 32, `${'E'.repeat(32)}… (33 characters)`],
    ['the length said is that of the one-line text', `a${'\n'.repeat(300)}b`, 2, 'a … (3 characters)'],
  ];
  for (const [what, value, max, expected] of rows) {
    test(what, () => assert.equal(max === undefined ? brokerText(value) : brokerText(value, max), expected));
  }
});

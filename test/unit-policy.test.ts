import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  NEVER,
  correctedForClockJumpBack,
  decide,
  expiryFromSameToken,
  isUsable,
  nextAttemptAfterSameToken,
  plannedRenewalAt,
  spacingStartsAt,
  tokenStatus,
  type Decision,
  type OwnAttempt,
  type TokenStatus,
} from '../src/lifecycle/policy';
import type { RenewalPolicy } from '../src/config/types';
import type { AccountState } from '../src/store/account-state';
import { HOUR, MINUTE, SECOND, T0, accountState, renewalPolicy, tokenRecord } from './unit-fixtures';

/**
 * The pure renewal decisions, row by row, with the default policy unless a row says otherwise: renew 1 h
 * before expiry with up to 10 min of jitter, 60 s spacing, 6 h same-token window, 24 h maxLifetime, retries
 * 5 min apart up to 1 h. A token issued at T0 expires at T0 + 24 h unless a row says otherwise.
 */

const policy = renewalPolicy();
const invalidated = { at: T0 + HOUR, brokerCode: 'EGW00123', message: '기간이 만료된 token 입니다' };

describe('tokenStatus', () => {
  const rows: Array<[string, Partial<AccountState>, number, TokenStatus]> = [
    ['no token is missing', {}, T0, 'missing'],
    ['no token is missing even when an invalidation is recorded', { invalidated }, T0, 'missing'],
    ['a fresh token is valid', { token: tokenRecord() }, T0 + HOUR, 'valid'],
    ['one millisecond before the renewBefore mark: valid', { token: tokenRecord() }, T0 + 23 * HOUR - 1, 'valid'],
    ['at the renewBefore mark: expiring', { token: tokenRecord() }, T0 + 23 * HOUR, 'expiring'],
    ['one millisecond before expiry: expiring', { token: tokenRecord() }, T0 + 24 * HOUR - 1, 'expiring'],
    ['at expiry: expired', { token: tokenRecord() }, T0 + 24 * HOUR, 'expired'],
    ['a token the broker refused is invalid while its expiry is far', { token: tokenRecord(), invalidated }, T0 + 2 * HOUR, 'invalid'],
    ['invalid wins over expired', { token: tokenRecord(), invalidated }, T0 + 25 * HOUR, 'invalid'],
  ];
  for (const [what, state, now, expected] of rows) {
    test(what, () => assert.equal(tokenStatus(accountState(state), now, policy), expected));
  }

  test('isUsable: only valid and expiring tokens are handed to the apps', () => {
    const usable = (['valid', 'expiring', 'expired', 'missing', 'invalid'] as const).map((status) => [status, isUsable(status)]);
    assert.deepEqual(usable, [
      ['valid', true],
      ['expiring', true],
      ['expired', false],
      ['missing', false],
      ['invalid', false],
    ]);
  });
});

describe('plannedRenewalAt', () => {
  const rows: Array<[string, Parameters<typeof tokenRecord>[0], RenewalPolicy, ReturnType<typeof plannedRenewalAt>]> = [
    ['no jitter drawn: renewBefore ahead of expiry', {}, policy, { at: T0 + 23 * HOUR, why: 'renewal_due' }],
    ['all the jitter drawn: 10 min earlier still', { renewJitter: 1 }, policy, { at: T0 + 22 * HOUR + 50 * MINUTE, why: 'renewal_due' }],
    ['half the jitter drawn: 5 min earlier', { renewJitter: 0.5 }, policy, { at: T0 + 22 * HOUR + 55 * MINUTE, why: 'renewal_due' }],
    [
      'a 6.5 h token: not before the same-token window and the spacing are over',
      { expiresAt: T0 + 6 * HOUR + 30 * MINUTE },
      policy,
      { at: T0 + 6 * HOUR + MINUTE, why: 'renewal_due' },
    ],
    [
      'a token that dies inside the window: the last moment a renewal is still useful (one spacing before expiry)',
      { expiresAt: T0 + 5 * HOUR },
      policy,
      { at: T0 + 5 * HOUR - MINUTE, why: 'renewal_due' },
    ],
    [
      'the window counts from issuance, not from when the answer arrived',
      { issuedAt: T0 - 2 * HOUR, receivedAt: T0, expiresAt: T0 + 5 * HOUR },
      policy,
      { at: T0 + 4 * HOUR + MINUTE, why: 'renewal_due' },
    ],
    [
      'a scheduled slot (07:30 KST) before the expiry plan: the schedule',
      {},
      renewalPolicy({ schedule: '30 7 * * *' }),
      { at: T0 + 22 * HOUR + 30 * MINUTE, why: 'schedule' },
    ],
    [
      'a scheduled slot (08:00 KST) at the same instant as the expiry plan: the expiry plan',
      {},
      renewalPolicy({ schedule: '0 8 * * *' }),
      { at: T0 + 23 * HOUR, why: 'renewal_due' },
    ],
    [
      'a scheduled slot (12:00 KST) after the expiry plan: the expiry plan',
      {},
      renewalPolicy({ schedule: '0 12 * * *' }),
      { at: T0 + 23 * HOUR, why: 'renewal_due' },
    ],
    [
      "the 11:00 KST slot two hours after issuance lies inside the window: the next day's 11:00 is taken",
      { expiresAt: T0 + 30 * HOUR },
      renewalPolicy({ schedule: '0 11 * * *' }),
      { at: T0 + 26 * HOUR, why: 'schedule' },
    ],
    [
      'scheduleMinAge longer than the window: the first slot after the token is that old',
      { expiresAt: T0 + 30 * HOUR },
      renewalPolicy({ schedule: '0 * * * *', scheduleMinAgeMs: 10 * HOUR }),
      { at: T0 + 10 * HOUR, why: 'schedule' },
    ],
  ];
  for (const [what, token, rowPolicy, expected] of rows) {
    test(what, () => assert.deepEqual(plannedRenewalAt(tokenRecord(token), rowPolicy), expected));
  }
});

describe('spacingStartsAt', () => {
  const timeout = 15 * SECOND;
  const rows: Array<[string, AccountState['lastAttempt'], number | undefined]> = [
    ['no attempt yet: no spacing', null, undefined],
    ['an attempt that ended: from its end', { at: T0, outcome: 'issued', endedAt: T0 + 2 * SECOND }, T0 + 2 * SECOND],
    ['a pending attempt that ended (the end was written): from its end', { at: T0, outcome: 'pending', endedAt: T0 + 3 * SECOND }, T0 + 3 * SECOND],
    ['a pending attempt that never ended (the process died): its start plus the request timeout', { at: T0, outcome: 'pending' }, T0 + timeout],
    ['a failed attempt without an end (an older state): its start', { at: T0, outcome: 'network' }, T0],
  ];
  for (const [what, lastAttempt, expected] of rows) {
    test(what, () => assert.equal(spacingStartsAt(lastAttempt, timeout), expected));
  }
});

describe('decide', () => {
  const credentialsId = 'cred-current';
  const requestTimeoutMs = 15 * SECOND;
  const long = { at: T0 - HOUR, outcome: 'issued' as const, endedAt: T0 - HOUR };
  const rows: Array<[string, { now: number; state: Partial<AccountState>; force?: boolean; policy?: RenewalPolicy }, Decision]> = [
    ['no token, nothing asked yet: issue (no_token)', { now: T0, state: {} }, { kind: 'issue', why: 'no_token' }],
    [
      'credentials the broker rejected: wait until they change',
      { now: T0, state: { authBlock: { at: T0 - HOUR, credentialsId, message: 'EGW00105' } } },
      { kind: 'wait', until: NEVER, why: 'auth_rejected' },
    ],
    [
      'a rejection of credentials no longer configured does not hold',
      { now: T0, state: { authBlock: { at: T0 - HOUR, credentialsId: 'cred-old', message: 'EGW00105' } } },
      { kind: 'issue', why: 'no_token' },
    ],
    [
      'a person forces past the auth hold',
      { now: T0, force: true, state: { authBlock: { at: T0 - HOUR, credentialsId, message: 'EGW00105' }, lastAttempt: long } },
      { kind: 'issue', why: 'forced' },
    ],
    [
      'an invalidated token: issue (invalidated)',
      { now: T0 + HOUR, state: { token: tokenRecord(), invalidated, lastAttempt: long } },
      { kind: 'issue', why: 'invalidated' },
    ],
    ['an expired token: issue (expired)', { now: T0 + 24 * HOUR, state: { token: tokenRecord(), lastAttempt: long } }, { kind: 'issue', why: 'expired' }],
    [
      'a valid token: wait for the planned renewal',
      { now: T0 + HOUR, state: { token: tokenRecord(), lastAttempt: long } },
      { kind: 'wait', until: T0 + 23 * HOUR, why: 'renewal_planned' },
    ],
    [
      'at the planned renewal: issue (renewal_due)',
      { now: T0 + 23 * HOUR, state: { token: tokenRecord(), lastAttempt: long } },
      { kind: 'issue', why: 'renewal_due' },
    ],
    [
      'at a scheduled slot: issue (schedule)',
      { now: T0 + 22 * HOUR + 30 * MINUTE, state: { token: tokenRecord(), lastAttempt: long }, policy: renewalPolicy({ schedule: '30 7 * * *' }) },
      { kind: 'issue', why: 'schedule' },
    ],
    [
      'a backoff does not bring the plan forward',
      { now: T0 + HOUR, state: { token: tokenRecord(), nextRetryAt: T0 + 2 * HOUR, consecutiveFailures: 1 } },
      { kind: 'wait', until: T0 + 23 * HOUR, why: 'renewal_planned' },
    ],
    [
      'after failures: wait out the backoff',
      { now: T0, state: { nextRetryAt: T0 + 5 * MINUTE, consecutiveFailures: 2, lastAttempt: { at: T0 - MINUTE, outcome: 'network', endedAt: T0 - MINUTE } } },
      { kind: 'wait', until: T0 + 5 * MINUTE, why: 'backoff' },
    ],
    [
      'after a same-token answer (and no failure): the wait is called same_token',
      { now: T0 + 23 * HOUR, state: { token: tokenRecord(), nextRetryAt: T0 + 23 * HOUR + 10 * MINUTE, sameTokenStreak: 1, lastAttempt: long } },
      { kind: 'wait', until: T0 + 23 * HOUR + 10 * MINUTE, why: 'same_token' },
    ],
    [
      'a same-token streak followed by a failure: backoff',
      {
        now: T0 + 23 * HOUR,
        state: { token: tokenRecord(), nextRetryAt: T0 + 23 * HOUR + 10 * MINUTE, sameTokenStreak: 1, consecutiveFailures: 1, lastAttempt: long },
      },
      { kind: 'wait', until: T0 + 23 * HOUR + 10 * MINUTE, why: 'backoff' },
    ],
    [
      'the backoff ends at nextRetryAt exactly',
      {
        now: T0 + 5 * MINUTE,
        state: { nextRetryAt: T0 + 5 * MINUTE, consecutiveFailures: 2, lastAttempt: { at: T0 - MINUTE, outcome: 'network', endedAt: T0 - MINUTE } },
      },
      { kind: 'issue', why: 'no_token' },
    ],
    [
      'force skips the backoff',
      {
        now: T0,
        force: true,
        state: { nextRetryAt: T0 + HOUR, consecutiveFailures: 4, lastAttempt: { at: T0 - 2 * MINUTE, outcome: 'network', endedAt: T0 - 2 * MINUTE } },
      },
      { kind: 'issue', why: 'forced' },
    ],
    [
      'force never skips the spacing: 60 s from the end of the last request',
      {
        now: T0,
        force: true,
        state: { token: tokenRecord({ issuedAt: T0 - HOUR }), lastAttempt: { at: T0 - 32 * SECOND, outcome: 'issued', endedAt: T0 - 30 * SECOND } },
      },
      { kind: 'wait', until: T0 + 30 * SECOND, why: 'spacing' },
    ],
    [
      'a request that never ended: the spacing runs from its start plus the request timeout',
      { now: T0, state: { lastAttempt: { at: T0 - 10 * SECOND, outcome: 'pending' } } },
      { kind: 'wait', until: T0 + 65 * SECOND, why: 'spacing' },
    ],
    [
      'the spacing ends exactly one spacing after the last request ended',
      { now: T0, state: { lastAttempt: { at: T0 - 61 * SECOND, outcome: 'server_error', endedAt: T0 - MINUTE } } },
      { kind: 'issue', why: 'no_token' },
    ],
    [
      'a longer configured spacing (5 min) holds',
      {
        now: T0,
        state: { lastAttempt: { at: T0 - 2 * MINUTE, outcome: 'rate_limited', endedAt: T0 - 2 * MINUTE } },
        policy: renewalPolicy({ spacingMs: 5 * MINUTE }),
      },
      { kind: 'wait', until: T0 + 3 * MINUTE, why: 'spacing' },
    ],
  ];
  for (const [what, input, expected] of rows) {
    test(what, () => {
      const decision = decide({
        now: input.now,
        state: accountState(input.state),
        policy: input.policy ?? policy,
        credentialsId,
        force: input.force ?? false,
        requestTimeoutMs,
      });
      assert.deepEqual(decision, expected);
    });
  }

  describe("this process's own last request, on the monotonic clock", () => {
    // The wall clock stepped +25 h right after a request: by the state's record the spacing is long over, the token expired.
    const stepped = T0 + 25 * HOUR;
    const recorded = { token: tokenRecord(), lastAttempt: { at: T0, outcome: 'issued' as const, endedAt: T0 + SECOND } };
    const ownRows: Array<[string, { now: number; force?: boolean; own: OwnAttempt }, Decision]> = [
      [
        'a wall-clock step of +25 h 30 s after the request: the spacing still holds on the monotonic clock',
        { now: stepped, own: { sentAt: 1_000, endedAt: 2_000, now: 32_000 } },
        { kind: 'wait', until: stepped + 30 * SECOND, why: 'spacing' },
      ],
      [
        'and force does not skip it',
        { now: stepped, force: true, own: { sentAt: 1_000, endedAt: 2_000, now: 32_000 } },
        { kind: 'wait', until: stepped + 30 * SECOND, why: 'spacing' },
      ],
      [
        'a request still in flight: its start plus the request timeout, then the spacing',
        { now: stepped, own: { sentAt: 1_000, endedAt: undefined, now: 11_000 } },
        { kind: 'wait', until: stepped + 65 * SECOND, why: 'spacing' },
      ],
      [
        'one spacing after it ended on the monotonic clock: issue',
        { now: stepped, own: { sentAt: 1_000, endedAt: 2_000, now: 62_000 } },
        { kind: 'issue', why: 'expired' },
      ],
    ];
    for (const [what, input, expected] of ownRows) {
      test(what, () => {
        const decision = decide({
          now: input.now,
          state: accountState(recorded),
          policy,
          credentialsId,
          force: input.force ?? false,
          requestTimeoutMs,
          ownAttempt: input.own,
        });
        assert.deepEqual(decision, expected);
      });
    }

    test('the wall clock stepped back: the record, moved to now, holds a whole spacing after it; the monotonic clock changes nothing', () => {
      const now = T0 - HOUR;
      const state = correctedForClockJumpBack(accountState(recorded), now)!;
      const own = { sentAt: 1_000, endedAt: 2_000, now: 12_000 };
      assert.deepEqual(decide({ now, state, policy, credentialsId, force: true, requestTimeoutMs, ownAttempt: own }), {
        kind: 'wait',
        until: now + SECOND + MINUTE,
        why: 'spacing',
      });
    });
  });
});

describe('correctedForClockJumpBack', () => {
  const now = T0;
  test('no attempt recorded: nothing to correct', () => {
    assert.equal(correctedForClockJumpBack(accountState(), now), undefined);
  });
  test('the last attempt is now: nothing to correct', () => {
    assert.equal(correctedForClockJumpBack(accountState({ lastAttempt: { at: now, outcome: 'issued', endedAt: now } }), now), undefined);
  });
  test('the last attempt is in the past: nothing to correct', () => {
    assert.equal(correctedForClockJumpBack(accountState({ lastAttempt: { at: now - HOUR, outcome: 'issued', endedAt: now - HOUR + SECOND } }), now), undefined);
  });
  test('an attempt an hour ahead: moved to now, its end and the retry shifted by the same hour', () => {
    const state = accountState({
      lastAttempt: { at: now + HOUR, outcome: 'network', endedAt: now + HOUR + 2 * SECOND },
      nextRetryAt: now + HOUR + 5 * MINUTE,
      consecutiveFailures: 1,
    });
    const before = structuredClone(state);
    assert.deepEqual(correctedForClockJumpBack(state, now), {
      ...before,
      lastAttempt: { at: now, outcome: 'network', endedAt: now + 2 * SECOND },
      nextRetryAt: now + 5 * MINUTE,
    });
    assert.deepEqual(state, before, 'the input state is not changed');
  });
  test('an attempt that never ended stays without an end; no retry planned stays so', () => {
    const corrected = correctedForClockJumpBack(accountState({ lastAttempt: { at: now + 9 * HOUR, outcome: 'pending' } }), now);
    assert.deepEqual(corrected?.lastAttempt, { at: now, outcome: 'pending' });
    assert.equal(corrected !== undefined && 'endedAt' in corrected.lastAttempt, false);
    assert.equal(corrected?.nextRetryAt, null);
  });
  test('an end recorded before its start is not moved before now', () => {
    const corrected = correctedForClockJumpBack(accountState({ lastAttempt: { at: now + HOUR, outcome: 'issued', endedAt: now + HOUR - 5 * SECOND } }), now);
    assert.deepEqual(corrected?.lastAttempt, { at: now, outcome: 'issued', endedAt: now });
  });
  test('after the correction the spacing holds from now, not from an hour ahead', () => {
    const corrected = correctedForClockJumpBack(accountState({ lastAttempt: { at: now + HOUR, outcome: 'server_error', endedAt: now + HOUR } }), now)!;
    const decision = decide({ now, state: corrected, policy, credentialsId: 'c', force: false, requestTimeoutMs: 15 * SECOND });
    assert.deepEqual(decision, { kind: 'wait', until: now + MINUTE, why: 'spacing' });
  });
});

// test/lifecycle.test.ts has the main table for these two ("same-token answers"); these are the rows it lacks.
describe('nextAttemptAfterSameToken and expiryFromSameToken, rows beyond the lifecycle table', () => {
  test('window over, a long streak: the backoff stops at maxDelay (1 h)', () => {
    assert.equal(nextAttemptAfterSameToken(tokenRecord(), T0 + 7 * HOUR, 12, policy), T0 + 8 * HOUR);
  });
  test('window over, streak 0 counts as the first: initialDelay (5 min)', () => {
    assert.equal(nextAttemptAfterSameToken(tokenRecord(), T0 + 7 * HOUR, 0, policy), T0 + 7 * HOUR + 5 * MINUTE);
  });
  test('the broker states an earlier expiry than believed: learnt', () => {
    assert.equal(expiryFromSameToken(tokenRecord(), T0 + 20 * HOUR, T0 + 2 * HOUR, policy), T0 + 20 * HOUR);
  });
  test('the broker states an expiry already past: nothing learnt', () => {
    assert.equal(expiryFromSameToken(tokenRecord({ expiresAt: T0 + 3 * HOUR }), T0 + 2 * HOUR, T0 + 2 * HOUR, policy), undefined);
  });
});

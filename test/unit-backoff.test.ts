import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { retryDelayMs } from '../src/lifecycle/backoff';
import type { RenewalFailureReason } from '../src/core/errors';
import type { RenewalPolicy } from '../src/config/types';
import { MINUTE, SECOND, renewalPolicy } from './unit-fixtures';

/**
 * retryDelayMs with the default policy (three tries 5 min apart, then doubling to 1 h, 10 % jitter, 60 s
 * spacing) unless a row says otherwise. `random` 0.5 draws no jitter; 0 and 1 draw its two ends.
 */

const policy = renewalPolicy();
const noJitter = () => 0.5;

describe('retryDelayMs', () => {
  const rows: Array<[string, RenewalFailureReason, number, boolean, () => number, number, RenewalPolicy?]> = [
    // what, reason, failures, tokenUsable, random, expected delay
    ['first failure: initialDelay', 'network', 1, true, noJitter, 5 * MINUTE],
    ['second failure: still initialDelay', 'server_error', 2, true, noJitter, 5 * MINUTE],
    ['third failure (attempts reached): doubled', 'timeout', 3, true, noJitter, 10 * MINUTE],
    ['fourth failure: doubled again', 'network', 4, true, noJitter, 20 * MINUTE],
    ['fifth failure: 40 min', 'network', 5, true, noJitter, 40 * MINUTE],
    ['sixth failure: would be 80 min, capped at maxDelay', 'network', 6, true, noJitter, 60 * MINUTE],
    ['thirtieth failure: still maxDelay', 'bad_response', 30, true, noJitter, 60 * MINUTE],
    ['zero failures counts as the first', 'network', 0, true, noJitter, 5 * MINUTE],
    ['no usable token: the delay stops growing at initialDelay', 'network', 5, false, noJitter, 5 * MINUTE],
    ['rate_limited, first: the spacing', 'rate_limited', 1, true, noJitter, 60 * SECOND],
    ['rate_limited, second: twice the spacing', 'rate_limited', 2, true, noJitter, 120 * SECOND],
    ['rate_limited, third: four times the spacing (the attempts rule does not apply)', 'rate_limited', 3, true, noJitter, 240 * SECOND],
    ['rate_limited, eighth: capped at maxDelay', 'rate_limited', 8, true, noJitter, 60 * MINUTE],
    ['rate_limited without a usable token: capped at initialDelay', 'rate_limited', 4, false, noJitter, 5 * MINUTE],
    ['jitter drawn at its low end: 10 % shorter', 'network', 1, true, () => 0, 270 * SECOND],
    ['jitter drawn at its high end: 10 % longer', 'network', 1, true, () => 1, 330 * SECOND],
    ['jitter drawn at 0.75: 5 % longer', 'network', 3, true, () => 0.75, 630 * SECOND],
    ['jitter past the cap: the cap is jittered too', 'network', 9, true, () => 1, 66 * MINUTE],
    ['never shorter than the spacing, even with jitter', 'rate_limited', 1, true, () => 0, 60 * SECOND],
    [
      'a spacing longer than initialDelay is the cap without a usable token',
      'network',
      9,
      false,
      noJitter,
      5 * MINUTE,
      renewalPolicy({ spacingMs: 5 * MINUTE, retry: { attempts: 3, initialDelayMs: MINUTE, multiplier: 2, maxDelayMs: 60 * MINUTE, jitter: 0.1 } }),
    ],
    [
      'rounded to a whole millisecond',
      'network',
      1,
      true,
      () => 0,
      901,
      renewalPolicy({ spacingMs: 0, retry: { attempts: 3, initialDelayMs: 1001, multiplier: 2, maxDelayMs: 60 * MINUTE, jitter: 0.1 } }),
    ],
    [
      'multiplier 3 after a single attempt',
      'server_error',
      2,
      true,
      noJitter,
      9 * MINUTE,
      renewalPolicy({ retry: { attempts: 1, initialDelayMs: MINUTE, multiplier: 3, maxDelayMs: 60 * MINUTE, jitter: 0.1 } }),
    ],
  ];
  for (const [what, reason, failures, usable, random, expected, rowPolicy] of rows) {
    test(what, () => assert.equal(retryDelayMs(reason, failures, rowPolicy ?? policy, usable, random), expected));
  }

  test('a day of network failures with a usable token: the schedule the README promises', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7].map((failures) => retryDelayMs('network', failures, policy, true, noJitter) / MINUTE);
    assert.deepEqual(delays, [5, 5, 10, 20, 40, 60, 60]);
  });
});

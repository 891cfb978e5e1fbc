import assert from 'node:assert/strict';
import { test } from 'node:test';
import { warnIfTestClock } from '../src/cli/boot';
import { ScaledClock, TEST_CLOCK_ENV, clockFromEnvironment, systemClock } from '../src/core/clock';

function warnings(run: (logger: { warn: (fields: object, message: string) => void }) => void): { fields: object; message: string }[] {
  const seen: { fields: object; message: string }[] = [];
  run({ warn: (fields, message) => seen.push({ fields, message }) });
  return seen;
}

test('a test clock from the environment is announced at start: one warning naming the variable, its rate and offset', () => {
  const now = Date.now();
  const clock = clockFromEnvironment({ [TEST_CLOCK_ENV]: `${now + 3_600_000},${now},60` });
  assert.ok(clock instanceof ScaledClock);
  const seen = warnings((logger) => warnIfTestClock(logger as never, clock));
  assert.equal(seen.length, 1);
  const { fields, message } = seen[0]!;
  assert.match(message, new RegExp(`^${TEST_CLOCK_ENV} is set: running on a test clock \\(60x, \\d+ ms from real time\\)`));
  const { variable, scale, offsetMs } = fields as { variable: string; scale: number; offsetMs: number };
  assert.equal(variable, TEST_CLOCK_ENV);
  assert.equal(scale, 60);
  assert.ok(offsetMs >= 3_600_000 && offsetMs < 3_700_000, `offset ${offsetMs}`);
});

test('the real clock is not announced', () => {
  assert.deepEqual(
    warnings((logger) => warnIfTestClock(logger as never, clockFromEnvironment({}))),
    [],
  );
  assert.deepEqual(
    warnings((logger) => warnIfTestClock(logger as never, systemClock)),
    [],
  );
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { warnIfTestClock } from '../src/cli/boot';
import { ManualClock, ScaledClock, TEST_CLOCK_ENV, clockFromEnvironment, systemClock } from '../src/core/clock';

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

test("the test clocks' monotonic clocks agree with their scale, and a wall-clock step moves only the wall clock", async () => {
  const scaled = new ScaledClock(Date.UTC(2026, 10, 20), Date.now(), 60);
  // The wall reading bracketed by two monotonic ones: however long the process is descheduled between them.
  const sample = () => ({ before: scaled.monotonic(), wall: scaled.now(), after: scaled.monotonic() });
  const first = sample();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const second = sample();
  assert.ok(second.before - first.after >= 49 * 60, `${second.before - first.after} monotonic ms in 50 real ms at 60x`);
  const wall = second.wall - first.wall;
  // Date.now() counts whole milliseconds: 60 ms of this clock at each reading.
  assert.ok(
    wall >= second.before - first.after - 120 && wall <= second.after - first.before + 120,
    `wall ${wall} ms against monotonic ${JSON.stringify({ first, second })}`,
  );

  const manual = new ManualClock(Date.UTC(2026, 10, 20));
  manual.advance(30_000);
  manual.set(manual.now() + 10_000);
  assert.equal(manual.monotonic(), 40_000, 'time passing moves both');
  manual.stepWallClock(25 * 3_600_000);
  manual.stepWallClock(-3_600_000);
  manual.set(manual.now() - 60_000);
  assert.equal(manual.monotonic(), 40_000, 'steps of the wall clock, forward or back, move only the wall clock');
  assert.equal(manual.now(), Date.UTC(2026, 10, 20) + 40_000 + 24 * 3_600_000 - 60_000);
});

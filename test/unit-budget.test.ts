import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallBudget, type BudgetModeChange } from '../src/budget/call-budget';
import { budgetKeyOf, UNKNOWN_API } from '../src/budget/keys';
import { MemorySlotLog, POLL_WHILE_IN_FLIGHT_MS } from '../src/budget/slot-log';
import { RedisSlotLog } from '../src/budget/redis-slot-log';
import { until } from './helpers';
import { redisAvailable, startRedis } from './redis-harness';

/** The budget's count and turns, on a clock the test moves (the log) or on real time with lower bounds only (the queue). */

const TIMING = { windowMs: 1_050, pendingMs: 21_000 };

test('a slot counts from its grant until a window after its answer, however long the call took', () => {
  let now = 0;
  const log = new MemorySlotLog(() => now);
  const granted = [1, 2, 3].map(() => log.reserveNow('k', 3, TIMING));
  assert.ok(granted.every((r) => r.granted));
  // All three in flight: nobody knows when one frees, so look again soon.
  assert.deepEqual(log.reserveNow('k', 3, TIMING), { granted: false, retryInMs: POLL_WHILE_IN_FLIGHT_MS });
  // The broker took 4 s to answer: counted from the grants, the places would have freed at 1,050 ms.
  now = 4_000;
  assert.equal(log.reserveNow('k', 3, TIMING).granted, false, 'still in flight at 4 s');
  for (const r of granted) if (r.granted) void log.settle('k', r.id, TIMING);
  assert.deepEqual(log.reserveNow('k', 3, TIMING), { granted: false, retryInMs: 1_050 }, 'free a window after the answers');
  now = 5_049;
  assert.equal(log.reserveNow('k', 3, TIMING).granted, false);
  now = 5_050;
  assert.equal(log.reserveNow('k', 3, TIMING).granted, true);
});

test('a slot never settled (its process died mid-call) frees after its pending time; a cancelled one at once', () => {
  let now = 0;
  const log = new MemorySlotLog(() => now);
  const first = log.reserveNow('k', 1, TIMING);
  assert.ok(first.granted);
  now = TIMING.pendingMs + TIMING.windowMs - 1;
  assert.equal(log.reserveNow('k', 1, TIMING).granted, false);
  now += 1;
  const second = log.reserveNow('k', 1, TIMING);
  assert.ok(second.granted);
  void log.cancel('k', second.id);
  assert.equal(log.reserveNow('k', 1, TIMING).granted, true, 'a slot whose call was never sent frees at once');
  now += 100_000;
  assert.equal(log.size, 0, 'a key with nothing counting is forgotten');
});

test('budget keys come from the app key and the documented api-ids only: invented ids share one budget', () => {
  const kiwoom = { name: 'kw', provider: 'kiwoom' as const, appKey: 'A'.repeat(40) };
  assert.notEqual(budgetKeyOf(kiwoom, 'ka10001').log, budgetKeyOf(kiwoom, 'kt10000').log);
  const invented = new Set(Array.from({ length: 1_000 }, (_, i) => budgetKeyOf(kiwoom, `zz${i}`).log));
  assert.equal(invented.size, 1);
  assert.ok([...invented][0]!.endsWith(`:${UNKNOWN_API}`));
  const kis = { name: 'main', provider: 'kis' as const, appKey: 'B'.repeat(36) };
  assert.equal(budgetKeyOf(kis, 'FHKST01010100').log, budgetKeyOf(kis, 'anything').log, 'KIS: one budget per app key');
  assert.equal(budgetKeyOf(kis, undefined).log, budgetKeyOf({ ...kis, name: 'other-name' }, undefined).log, 'per app key, whatever the account is called');
  assert.notEqual(budgetKeyOf(kis, undefined).log, budgetKeyOf({ ...kis, appKey: 'C'.repeat(36) }, undefined).log);
  assert.ok(!budgetKeyOf(kis, undefined).log.includes(kis.appKey), 'the key is a digest, never the app key');
});

test('the fair queue: a client sending many calls does not starve one sending one; a slot granted to a caller that left goes to the next', async (t) => {
  const budget = new CallBudget({ windowMs: 1_050, maxWaitMs: 10_000, now: () => performance.now(), sweepMs: 100 });
  t.after(() => budget.destroy());
  const key = budgetKeyOf({ name: 'main', provider: 'kis', appKey: 'K'.repeat(36) }, undefined);
  const take = (client: string, signal?: AbortSignal) => budget.take({ key, limit: 2, pendingMs: 5_000, client, signal });
  const order: string[] = [];
  const busy = Array.from({ length: 6 }, () => take('busy').then((slot) => (order.push('busy'), slot)));
  const gone = new AbortController();
  const leaving = take('leaving', gone.signal);
  const quiet = take('quiet').then((slot) => (order.push('quiet'), slot));
  gone.abort();
  assert.equal((await leaving).granted, false);
  const slots = await Promise.all([...busy.slice(0, 2), quiet]);
  for (const slot of slots) if (slot.granted) slot.answered();
  // Two free slots granted at once; then the queue takes turns: one of the busy client's calls, then the quiet one.
  assert.ok(order.indexOf('quiet') <= 3, `the quiet client is served at the queue's second turn: ${order.join(',')}`);
  for (const slot of await Promise.all(busy)) if (slot.granted) slot.answered();
  await until('the idle queue dropped by the sweep', 5_000, () => budget.footprint.queues === 0, 20);
});

/** A shared log that answers, or fails as Redis out of reach does. */
function fakeShared(): { log: RedisSlotLog; up: boolean; replicas: number } {
  const inner = new MemorySlotLog(() => performance.now(), 'shared');
  const state = { up: true, replicas: 2, log: undefined as unknown as RedisSlotLog };
  const check = () => {
    if (!state.up) throw new Error('connect ECONNREFUSED');
  };
  state.log = {
    reserve: (key: string, limit: number, timing: typeof TIMING) => Promise.resolve().then(() => (check(), inner.reserveNow(key, limit, timing))),
    settle: (key: string, id: string, timing: typeof TIMING) => Promise.resolve().then(() => (check(), inner.settle(key, id, timing))),
    cancel: (key: string, id: string) => Promise.resolve().then(() => (check(), inner.cancel(key, id))),
    adopt: () => Promise.resolve().then(check),
    heartbeat: () => Promise.resolve().then(() => (check(), state.replicas)),
  } as unknown as RedisSlotLog;
  return state;
}

test('Redis out of reach: a quiet time, then this replica keeps to its share of the limit, and says so once each way', async (t) => {
  const shared = fakeShared();
  const changes: BudgetModeChange[] = [];
  const budget = new CallBudget({ windowMs: 200, maxWaitMs: 20_000, now: () => performance.now(), onMode: (c) => changes.push(c) }, shared.log);
  t.after(() => budget.destroy());
  budget.start();
  const key = budgetKeyOf({ name: 'main', provider: 'kis', appKey: 'R'.repeat(36) }, undefined);
  const take = () => budget.take({ key, limit: 18, pendingMs: 1_000, client: 'bot' });
  await new Promise((r) => setTimeout(r, 50)); // the first heartbeat: two replicas seen
  assert.equal(budget.mode, 'shared');
  shared.up = false;
  const lostAt = performance.now();
  const first = await take();
  assert.ok(first.granted);
  const waited = performance.now() - lostAt;
  assert.ok(waited >= 1_150, `no call for a window and the lag allowance after the loss (waited ${Math.round(waited)} ms)`);
  assert.equal(budget.mode, 'fallback');
  first.answered();
  // Its share: 18 / 2 = 9 in any window, where the whole budget was 18.
  const burst = await Promise.all(Array.from({ length: 12 }, () => Promise.race([take(), new Promise<undefined>((r) => setTimeout(() => r(undefined), 100))])));
  const grantedAtOnce = burst.filter((slot) => slot?.granted).length;
  assert.equal(grantedAtOnce, 8, 'nine in the window, the first included');
  for (const slot of burst) if (slot?.granted) slot.answered();
  shared.up = true;
  await until('the next heartbeat finds Redis', 10_000, () => budget.mode === 'rejoining');
  assert.deepEqual(
    changes.map((c) => c.mode),
    ['fallback', 'rejoining'],
    'each change told once',
  );
  assert.match(changes[0]!.message, /1\/2 of each limit/);
});

test("in Redis, a budget is the app key's under the store's key prefix: deployments and app keys never share one", async (t) => {
  if (!redisAvailable()) {
    if (process.env.CI) assert.fail('redis-server is required in CI');
    return t.skip('redis-server not installed');
  }
  const redis = await startRedis(t);
  const account = (appKey: string) => ({ name: 'main', provider: 'kis' as const, appKey });
  const grants = async (log: RedisSlotLog, appKey: string) => {
    let granted = 0;
    for (let i = 0; i < 5; i++) if ((await log.reserve(budgetKeyOf(account(appKey), undefined).log, 3, TIMING)).granted) granted++;
    return granted;
  };
  const first = new RedisSlotLog(redis.client, 'deploy-a:', 'r1');
  const second = new RedisSlotLog(redis.client, 'deploy-b:', 'r2');
  const peer = new RedisSlotLog(redis.client, 'deploy-a:', 'r3');
  assert.equal(await grants(first, 'K'.repeat(36)), 3, 'the limit, then refusals');
  assert.equal(await grants(second, 'K'.repeat(36)), 3, 'another key prefix: a budget of its own, even for the same app key');
  assert.equal(await grants(first, 'L'.repeat(36)), 3, 'another app key: a budget of its own');
  assert.equal(await grants(peer, 'K'.repeat(36)), 0, 'a replica of the same deployment shares the first budget');
  const keys = await redis.client.keys('*');
  assert.ok(
    keys.every((key) => key.startsWith('deploy-a:') || key.startsWith('deploy-b:')),
    `every key under its prefix: ${keys.join(', ')}`,
  );
  assert.ok(!keys.some((key) => key.includes('K'.repeat(36))), 'no app key in a Redis key');
});

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { expiryFromSameToken, nextAttemptAfterSameToken } from '../src/lifecycle/policy';
import { DEFAULT_RENEWAL } from '../src/config/defaults';
import { brokerText } from '../src/providers/token-checks';
import type { TokenRecord } from '../src/store/account-state';
import {
  HOUR,
  MINUTE,
  T0,
  LogCapture,
  closeBeforeCleanup,
  configText,
  markerCredential,
  parseTestConfig,
  recordReliability,
  runAccountUntil,
  startSimulator,
  tempDir,
  testSidecar,
} from './helpers';

/**
 * Issue 15, the lifecycle's side: a same-token answer when the believed expiry comes first, and broker words
 * that would flood logs, /status and Slack. Each test here failed on the code before the fix.
 */

describe('same-token answers', () => {
  test("a token believed dead before the broker's same-token window ends: asks with backoff, not every spacing (57 requests an hour before)", async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'sametoken');
    // The broker keeps its 6-hour window; the config believes 4 hours, and a token at most 5 hours.
    const { simulator, url, clock } = await startSimulator(t, [cred]);
    const text = configText(join(dir, 'state'), url, [
      { name: 'main', credential: cred, extra: 'renewal: { sameTokenWindow: 4h, maxLifetime: 5h, renewBefore: 30m, jitter: 0s }' },
    ]);
    const sidecar = testSidecar(parseTestConfig(text, dir), clock);
    await sidecar.open();
    closeBeforeCleanup(t, () => sidecar.close());
    const requestsAt: number[] = [];
    let seen = 0;
    await runAccountUntil(sidecar, 'main', clock, T0 + 6 * HOUR + 2 * HOUR, () => {
      const now = simulator.stats().tokenRequests;
      for (; seen < now; seen++) requestsAt.push(clock.now());
    });
    const inLastHourOfWindow = requestsAt.filter((at) => at >= T0 + 5 * HOUR && at < T0 + 6 * HOUR).length;
    assert.ok(
      inLastHourOfWindow <= 6,
      `${inLastHourOfWindow} token requests between 5 h and 6 h: ${requestsAt.map((at) => ((at - T0) / MINUTE).toFixed(0)).join(', ')} min`,
    );
    const token = sidecar.views()[0]!.snapshot.state.token!;
    assert.ok(token.issuedAt >= T0 + 6 * HOUR, "a new token once the broker's window ended");
    assert.equal(sidecar.views()[0]!.snapshot.status, 'valid');
    recordReliability({
      kind: 'fault',
      category: 'broker',
      fault: "same-token answers while the token is believed dead (maxLifetime 5h, the broker's window 6h)",
      reason: '(same_token)',
      alert: 'none',
      issuances: 2,
      outcome: `${requestsAt.length} token requests in 8 h, ${inLastHourOfWindow} of them between 5 h and 6 h (57 before the fix); a new token once the window ended`,
    });
  });

  test("a same-token answer teaches the broker's expiry: a token believed to die early is valid again, its files say so, and nothing is asked until the window ends", async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'learn');
    const { simulator, url, clock } = await startSimulator(t, [cred]);
    const text = configText(join(dir, 'state'), url, [{ name: 'main', credential: cred }]);
    const first = testSidecar(parseTestConfig(text, dir), clock);
    await first.open();
    await runAccountUntil(first, 'main', clock, T0 + MINUTE);
    await first.close();
    // The state believes the token dies at 3 h (an older version's belief, an adopted file's): the broker says 24 h.
    const statePath = join(dir, 'state', 'accounts', 'main.json');
    const state = JSON.parse(fs.readFileSync(statePath, 'utf8')) as { token: { expiresAt: number } };
    const brokers = state.token.expiresAt;
    state.token.expiresAt = T0 + 3 * HOUR;
    fs.writeFileSync(statePath, JSON.stringify(state));
    const sidecar = testSidecar(parseTestConfig(text, dir), clock);
    await sidecar.open();
    closeBeforeCleanup(t, () => sidecar.close());
    await runAccountUntil(sidecar, 'main', clock, T0 + 5 * HOUR);
    await sidecar.sinks.idle();
    assert.equal(simulator.stats().tokenRequests, 2, 'one issuance, one same-token answer');
    const view = sidecar.views()[0]!;
    assert.equal(view.snapshot.state.token!.expiresAt, brokers, "the broker's expiry learnt");
    assert.equal(view.snapshot.status, 'valid');
    const json = JSON.parse(fs.readFileSync(join(dir, 'sinks', 'main.json'), 'utf8')) as Record<string, string | undefined>;
    assert.equal(Date.parse(json.expires_at ?? json.expiresAt ?? '') || brokers, brokers, 'the file carries the learnt expiry');
    assert.ok(view.snapshot.nextAttemptAt! >= T0 + 6 * HOUR, 'the next ask waits for the window');
  });

  test('nextAttemptAfterSameToken, a table', () => {
    const policy = { ...DEFAULT_RENEWAL, retry: { ...DEFAULT_RENEWAL.retry, initialDelayMs: 5 * MINUTE, maxDelayMs: HOUR } };
    const token = (expiresAt: number): TokenRecord => ({
      accessToken: 'x'.repeat(20),
      tokenType: 'Bearer',
      expiresAt,
      issuedAt: T0,
      receivedAt: T0,
      source: 'issued',
      renewJitter: 0,
      raw: {},
    });
    const windowEnd = T0 + 6 * HOUR + MINUTE;
    const rows: Array<[string, number, number, number, number]> = [
      // what, expiresAt, now, streak, expected
      ['window ahead, token lives past it: wait for the window', T0 + 24 * HOUR, T0 + 2 * HOUR, 1, windowEnd],
      ['window ahead, token dies first: the last useful moment', T0 + 4 * HOUR, T0 + 2 * HOUR, 1, T0 + 4 * HOUR - MINUTE],
      ['window ahead, token believed dead: back off (first)', T0 + 4 * HOUR, T0 + 5 * HOUR, 1, T0 + 5 * HOUR + 5 * MINUTE],
      ['window ahead, token believed dead: back off (third)', T0 + 4 * HOUR, T0 + 5 * HOUR, 3, T0 + 5 * HOUR + 20 * MINUTE],
      ['window ahead, token believed dead: never past the window', T0 + 4 * HOUR, T0 + 5 * HOUR + 50 * MINUTE, 3, windowEnd],
      ['window over: back off', T0 + 24 * HOUR, T0 + 7 * HOUR, 2, T0 + 7 * HOUR + 10 * MINUTE],
      ['never sooner than the spacing', T0 + 24 * HOUR, windowEnd - 1_000, 1, windowEnd - 1_000 + MINUTE],
    ];
    for (const [what, expiresAt, now, streak, expected] of rows) {
      assert.equal(nextAttemptAfterSameToken(token(expiresAt), now, streak, policy), expected, what);
    }
    assert.equal(expiryFromSameToken(token(T0 + 3 * HOUR), T0 + 24 * HOUR, T0 + 2 * HOUR, policy), T0 + 24 * HOUR);
    assert.equal(expiryFromSameToken(token(T0 + 3 * HOUR), T0 + 30 * HOUR, T0 + 2 * HOUR, policy), T0 + 24 * HOUR, 'within maxLifetime of the first issuance');
    assert.equal(expiryFromSameToken(token(T0 + 24 * HOUR), T0 + 24 * HOUR, T0 + 2 * HOUR, policy), undefined, 'nothing learnt');
  });
});

describe('broker words are capped', () => {
  test('a 240 KB error_description (the client reads at most 256 KB) reaches the log, /status and the state as at most a few hundred characters', async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'bigwords');
    const { simulator, url, clock } = await startSimulator(t, [cred]);
    const log = new LogCapture();
    const text = configText(join(dir, 'state'), url, [{ name: 'main', credential: cred }]);
    const sidecar = testSidecar(parseTestConfig(text, dir), clock, { logger: log.logger });
    await sidecar.open();
    closeBeforeCleanup(t, () => sidecar.close());
    const huge = `점검중 ${'가'.repeat(80_000)}`;
    simulator.injectFault({
      endpoint: 'kis.token',
      kind: 'status',
      status: 500,
      body: { error_code: `E${'9'.repeat(1_000)}`, error_description: huge },
      count: 1,
    });
    const outcome = await sidecar.renew('main', true);
    assert.equal(outcome?.result, 'failed');
    const failure = sidecar.views()[0]!.snapshot.state.lastFailure!;
    assert.ok(failure.message.length < 400, `${failure.message.length} characters kept`);
    assert.match(failure.message, /^KIS tokenP: HTTP 500 E9{31}… \(\d+ characters\) \(점검중 가+… \(80004 characters\)\)$/);
    for (const line of log.lines) assert.ok(line.length < 2_000, `a log line of ${line.length} characters`);
    const saved = fs.readFileSync(join(dir, 'state', 'accounts', 'main.json'), 'utf8');
    assert.ok(saved.length < 10_000, `state file of ${saved.length} characters`);
  });

  test('brokerText: one line, bounded, nothing but strings', () => {
    assert.equal(brokerText('a\nb\r\n\tc'), 'a b c');
    assert.equal(brokerText('x'.repeat(300), 10), `${'x'.repeat(10)}… (300 characters)`);
    assert.equal(brokerText(42), undefined);
    assert.equal(brokerText(undefined), undefined);
  });
});

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ManualClock } from '../src/core/clock';
import {
  fakeSlack,
  HOUR,
  MINUTE,
  SECOND,
  T0,
  LogCapture,
  configText,
  markerCredential,
  parseExposition,
  parseTestConfig,
  runAccountUntil,
  sampleValue,
  startSimulator,
  tempDir,
  testSidecar,
  closeBeforeCleanup,
} from './helpers';

/** The fake Slack of test/helpers.ts, its messages parsed. */
async function webhookReceiver(t: { after(fn: () => Promise<void>): void }) {
  const slack = await fakeSlack(t);
  return {
    url: slack.url,
    plan: slack.plan,
    hits: slack.hits,
    get received() {
      return slack.delivered().map((body) => JSON.parse(body) as { text: string; blocks: unknown[] });
    },
    get raw() {
      return slack.requests.map((r) => r.body);
    },
  };
}

const FAST_RETRY = 'renewal: { retry: { attempts: 1, initialDelay: 1m, multiplier: 1, maxDelay: 1m, jitter: 0 }, jitter: 0s }';
/** For tests of one alert kind at first start: the "no usable token" alert, which would join it, is off. */
const NO_TOKEN_ALERT_OFF = 'alerts: { noUsableToken: { enabled: false } }';

async function sidecarWithSlack(
  t: any,
  options: {
    slack?: string;
    extra?: string;
    sinks?: (dir: string) => string;
    cred?: ReturnType<typeof markerCredential>;
    wrongSecret?: boolean;
    clock?: ManualClock;
    dir?: string;
    receiver?: Awaited<ReturnType<typeof webhookReceiver>>;
    simulator?: Awaited<ReturnType<typeof startSimulator>>;
  } = {},
) {
  const dir = options.dir ?? tempDir(t);
  const cred = options.cred ?? markerCredential('kis', 'slack');
  const sim = options.simulator ?? (await startSimulator(t, [cred], { clock: options.clock }));
  const receiver = options.receiver ?? (await webhookReceiver(t));
  const used = options.wrongSecret ? { ...cred, appSecret: `W${cred.appSecret.slice(1)}` } : cred;
  const slack = `slack:\n  webhookUrl: "${receiver.url}"\n  timeout: 1s\n  retry: { attempts: 3, initialDelay: 50ms, maxDelay: 200ms }\n${(options.slack ?? '').replace(/^/gm, '  ')}`;
  const sinks = options.sinks ? options.sinks(dir) : undefined;
  const text = configText(join(dir, 'state'), sim.url, [{ name: 'main', credential: used, extra: options.extra, ...(sinks ? { sinks } : {}) }], slack);
  const logs = new LogCapture();
  const sidecar = testSidecar(parseTestConfig(text, dir), sim.clock, { logger: logs.logger, secrets: logs.secrets });
  await sidecar.open();
  closeBeforeCleanup(t, () => sidecar.close());
  return { dir, cred, sidecar, receiver, logs, ...sim };
}

const kindOf = (m: { blocks: unknown[] }) => JSON.stringify(m.blocks).match(/· (\w+)"/)?.[1];

describe('Slack alerts', () => {
  test('first start with the broker failing: one critical "no usable token" within the grace plus one evaluation, one resolution when a token is in', async (t) => {
    const { sidecar, simulator, clock, receiver } = await sidecarWithSlack(t, { extra: FAST_RETRY });
    simulator.injectFault({ endpoint: 'kis.token', kind: 'status', status: 502, body: 'bad gateway', count: 4 });
    const notifier = sidecar.notifier!;
    const evaluation = 10 * SECOND; // slack.evaluationInterval's default, as the alerts loop runs it
    const noToken = () => receiver.received.filter((m) => kindOf(m) === 'no_usable_token');
    let firedAt: number | undefined;
    // The sidecar's loops, on the test's clock: the account's, and the alerts loop every evaluation.
    for (let at = T0; at <= T0 + 5 * MINUTE; at += evaluation) {
      await runAccountUntil(sidecar, 'main', clock, at);
      await notifier.tick();
      await notifier.drained();
      if (firedAt === undefined && noToken().length > 0) firedAt = at;
    }
    assert.ok(firedAt !== undefined, 'the alert fired');
    assert.ok(firedAt - T0 <= MINUTE + evaluation, `fired ${(firedAt - T0) / 1000} s after the start (grace 60 s, evaluation 10 s)`);
    assert.ok(firedAt - T0 >= MINUTE, 'not before the grace');
    const [firing, resolved, ...more] = noToken();
    assert.match(
      firing!.text,
      /^:red_circle: \[CRITICAL\] No usable token: main \(kis, real\)\. The account has had no usable token for 1m(?:\d+s)? \(missing\)/,
    );
    assert.equal(simulator.stats().issued, 1, 'the broker recovered within the five minutes');
    assert.match(resolved?.text ?? '', /^:white_check_mark: \[RESOLVED\] Resolved: No usable token: main/);
    assert.deepEqual(more, [], 'exactly one message of each');
    assert.equal(sidecar.views()[0]!.snapshot.usable, true);
  });

  test('three failed renewals: one message; ten more within the repeat interval: none; recovery: one resolution', async (t) => {
    const { sidecar, simulator, clock, receiver } = await sidecarWithSlack(t, { extra: FAST_RETRY, slack: NO_TOKEN_ALERT_OFF });
    simulator.injectFault({ endpoint: 'kis.token', kind: 'status', status: 500, body: { error_code: 'EGW00002', error_description: 'x' }, count: 13 });
    const notifier = sidecar.notifier!;
    await runAccountUntil(sidecar, 'main', clock, T0 + 2 * MINUTE + 30 * SECOND); // attempts at 0, 1, 2 min
    await notifier.drained();
    assert.equal(receiver.received.length, 1);
    assert.equal(kindOf(receiver.received[0]!), 'renewal_failing');
    assert.match(
      receiver.received[0]!.text,
      /^:red_circle: \[CRITICAL\] Token renewal failing: main \(kis, real\)\. 3 issuance attempts in a row have failed\. Last: server_error/,
    );
    await runAccountUntil(sidecar, 'main', clock, T0 + 12 * MINUTE + 30 * SECOND); // ten more
    await notifier.tick();
    await notifier.drained();
    assert.equal(simulator.stats().tokenRequests, 13);
    assert.equal(receiver.received.length, 1);
    await runAccountUntil(sidecar, 'main', clock, T0 + 14 * MINUTE);
    await notifier.tick();
    await notifier.drained();
    assert.equal(simulator.stats().issued, 1);
    assert.equal(receiver.received.length, 2);
    assert.match(receiver.received[1]!.text, /^:white_check_mark: \[RESOLVED\] Resolved: Token renewal failing: main/);
    await notifier.tick();
    await notifier.drained();
    assert.equal(receiver.received.length, 2);
  });

  test('a reminder every repeat interval while an alert lasts', async (t) => {
    const { sidecar, clock, receiver } = await sidecarWithSlack(t, { wrongSecret: true, slack: `repeatInterval: 4h\n${NO_TOKEN_ALERT_OFF}` });
    const notifier = sidecar.notifier!;
    await runAccountUntil(sidecar, 'main', clock, T0 + MINUTE);
    for (let h = 1; h <= 9; h++) {
      clock.set(T0 + h * HOUR);
      await notifier.tick();
    }
    await notifier.drained();
    assert.deepEqual(
      receiver.received.map((m) => m.text.split(':')[2]!.trim().slice(0, 40)),
      ['[CRITICAL] Credentials rejected by the b', '[CRITICAL] Still', '[CRITICAL] Still'],
    );
  });

  test('a deleted sink repaired at once alerts nothing; one that cannot be repaired alerts once', async (t) => {
    const { dir, sidecar, clock, receiver } = await sidecarWithSlack(t, { sinks: (d) => `- { format: json, path: ${join(d, 't.json')} }` });
    const notifier = sidecar.notifier!;
    await runAccountUntil(sidecar, 'main', clock, T0 + MINUTE);
    unlinkSync(join(dir, 't.json'));
    await sidecar.sinks.tick();
    clock.set(T0 + 5 * MINUTE);
    await notifier.tick();
    await notifier.drained();
    assert.equal(receiver.received.length, 0);
    // Now a symlink takes its place: refused, and still broken after the 30 s grace.
    unlinkSync(join(dir, 't.json'));
    writeFileSync(join(dir, 'elsewhere'), 'x');
    symlinkSync(join(dir, 'elsewhere'), join(dir, 't.json'));
    clock.set(T0 + 10 * MINUTE);
    await sidecar.sinks.tick();
    await notifier.tick();
    assert.equal(receiver.received.length + notifier.queueLength, 0, 'not before the grace');
    clock.set(T0 + 10 * MINUTE + 31 * SECOND);
    await sidecar.sinks.tick();
    await notifier.tick();
    clock.set(T0 + 20 * MINUTE);
    await sidecar.sinks.tick();
    await notifier.tick();
    await notifier.drained();
    assert.equal(receiver.received.length, 1);
    assert.equal(kindOf(receiver.received[0]!), 'sink_unrepairable');
    assert.match(receiver.received[0]!.text, /Token file missing and not repaired: main .* `?symlink/);
  });

  test('a crash loop of 10 restarts during an ongoing failure sends no duplicate, and the no-token grace survives the restarts', async (t) => {
    const dir = tempDir(t);
    const clock = new ManualClock(T0);
    const cred = markerCredential('kis', 'crashloop');
    const simulator = await startSimulator(t, [cred], { clock });
    const receiver = await webhookReceiver(t);
    for (let i = 0; i < 10; i++) {
      const { sidecar } = await sidecarWithSlack({ after: () => undefined }, { dir, cred, wrongSecret: true, simulator, receiver });
      await runAccountUntil(sidecar, 'main', clock, clock.now() + MINUTE);
      await sidecar.notifier!.tick();
      await sidecar.notifier!.drained();
      await sidecar.close();
    }
    assert.equal(simulator.simulator.stats().tokenRequests, 1);
    // Each run lasts a minute: only a grace counted across the restarts reaches the one minute of no_usable_token.
    assert.deepEqual(receiver.received.map(kindOf), ['credentials_rejected', 'no_usable_token']);
  });

  test('a condition that clears while the sidecar is down is resolved at the next start', async (t) => {
    const dir = tempDir(t);
    const clock = new ManualClock(T0);
    const cred = markerCredential('kis', 'downclear');
    const simulator = await startSimulator(t, [cred], { clock });
    const receiver = await webhookReceiver(t);
    const first = await sidecarWithSlack({ after: () => undefined }, { dir, cred, wrongSecret: true, simulator, receiver });
    await runAccountUntil(first.sidecar, 'main', clock, T0 + MINUTE);
    await first.sidecar.notifier!.drained();
    await first.sidecar.close();
    // Fixed while down: the right secret.
    const second = await sidecarWithSlack(t, { dir, cred, simulator, receiver });
    await runAccountUntil(second.sidecar, 'main', clock, T0 + 2 * MINUTE);
    await second.sidecar.notifier!.tick();
    await second.sidecar.notifier!.drained();
    assert.deepEqual(
      receiver.received.map((m) => /\[(\w+)\]/.exec(m.text)![1]),
      ['CRITICAL', 'RESOLVED'],
    );
  });

  test('a token that dies and is replaced at once still alerts, then resolves', async (t) => {
    const { sidecar, simulator, clock, receiver } = await sidecarWithSlack(t);
    await runAccountUntil(sidecar, 'main', clock, T0 + HOUR);
    simulator.maintenance();
    await runAccountUntil(sidecar, 'main', clock, T0 + 2 * HOUR);
    await sidecar.notifier!.drained();
    assert.deepEqual(
      receiver.received.map((m) => [kindOf(m), /\[(\w+)\]/.exec(m.text)![1]]),
      [
        ['token_invalidated', 'WARNING'],
        ['token_invalidated', 'RESOLVED'],
      ],
    );
  });
});

describe('Slack delivery', () => {
  test('500 then 200: retried and sent; 429 waits for Retry-After; a hang times out; all counted; renewals do not wait', async (t) => {
    const { sidecar, simulator, clock, receiver } = await sidecarWithSlack(t, {
      wrongSecret: true,
      slack: `notices: { renewed: true }\n${NO_TOKEN_ALERT_OFF}`,
    });
    const notifier = sidecar.notifier!;
    receiver.plan.push({ status: 500 }, { status: 500 });
    await runAccountUntil(sidecar, 'main', clock, T0 + MINUTE); // credentials_rejected
    await notifier.drained();
    assert.equal(receiver.received.length, 1);

    receiver.plan.push({ status: 429, headers: { 'retry-after': '1' } });
    clock.set(T0 + 5 * HOUR);
    // Timed from before the reminder is sent: the 429 may come back before tick() returns.
    const started = Date.now();
    await notifier.tick(); // reminder
    await notifier.drained();
    assert.ok(Date.now() - started >= 950, `Retry-After honoured (${Date.now() - started} ms)`);

    // Slack hangs: every attempt times out (1 s); meanwhile a renewal goes ahead at its own pace.
    receiver.plan.push({ status: 0, hang: true }, { status: 0, hang: true }, { status: 0, hang: true });
    clock.set(T0 + 9 * HOUR + 1);
    await notifier.tick(); // another reminder, stuck in delivery
    const renewStart = Date.now();
    const outcome = await sidecar.renew('main', true); // the forced attempt is rejected again, immediately
    assert.equal(outcome?.result, 'failed');
    // Waiting for Slack would take at least its 1 s timeout; under that, with room for a loaded machine.
    assert.ok(Date.now() - renewStart < 900, `a renewal does not wait for Slack (${Date.now() - renewStart} ms)`);
    assert.deepEqual(
      simulator
        .requestLog()
        .filter((r) => r.endpoint === 'kis.token')
        .map((r) => r.at),
      [T0, T0 + 9 * HOUR + 1],
    );
    await notifier.drained(15_000);

    const s = parseExposition((await sidecar.metrics.render(false)).body);
    const r = (result: string) => sampleValue(s, 'broker_token_slack_notifications_total', { result });
    assert.equal(r('sent'), 2);
    assert.equal(r('retried'), 2 + 1 + 2);
    assert.equal(r('failed'), 1);
    assert.equal(r('dropped'), 0);
    assert.equal(sampleValue(s, 'broker_token_slack_queue_length'), 0);
  });

  test('a 4xx other than 429 (a revoked webhook) fails at once, without retries', async (t) => {
    const { sidecar, clock, receiver } = await sidecarWithSlack(t, { wrongSecret: true });
    receiver.plan.push({ status: 404 });
    await runAccountUntil(sidecar, 'main', clock, T0 + MINUTE);
    await sidecar.notifier!.drained();
    assert.equal(receiver.hits(), 1);
    const s = parseExposition((await sidecar.metrics.render(false)).body);
    assert.equal(sampleValue(s, 'broker_token_slack_notifications_total', { result: 'failed' }), 1);
  });

  test('no message, in either language, nor any log line or metric, carries a secret', async (t) => {
    for (const language of ['en', 'ko']) {
      const { sidecar, simulator, clock, receiver, cred, logs, dir } = await sidecarWithSlack(t, {
        slack: `language: ${language}\nnotices: { renewed: true, lifecycle: true }`,
        extra: FAST_RETRY,
        sinks: (d) => `- { format: json, path: ${join(d, 't.json')} }`,
      });
      simulator.injectFault({
        endpoint: 'kis.token',
        kind: 'status',
        status: 403,
        body: { error_code: 'EGW00133', error_description: '접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)' },
        count: 4,
      });
      await runAccountUntil(sidecar, 'main', clock, T0 + 10 * MINUTE);
      simulator.maintenance();
      clock.set(T0 + HOUR);
      await runAccountUntil(sidecar, 'main', clock, T0 + 2 * HOUR);
      unlinkSync(join(dir, 't.json'));
      symlinkSync('/etc/hostname', join(dir, 't.json'));
      await sidecar.sinks.tick();
      clock.set(T0 + 3 * HOUR);
      await sidecar.sinks.tick();
      await sidecar.notifier!.tick();
      await sidecar.close();
      const kinds = new Set(receiver.received.map(kindOf));
      for (const kind of ['rate_limited', 'renewal_failing', 'token_invalidated', 'sink_unrepairable']) assert.ok(kinds.has(kind), `${language}: ${kind} sent`);
      assert.ok(receiver.received.some((m) => m.text.includes(language === 'ko' ? '토큰' : 'Token renewed')));
      const token = sidecar.views()[0]!.snapshot.state.token!.accessToken;
      const everything = [receiver.raw.join('\n'), logs.text(), (await sidecar.metrics.render(false)).body].join('\n');
      for (const secret of [cred.appKey, cred.appSecret, token, receiver.url, 'MARKERHOOKSECRET'])
        assert.ok(!everything.includes(secret), `${language}: a secret leaked`);
    }
  });
});

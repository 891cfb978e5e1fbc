import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { nodeFileSystem, type FileSystem } from '../src/core/atomic-file';
import { ManualClock } from '../src/core/clock';
import type { FaultSpec } from '../src/simulator';
import type { Sidecar } from '../src/sidecar';
import {
  fakeSlack,
  type WebhookBehaviour,
  HOUR,
  MINUTE,
  SECOND,
  T0,
  LogCapture,
  configText,
  markerCredential,
  parseExposition,
  parseTestConfig,
  recordReliability,
  runAccountUntil,
  sampleValue,
  startSimulator,
  tempDir,
  testSidecar,
  closeBeforeCleanup,
  opensForWriting,
  serveSidecar,
  realPathOf,
} from './helpers';

/**
 * The fault matrix: one test per fault, each checking that the sidecar stays up, names the reason in its
 * metrics, raises the alert that fits (its own Slack alert), and loses nothing that was good: the last good
 * token stays in the state and in every file. Each test records its finding for docs/reliability.md.
 */

type Receiver = { url: string; kinds: () => string[]; plan: WebhookBehaviour[] };

async function slackReceiver(t: { after(fn: () => Promise<void>): void }): Promise<Receiver> {
  const slack = await fakeSlack(t, '/services/T/B/MATRIXHOOKSECRET');
  return {
    url: slack.url,
    kinds: () => slack.delivered().map((m) => `${/· (\w+)"/.exec(m)?.[1] ?? 'notice'}:${/\[(\w+)\]/.exec(m)?.[1] ?? ''}`),
    plan: slack.plan,
  };
}

/** File-system calls that fail with `code` for paths matching `match`, while `failing` is set. */
function faultyFs() {
  const state: { failing?: { match: (path: string) => boolean; code: string } } = {};
  const check = (path: fs.PathLike) => {
    if (state.failing?.match(realPathOf(path))) throw Object.assign(new Error(`${state.failing.code}: injected`), { code: state.failing.code });
  };
  const filesystem: FileSystem = {
    ...nodeFileSystem,
    // EROFS, EACCES on a file's directory and ENOSPC strike writes: an open for reading still works.
    open: (async (path: fs.PathLike, flags?: any, mode?: any) => (opensForWriting(flags) && check(path), fsp.open(path, flags, mode))) as FileSystem['open'],
    mkdir: (async (path: fs.PathLike, options?: any) => (check(path), fsp.mkdir(path, options))) as FileSystem['mkdir'],
    rename: async (from: fs.PathLike, to: fs.PathLike) => (check(to), fsp.rename(from, to)),
  };
  return { filesystem, state };
}

interface Harness {
  dir: string;
  sidecar: Sidecar;
  simulator: Awaited<ReturnType<typeof startSimulator>>['simulator'];
  clock: Awaited<ReturnType<typeof startSimulator>>['clock'];
  receiver: Receiver;
  good: string;
  kisFile: string;
  jsonFile: string;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  slack(): Promise<string[]>;
  filesHold(token: string): boolean;
}

async function harness(t: any, options: { fs?: FileSystem; webhookUrl?: string; tag?: string; brokerClock?: ManualClock } = {}): Promise<Harness> {
  const dir = tempDir(t);
  const cred = markerCredential('kis', options.tag ?? 'matrix');
  // The broker keeps its own time when a test moves only the host's clock.
  const sim = await startSimulator(t, [cred], options.brokerClock ? { clock: options.brokerClock } : {});
  const hostClock = options.brokerClock ? new ManualClock(T0) : sim.clock;
  const receiver = await slackReceiver(t);
  const kisDir = join(dir, 'KIS');
  const jsonFile = join(dir, 'tokens', 'main.json');
  const text = configText(
    join(dir, 'state'),
    sim.url,
    [
      {
        name: 'main',
        credential: cred,
        extra: 'renewal: { retry: { jitter: 0 } }\nhttp: { timeout: 1s }',
        sinks: `- { format: kis-auth, dir: ${kisDir} }\n- { format: json, path: ${jsonFile} }`,
      },
    ],
    `slack:\n  webhookUrl: "${options.webhookUrl ?? receiver.url}"\n  timeout: 1s\n  retry: { attempts: 2, initialDelay: 100ms, maxDelay: 200ms }`,
  );
  const logs = new LogCapture();
  const sidecar = testSidecar(parseTestConfig(text, dir), hostClock, { fs: options.fs, logger: logs.logger, secrets: logs.secrets });
  await sidecar.open();
  closeBeforeCleanup(t, () => sidecar.close());
  await runAccountUntil(sidecar, 'main', hostClock, T0 + MINUTE);
  await sidecar.sinks.idle();
  const good = sidecar.views()[0]!.snapshot.state.token!.accessToken;
  const a = { account: 'main', provider: 'kis', env: 'real' };
  return {
    dir,
    sidecar,
    simulator: sim.simulator,
    clock: hostClock,
    receiver,
    good,
    kisFile: join(kisDir, 'KIS20261120'),
    jsonFile,
    async metric(name, labels = {}) {
      const samples = parseExposition((await sidecar.metrics.render(false)).body);
      return sampleValue(samples, `broker_token_${name}`, name.startsWith('slack_') ? labels : { ...a, ...labels });
    },
    async slack() {
      await sidecar.notifier!.tick();
      await sidecar.notifier!.drained(15_000);
      return receiver.kinds();
    },
    filesHold(token) {
      return [join(kisDir, 'KIS20261120'), jsonFile].every((f) => fs.existsSync(f) && fs.readFileSync(f, 'utf8').includes(token));
    },
  };
}

const RENEWAL_DUE = T0 + 22 * HOUR + 55 * MINUTE; // 1 h before expiry, less half the 10 min jitter (random 0.5)

describe('broker faults at renewal time', () => {
  const cases: Array<[string, Omit<FaultSpec, 'endpoint' | 'count'> & Record<string, unknown>, string]> = [
    ['HTTP 500', { kind: 'status', status: 500, body: { error_code: 'EGW00002', error_description: '서버 에러입니다' } }, 'server_error'],
    ['timeout (no answer)', { kind: 'hang' }, 'timeout'],
    ['connection reset', { kind: 'drop' }, 'network'],
    ['garbage body', { kind: 'garbage' }, 'bad_response'],
    ['truncated JSON', { kind: 'truncated' }, 'bad_response'],
    ['missing fields', { kind: 'body', body: { token_type: 'Bearer', expires_in: 86400 } }, 'bad_response'],
    [
      'an expiry in the past',
      {
        kind: 'body',
        body: { access_token: `eyJ${'p'.repeat(300)}`, access_token_token_expired: '2026-11-21 07:00:00', token_type: 'Bearer', expires_in: 86400 },
      },
      'bad_response',
    ],
    [
      'a token of implausible length',
      { kind: 'body', body: { access_token: 'x'.repeat(9000), access_token_token_expired: '2026-11-22 09:00:00', token_type: 'Bearer', expires_in: 86400 } },
      'bad_response',
    ],
    ['a redirect', { kind: 'redirect', location: 'http://127.0.0.1:1/elsewhere' }, 'bad_response'],
  ];
  for (const [fault, spec, reason] of cases) {
    test(`${fault}: three failures keep the good token, alert, then renew`, async (t) => {
      const h = await harness(t, { tag: fault.replace(/\W/g, '').slice(0, 12) });
      h.clock.set(RENEWAL_DUE);
      h.simulator.injectFault({ endpoint: 'kis.token', count: 3, ...spec } as FaultSpec);
      await runAccountUntil(h.sidecar, 'main', h.clock, RENEWAL_DUE + 11 * MINUTE); // attempts at +0, +5, +10 min
      assert.equal(await h.metric('renewal_failures_total', { reason }), 3);
      const during = h.sidecar.views()[0]!;
      assert.equal(during.snapshot.state.token!.accessToken, h.good, 'the good token stays');
      assert.equal(during.snapshot.usable, true);
      assert.ok(h.filesHold(h.good), 'the files keep the good token');
      const alerted = await h.slack();
      assert.ok(alerted.includes('renewal_failing:WARNING'), `alerts: ${alerted.join(', ')}`);
      await runAccountUntil(h.sidecar, 'main', h.clock, RENEWAL_DUE + 30 * MINUTE); // the 4th attempt, +20 min, succeeds
      await h.sidecar.sinks.idle();
      const renewed = h.sidecar.views()[0]!.snapshot.state.token!.accessToken;
      assert.notEqual(renewed, h.good);
      assert.ok(h.filesHold(renewed));
      assert.ok((await h.slack()).includes('renewal_failing:RESOLVED'));
      assert.equal(h.simulator.stats().issued, 2);
      recordReliability({
        kind: 'fault',
        category: 'broker',
        fault,
        reason,
        alert: 'renewal failing (after 3), resolved on renewal',
        issuances: 1,
        outcome:
          'kept the token and its files through 3 failures (retries +5, +5 min); renewed at the 4th attempt, 20 min after the first, 40 min before expiry',
      });
    });
  }

  test('403 EGW00133: waits out the spacing, then its backoff; alerts rate-limited', async (t) => {
    const h = await harness(t, { tag: 'm133' });
    h.clock.set(RENEWAL_DUE);
    h.simulator.injectFault({
      endpoint: 'kis.token',
      kind: 'status',
      status: 403,
      body: { error_description: '접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)', error_code: 'EGW00133' },
      count: 2,
    });
    await runAccountUntil(h.sidecar, 'main', h.clock, RENEWAL_DUE + 2 * MINUTE);
    assert.equal(await h.metric('renewal_failures_total', { reason: 'rate_limited' }), 2);
    assert.equal(await h.metric('rate_limited_total'), 2);
    assert.ok((await h.slack()).includes('rate_limited:WARNING'));
    await runAccountUntil(h.sidecar, 'main', h.clock, RENEWAL_DUE + 10 * MINUTE);
    const times = h.simulator
      .requestLog()
      .filter((r) => r.endpoint === 'kis.token')
      .map((r) => (r.at - RENEWAL_DUE) / SECOND);
    assert.deepEqual(times.slice(1), [0, 60, 180]);
    assert.ok(h.filesHold(h.sidecar.views()[0]!.snapshot.state.token!.accessToken));
    recordReliability({
      kind: 'fault',
      category: 'broker',
      fault: '403 EGW00133',
      reason: 'rate_limited',
      alert: 'issuance rate-limited',
      issuances: 1,
      outcome: 'retried after the spacing (60 s) then 120 s; token and files kept meanwhile; renewed 3 min late, no extra request',
    });
  });

  for (const [code, what] of [
    ['EGW00103', 'app key'],
    ['EGW00105', 'app secret'],
  ] as const) {
    test(`403 ${code} (bad ${what}): one request, then none; credentials alert; the token serves until it expires`, async (t) => {
      const h = await harness(t, { tag: `m${code}` });
      h.clock.set(RENEWAL_DUE);
      h.simulator.injectFault({
        endpoint: 'kis.token',
        kind: 'status',
        status: 403,
        body: { error_description: `유효하지 않은 ${what}`, error_code: code },
        count: 100,
      });
      await runAccountUntil(h.sidecar, 'main', h.clock, RENEWAL_DUE + HOUR - MINUTE);
      assert.equal(h.simulator.stats().tokenRequests, 2, 'the first issuance and one failed renewal');
      assert.equal(await h.metric('renewal_failures_total', { reason: 'auth_rejected' }), 1);
      assert.equal(await h.metric('credentials_rejected'), 1);
      assert.ok((await h.slack()).includes('credentials_rejected:CRITICAL'));
      assert.ok(h.filesHold(h.good));
      recordReliability({
        kind: 'fault',
        category: 'broker',
        fault: `403 ${code}`,
        reason: 'auth_rejected',
        alert: 'credentials rejected (critical)',
        issuances: 0,
        outcome: 'one request, then none until the credentials change (or renew --force); the valid token keeps serving',
      });
    });
  }

  test('an absurd expiry (years away) is cut to 24 h and the token used', async (t) => {
    const h = await harness(t, { tag: 'mabsurd' });
    h.clock.set(RENEWAL_DUE);
    const token = `eyJ0eXAiOiJKV1QifQ.${Buffer.from(JSON.stringify({ sub: 'token', iat: Math.floor(RENEWAL_DUE / 1000) })).toString('base64url')}.${'s'.repeat(80)}`;
    h.simulator.injectFault({
      endpoint: 'kis.token',
      kind: 'body',
      body: { access_token: token, access_token_token_expired: '2031-01-01 00:00:00', token_type: 'Bearer', expires_in: 86400 },
    });
    await runAccountUntil(h.sidecar, 'main', h.clock, RENEWAL_DUE + MINUTE);
    assert.equal(h.sidecar.views()[0]!.snapshot.state.token!.expiresAt, RENEWAL_DUE + 24 * HOUR);
    assert.equal(await h.metric('expiry_clamped_total'), 1);
    recordReliability({
      kind: 'fault',
      category: 'broker',
      fault: 'an absurd expiry (2031)',
      reason: '(expiry_clamped_total)',
      alert: 'none',
      issuances: 1,
      outcome: 'token accepted with its expiry cut to issuance + 24 h (maxLifetime); asking again would only get the same token',
    });
  });
});

describe('disk faults', () => {
  for (const [fault, code, reason] of [
    ['read-only directory', 'EROFS', 'read_only'],
    ['permission denied', 'EACCES', 'permission_denied'],
    ['disk full', 'ENOSPC', 'disk_full'],
  ] as const) {
    test(`${fault} on a sink: retried with backoff, reported, alerted after the grace; other sinks and renewal go on`, async (t) => {
      const { filesystem, state } = faultyFs();
      const h = await harness(t, { fs: filesystem, tag: `d${code}` });
      state.failing = { match: (p) => p.includes(`${h.dir}/tokens`), code };
      h.clock.set(T0 + 7 * HOUR);
      assert.equal((await h.sidecar.renew('main', true))?.result, 'issued');
      await h.sidecar.sinks.idle();
      const fresh = h.sidecar.views()[0]!.snapshot.state.token!.accessToken;
      assert.ok(fs.readFileSync(h.kisFile, 'utf8').includes(fresh), 'the other sink took the new token');
      assert.ok(fs.readFileSync(h.jsonFile, 'utf8').includes(h.good), 'the failing sink keeps its last complete content');
      assert.equal(await h.metric('sink_write_failures_total', { sink: 'json', format: 'json', reason }), 1);
      for (let s = 1; s <= 40; s++) {
        h.clock.set(T0 + 7 * HOUR + s * SECOND);
        await h.sidecar.sinks.tick();
      }
      assert.ok((await h.slack()).includes('sink_unrepairable:CRITICAL'));
      const failures = await h.metric('sink_write_failures_total', { sink: 'json', format: 'json', reason });
      assert.ok(failures >= 4 && failures <= 8, `${failures} attempts in 40 s: backoff 1, 2, 4, 8, 16 s`);
      state.failing = undefined;
      h.clock.set(T0 + 7 * HOUR + 2 * MINUTE);
      await h.sidecar.sinks.tick();
      assert.ok(fs.readFileSync(h.jsonFile, 'utf8').includes(fresh));
      assert.ok((await h.slack()).includes('sink_unrepairable:RESOLVED'));
      recordReliability({
        kind: 'fault',
        category: 'disk',
        fault: `${fault} (${code}) on a sink`,
        reason,
        alert: 'token file missing and not repaired, after 30 s; resolved on recovery',
        issuances: 0,
        outcome: `retried ${failures} times in 40 s (backoff 1 s doubling); other sink and renewal unaffected; the file kept its last complete content`,
      });
    });
  }

  test('disk full under the state directory: the attempt is not recorded, so no request is sent', async (t) => {
    const { filesystem, state } = faultyFs();
    const h = await harness(t, { fs: filesystem, tag: 'dstate' });
    state.failing = { match: (p) => p.includes(`${h.dir}/state`), code: 'ENOSPC' };
    h.clock.set(T0 + 7 * HOUR);
    const outcome = await h.sidecar.renew('main', true);
    assert.equal(outcome?.result === 'failed' && outcome.reason, 'store_error');
    assert.equal(h.simulator.stats().tokenRequests, 1, 'nothing sent that could not be recorded first');
    assert.equal(await h.metric('renewal_failures_total', { reason: 'store_error' }), 1);
    assert.ok(h.filesHold(h.good));
    state.failing = undefined;
    recordReliability({
      kind: 'fault',
      category: 'disk',
      fault: 'disk full under the state directory',
      reason: 'store_error (and state_errors_total)',
      alert: 'renewal failing, if it lasts 3 attempts',
      issuances: 0,
      outcome: 'the attempt could not be written first, so no request was sent; token and files kept',
    });
  });

  for (const [fault, harm, reason] of [
    ['a sink path replaced by a symlink', (p: string) => (fs.unlinkSync(p), fs.symlinkSync('/etc/hostname', p)), 'symlink'],
    ['a sink path replaced by a directory', (p: string) => (fs.unlinkSync(p), fs.mkdirSync(p)), 'not_regular_file'],
  ] as const) {
    test(`${fault}: refused, reported, alerted; nothing written through it`, async (t) => {
      const h = await harness(t, { tag: reason.slice(0, 10) });
      harm(h.jsonFile);
      await h.sidecar.sinks.tick();
      h.clock.set(T0 + 2 * MINUTE);
      await h.sidecar.sinks.tick();
      assert.ok((await h.metric('sink_write_failures_total', { sink: 'json', format: 'json', reason })) >= 1);
      assert.ok((await h.slack()).includes('sink_unrepairable:CRITICAL'));
      assert.equal(fs.readFileSync('/etc/hostname', 'utf8').includes(h.good), false);
      assert.ok(fs.readFileSync(h.kisFile, 'utf8').includes(h.good));
      recordReliability({
        kind: 'fault',
        category: 'disk',
        fault,
        reason,
        alert: 'token file missing and not repaired',
        issuances: 0,
        outcome: 'left in place and refused (never written through); other sinks unaffected',
      });
    });
  }

  test('the state directory deleted while running: recreated at the next save, the lock put back', async (t) => {
    const h = await harness(t, { tag: 'dgone' });
    fs.rmSync(join(h.dir, 'state'), { recursive: true, force: true });
    h.clock.set(T0 + 7 * HOUR);
    assert.equal((await h.sidecar.renew('main', true))?.result, 'issued');
    assert.ok(fs.existsSync(join(h.dir, 'state', 'accounts', 'main.json')));
    assert.equal(fs.statSync(join(h.dir, 'state')).mode & 0o777, 0o700);
    await new Promise((r) => setTimeout(r, 5_500)); // the lock's heartbeat (5 s) finds its file gone
    assert.ok(fs.existsSync(join(h.dir, 'state', 'sidecar.lock')));
    recordReliability({
      kind: 'fault',
      category: 'disk',
      fault: 'the state directory deleted while running',
      reason: '(none: recovered)',
      alert: 'none',
      issuances: 1,
      outcome: 'directory and state recreated (0700/0600) at the next save; lock file put back by its heartbeat; process stays up',
    });
  });
});

describe('Slack faults', () => {
  for (const [fault, plan, expect] of [
    ['Slack answers 500', [{ status: 500 }], { retried: 1, sent: 1, failed: 0 }],
    ['Slack answers 429 with Retry-After: 1', [{ status: 429, headers: { 'retry-after': '1' } }], { retried: 1, sent: 1, failed: 0 }],
    [
      'Slack never answers (a hang)',
      [
        { status: 0, hang: true },
        { status: 0, hang: true },
      ],
      { retried: 1, sent: 0, failed: 1 },
    ],
  ] as const) {
    test(`${fault}: counted by result; renewal timing unchanged`, async (t) => {
      const h = await harness(t, { tag: `s${fault.slice(13, 17).replace(/\W/g, '')}` });
      h.receiver.plan.push(...plan);
      h.clock.set(RENEWAL_DUE);
      h.simulator.injectFault({ endpoint: 'kis.token', kind: 'status', status: 500, count: 3 });
      await runAccountUntil(h.sidecar, 'main', h.clock, RENEWAL_DUE + 30 * MINUTE);
      await h.sidecar.notifier!.drained(15_000);
      const times = h.simulator
        .requestLog()
        .filter((r) => r.endpoint === 'kis.token')
        .map((r) => (r.at - RENEWAL_DUE) / MINUTE);
      assert.deepEqual(times.slice(1), [0, 5, 10, 20], 'the same attempts as with Slack well');
      for (const [result, count] of Object.entries(expect))
        assert.ok((await h.metric('slack_notifications_total', { result })) >= count, `${result} >= ${count}`);
      recordReliability({
        kind: 'fault',
        category: 'slack',
        fault,
        reason: `slack_notifications_total ${JSON.stringify(expect)}`,
        alert: '(Prometheus: BrokerTokenSlackDeliveryFailing when failed)',
        issuances: 1,
        outcome: 'delivery retried apart from renewal; renewal attempts at the same minutes as without the fault',
      });
    });
  }

  test('an unresolvable Slack host: fails after its retries, counted; nothing else affected', async (t) => {
    const h = await harness(t, { webhookUrl: 'https://hooks.slack.invalid/services/T/B/MATRIXHOOKSECRET', tag: 'sdns' });
    h.clock.set(RENEWAL_DUE);
    h.simulator.injectFault({ endpoint: 'kis.token', kind: 'status', status: 500, count: 3 });
    await runAccountUntil(h.sidecar, 'main', h.clock, RENEWAL_DUE + 30 * MINUTE);
    await h.sidecar.notifier!.drained(15_000);
    assert.ok((await h.metric('slack_notifications_total', { result: 'failed' })) >= 1);
    assert.equal(h.simulator.stats().issued, 2);
    recordReliability({
      kind: 'fault',
      category: 'slack',
      fault: 'an unresolvable Slack host',
      reason: 'slack_notifications_total{result="failed"}',
      alert: '(Prometheus: BrokerTokenSlackDeliveryFailing)',
      issuances: 1,
      outcome: 'each message failed after 2 attempts; renewal unaffected',
    });
  });
});

describe('clock faults', () => {
  test('a jump forward past expiry: renewed at once', async (t) => {
    const h = await harness(t, { tag: 'cfwd' });
    h.clock.set(T0 + 30 * HOUR);
    await runAccountUntil(h.sidecar, 'main', h.clock, T0 + 30 * HOUR + MINUTE);
    const token = h.sidecar.views()[0]!.snapshot.state.token!;
    assert.equal(token.issuedAt, T0 + 30 * HOUR);
    assert.ok(h.filesHold(token.accessToken));
    assert.equal(h.simulator.stats().issued, 2);
    recordReliability({
      kind: 'fault',
      category: 'clock',
      fault: 'a jump forward past expiry',
      reason: '(none)',
      alert: 'none (replaced before the next evaluation)',
      issuances: 1,
      outcome: 'seen as expired at the next tick (sleeps are cut to 30 s), renewed at once, files rewritten',
    });
  });

  test('a jump backward: no issuance waits out the jump; the spacing still holds', async (t) => {
    const broker = new ManualClock(T0);
    const h = await harness(t, { tag: 'cback', brokerClock: broker });
    broker.set(T0 + 2 * MINUTE);
    h.clock.set(T0 - 3 * HOUR);
    const outcome = await h.sidecar.renew('main', true);
    assert.deepEqual(outcome, { result: 'wait', until: T0 - 3 * HOUR + MINUTE, why: 'spacing' });
    h.clock.set(T0 - 3 * HOUR + MINUTE);
    assert.equal((await h.sidecar.renew('main', true))?.result, 'same_token'); // KIS's 6-hour rule, as a broker would
    recordReliability({
      kind: 'fault',
      category: 'clock',
      fault: 'a jump backward (3 h)',
      reason: '(none)',
      alert: 'none',
      issuances: 0,
      outcome: 'a due attempt waits one spacing from now, not the 3 h of the jump; the token is kept',
    });
  });
});

describe('HTTP faults', () => {
  test('slow clients are cut off by the request timeouts while others are served', async (t) => {
    const h = await harness(t, { tag: 'http' });
    const base = await serveSidecar(t, h.sidecar, { requestTimeoutMs: 2_000 });
    const port = Number(new URL(base).port);
    // A slowloris: headers one byte every 300 ms.
    const slow = connect(port, '127.0.0.1');
    let closedAfter = 0;
    let answer = '';
    const started = Date.now();
    slow.on('data', (d: Buffer) => (answer += d.toString()));
    slow.on('close', () => (closedAfter = Date.now() - started));
    slow.on('error', () => undefined);
    const drip = setInterval(() => slow.write('X'), 300);
    slow.write('GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    assert.equal((await fetch(`${base}/healthz`)).status, 200, 'others are served meanwhile');
    while (closedAfter === 0 && Date.now() - started < 15_000) await new Promise((r) => setTimeout(r, 100));
    clearInterval(drip);
    assert.ok(closedAfter > 1_500 && closedAfter < 6_000, `slow client closed after ${closedAfter} ms`);
    assert.match(answer, /^HTTP\/1\.1 408/);
    recordReliability({
      kind: 'fault',
      category: 'http',
      fault: 'a slow client (headers one byte per 300 ms)',
      reason: '(request timeout)',
      alert: 'none',
      issuances: 0,
      outcome: `answered 408 and closed after ${(closedAfter / 1000).toFixed(1)} s (2 s request timeout, checked each second); other requests served meanwhile`,
    });
  });

  test('a flood of 2,000 /metrics requests leaves memory flat', async (t) => {
    // In-process, with forced garbage collection: what is still referenced after the flood is what a leak is.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const h = await harness(t, { tag: 'flood' });
    const base = await serveSidecar(t, h.sidecar);
    const flood = async () => {
      for (let batch = 0; batch < 40; batch++) await Promise.all(Array.from({ length: 50 }, async () => (await fetch(`${base}/metrics`)).text()));
    };
    const heap = async () => {
      await new Promise((r) => setTimeout(r, 50));
      gc();
      gc();
      return process.memoryUsage().heapUsed / 2 ** 20;
    };
    await flood(); // warm-up: code paths compiled, pools filled
    const before = await heap();
    const rssBefore = process.memoryUsage().rss / 2 ** 20;
    await flood();
    const after = await heap();
    const rssAfter = process.memoryUsage().rss / 2 ** 20;
    assert.ok(after - before < 3, `heap after GC ${before.toFixed(1)} -> ${after.toFixed(1)} MiB over 2,000 scrapes`);
    recordReliability({
      kind: 'fault',
      category: 'http',
      fault: 'a flood of 2,000 /metrics requests (50 at a time)',
      reason: '(none)',
      alert: 'none',
      issuances: 0,
      outcome: `heap after GC ${before.toFixed(1)} -> ${after.toFixed(1)} MiB across the flood (after a warm-up flood); RSS ${rssBefore.toFixed(0)} -> ${rssAfter.toFixed(0)} MiB`,
    });
  });
});

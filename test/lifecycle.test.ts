import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { readFileSync, writeFileSync, mkdirSync, statSync, readdirSync, existsSync } from 'node:fs';
import { join, sep } from 'node:path';
import type { PathLike } from 'node:fs';
import { nodeFileSystem, type FileSystem } from '../src/core/atomic-file';
import { createServer } from 'node:http';
import { Agent } from 'undici';
import { ManualClock } from '../src/core/clock';
import { EventBus } from '../src/core/events';
import { CustomProbe } from '../src/lifecycle/custom-probe';
import type { SidecarEvents } from '../src/core/events';
import type { Sidecar } from '../src/sidecar';
import {
  HOUR,
  closeBeforeCleanup,
  MINUTE,
  SECOND,
  T0,
  configText,
  markerCredential,
  parseExposition,
  sampleValue,
  parseTestConfig,
  runAccountUntil,
  startSimulator,
  tempDir,
  testSidecar,
  LogCapture,
  recordReliability,
} from './helpers';
import { expiryFromSameToken, nextAttemptAfterSameToken } from '../src/lifecycle/policy';
import { DEFAULT_RENEWAL } from '../src/config/defaults';
import { brokerText } from '../src/providers/token-checks';
import type { TokenRecord } from '../src/store/account-state';

const QUIET_RETRY = 'renewal: { retry: { jitter: 0 }, jitter: 0s }';

async function openSidecar(t: { after(fn: () => Promise<void> | void): void }, text: string, dir: string, clock: ManualClock, lock = true): Promise<Sidecar> {
  const sidecar = testSidecar(parseTestConfig(text, dir), clock, { lock });
  await sidecar.open();
  closeBeforeCleanup(t, () => sidecar.close());
  return sidecar;
}

function collect<K extends keyof SidecarEvents>(sidecar: Sidecar, event: K): Array<SidecarEvents[K]> {
  const seen: Array<SidecarEvents[K]> = [];
  sidecar.bus.on(event, (payload) => seen.push(payload));
  return seen;
}

function stateOf(dir: string, account: string): Record<string, any> {
  return JSON.parse(readFileSync(join(dir, 'state', 'accounts', `${account}.json`), 'utf8'));
}

describe('lifecycle against the simulator (KIS)', () => {
  test('20 restarts in a row with a valid token on disk: exactly one issuance in total', async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'restart');
    const { simulator, url, clock } = await startSimulator(t, [cred]);
    const text = configText(join(dir, 'state'), url, [{ name: 'main', credential: cred }]);
    for (let i = 0; i < 20; i++) {
      const sidecar = testSidecar(parseTestConfig(text, dir), clock);
      await sidecar.open();
      await runAccountUntil(sidecar, 'main', clock, clock.now() + 10 * MINUTE);
      assert.equal(sidecar.views()[0]!.ready, true, `restart ${i}: not ready`);
      // The issuance counter continues from the state: 1 in every incarnation, so increase() sees one issuance.
      const samples = parseExposition((await sidecar.metrics.render(false)).body);
      assert.equal(sampleValue(samples, 'broker_token_issuances_total', { account: 'main' }), 1, `restart ${i}`);
      await sidecar.close();
    }
    assert.equal(simulator.stats(cred.appKey).tokenRequests, 1);
    assert.equal(simulator.stats(cred.appKey).issued, 1);
  });

  test('EGW00133: requests arrive exactly at the spacing and the backoff, then one succeeds', async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'ratelimit');
    const { simulator, url, clock } = await startSimulator(t, [cred]);
    simulator.injectFault({
      endpoint: 'kis.token',
      kind: 'status',
      status: 403,
      body: { error_description: '접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)', error_code: 'EGW00133' },
      count: 3,
    });
    const sidecar = await openSidecar(t, configText(join(dir, 'state'), url, [{ name: 'main', credential: cred, extra: QUIET_RETRY }]), dir, clock);
    const failures = collect(sidecar, 'issuance.failed');
    await runAccountUntil(sidecar, 'main', clock, T0 + HOUR);
    const times = simulator
      .requestLog()
      .filter((r) => r.endpoint === 'kis.token')
      .map((r) => (r.at - T0) / SECOND);
    // Spacing 60 s, doubling: 60, 120, 240 s after each refusal.
    assert.deepEqual(times, [0, 60, 180, 420]);
    assert.deepEqual(
      failures.map((f) => f.reason),
      ['rate_limited', 'rate_limited', 'rate_limited'],
    );
    assert.equal(simulator.stats(cred.appKey).issued, 1);
    assert.equal(sidecar.views()[0]!.snapshot.state.consecutiveFailures, 0);
  });

  test('bad secret: one request, then none until the credentials change; the reason is auth_rejected', async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'badsecret');
    const wrong = { ...cred, appSecret: `X${cred.appSecret.slice(1)}` };
    const { simulator, url, clock } = await startSimulator(t, [cred]);
    const state = join(dir, 'state');
    let sidecar = testSidecar(parseTestConfig(configText(state, url, [{ name: 'main', credential: wrong }]), dir), clock);
    await sidecar.open();
    await runAccountUntil(sidecar, 'main', clock, T0 + 24 * HOUR);
    assert.equal(simulator.stats(cred.appKey).tokenRequests, 1);
    assert.equal(simulator.stats(cred.appKey).authRejected, 1);
    const snapshot = sidecar.views()[0]!.snapshot;
    assert.equal(snapshot.state.lastFailure?.reason, 'auth_rejected');
    assert.equal(snapshot.waitingFor, 'auth_rejected');
    assert.equal(snapshot.nextAttemptAt, null);
    await sidecar.close();

    // A restart with the same wrong secret still sends nothing.
    sidecar = testSidecar(parseTestConfig(configText(state, url, [{ name: 'main', credential: wrong }]), dir), clock);
    await sidecar.open();
    await runAccountUntil(sidecar, 'main', clock, clock.now() + 6 * HOUR);
    assert.equal(simulator.stats(cred.appKey).tokenRequests, 1);
    await sidecar.close();

    // The secret is fixed: the next start issues at once.
    sidecar = await openSidecar(t, configText(state, url, [{ name: 'main', credential: cred }]), dir, clock);
    await runAccountUntil(sidecar, 'main', clock, clock.now() + MINUTE);
    assert.equal(simulator.stats(cred.appKey).issued, 1);
    assert.equal(sidecar.views()[0]!.snapshot.usable, true);
  });

  test('maintenance: the next proof finds the dead token, one new issuance follows, the reason is recorded', async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'maint');
    const { simulator, url, clock } = await startSimulator(t, [cred]);
    const sidecar = await openSidecar(t, configText(join(dir, 'state'), url, [{ name: 'main', credential: cred }]), dir, clock);
    const invalidated = collect(sidecar, 'token.invalidated');
    await runAccountUntil(sidecar, 'main', clock, T0 + 2 * HOUR);
    const first = sidecar.views()[0]!.snapshot.state.token!.accessToken;
    simulator.maintenance();
    await runAccountUntil(sidecar, 'main', clock, T0 + 3 * HOUR);
    assert.equal(invalidated.length, 1);
    assert.equal(invalidated[0]!.brokerCode, 'EGW00121');
    assert.equal(simulator.stats(cred.appKey).issued, 2);
    const { state } = sidecar.views()[0]!.snapshot;
    assert.notEqual(state.token!.accessToken, first);
    assert.equal(state.invalidated, null);
    assert.equal(state.lastProof?.result, 'ok');
    // The dead token was found at the first proof after maintenance: 30 minutes after the last one.
    const proofs = simulator.requestLog().filter((r) => r.endpoint === 'kis.price');
    const rejected = proofs.find((r) => r.outcome === 'token_invalid')!;
    assert.equal((rejected.at - T0) / MINUTE, 150);
  });

  test('maintenance when the broker hands back the same dead token: counted as such, renewed once the 6-hour window ends', async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'deadtoken');
    const { simulator, url, clock } = await startSimulator(t, [cred], { sameDeadTokenAfterMaintenance: true });
    const sidecar = await openSidecar(t, configText(join(dir, 'state'), url, [{ name: 'main', credential: cred, extra: QUIET_RETRY }]), dir, clock);
    await runAccountUntil(sidecar, 'main', clock, T0 + HOUR);
    simulator.maintenance();
    await runAccountUntil(sidecar, 'main', clock, T0 + 8 * HOUR);
    const stats = simulator.stats(cred.appKey);
    assert.equal(stats.sameToken, 1);
    assert.equal(stats.issued, 2);
    const renewal = simulator.requestLog().filter((r) => r.endpoint === 'kis.token' && r.outcome === 'issued')[1]!;
    assert.equal(renewal.at - T0, 6 * HOUR + MINUTE);
    assert.equal(sidecar.views()[0]!.snapshot.usable, true);
  });

  test('24 simulated hours with the default policy: two issuances, the fewest a 24-hour token allows, never unusable', async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'day');
    const { simulator, url, clock } = await startSimulator(t, [cred]);
    const sidecar = await openSidecar(t, configText(join(dir, 'state'), url, [{ name: 'main', credential: cred }]), dir, clock);
    let unusableAfterStart = 0;
    await runAccountUntil(sidecar, 'main', clock, T0 + 24 * HOUR, () => {
      if (clock.now() > T0 && !sidecar.views()[0]!.snapshot.usable) unusableAfterStart++;
    });
    assert.equal(simulator.stats(cred.appKey).issued, 2);
    assert.equal(simulator.stats(cred.appKey).tokenRequests, 2);
    assert.equal(simulator.stats(cred.appKey).sameToken, 0);
    assert.equal(unusableAfterStart, 0);
    // The renewal came inside the last hour and ten minutes (renewBefore 1h + jitter up to 10m).
    const renewal = simulator.requestLog().filter((r) => r.endpoint === 'kis.token')[1]!;
    assert.ok(renewal.at >= T0 + 24 * HOUR - 70 * MINUTE && renewal.at <= T0 + 23 * HOUR, `renewed at +${(renewal.at - T0) / MINUTE} min`);
  });

  test("a cron schedule (0 */5 * * * KST, 4h30m age) never asks inside KIS's 6-hour same-token window", async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'cron');
    const start = Date.UTC(2026, 10, 20, 1, 0, 0); // 10:00 KST
    const { simulator, url, clock } = await startSimulator(t, [cred], { clock: new ManualClock(start) });
    const extra = 'renewal: { schedule: "0 */5 * * *", scheduleMinAge: 4h30m }';
    const sidecar = await openSidecar(t, configText(join(dir, 'state'), url, [{ name: 'main', credential: cred, extra }]), dir, clock);
    await runAccountUntil(sidecar, 'main', clock, start + 12 * HOUR);
    const issued = simulator.requestLog().filter((r) => r.endpoint === 'kis.token');
    // 10:00 issuance; 15:00 is inside the window (5 h old), so the first slot after it: 20:00 KST.
    assert.deepEqual(
      issued.map((r) => (r.at - start) / HOUR),
      [0, 10],
    );
    assert.equal(simulator.stats(cred.appKey).sameToken, 0);
  });

  test('a same-token answer is counted as what it is, not as a renewal, and rescheduled', async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'sametoken');
    const { url, clock } = await startSimulator(t, [cred]);
    const sidecar = await openSidecar(t, configText(join(dir, 'state'), url, [{ name: 'main', credential: cred, extra: QUIET_RETRY }]), dir, clock);
    const same = collect(sidecar, 'issuance.same_token');
    const issued = collect(sidecar, 'issuance.issued');
    await runAccountUntil(sidecar, 'main', clock, T0 + HOUR);
    clock.set(T0 + 2 * HOUR);
    const forced = await sidecar.renew('main', true);
    assert.equal(forced?.result, 'same_token');
    assert.equal(same.length, 1);
    assert.equal(issued.length, 1);
    // Next attempt: once the 6-hour window of the token (issued at T0) has passed, plus the spacing.
    assert.equal(forced?.result === 'same_token' && forced.nextAttemptAt, T0 + 6 * HOUR + MINUTE);
    assert.equal(sidecar.views()[0]!.snapshot.state.lastRenewalAt! < T0 + MINUTE, true);
  });

  test('renew --force honours the spacing and says how long to wait', async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'force');
    const { url, clock } = await startSimulator(t, [cred]);
    const sidecar = await openSidecar(t, configText(join(dir, 'state'), url, [{ name: 'main', credential: cred }]), dir, clock);
    await runAccountUntil(sidecar, 'main', clock, T0 + 20 * SECOND);
    const outcome = await sidecar.renew('main', true);
    assert.deepEqual(outcome, { result: 'wait', until: T0 + MINUTE, why: 'spacing' });
    const notForced = await sidecar.renew('main', false);
    assert.equal(notForced?.result, 'wait');
    assert.equal(notForced?.result === 'wait' && notForced.why, 'renewal_planned');
  });

  test('with no state, a still-valid token in a kis_auth.py daily file is adopted: zero issuance', async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'adopt');
    const { simulator, url, clock } = await startSimulator(t, [cred]);
    // Another client (kis_auth.py) got a token an hour ago and wrote today's file.
    clock.set(T0 - HOUR);
    const answer = (await (
      await fetch(`${url}/oauth2/tokenP`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_type: 'client_credentials', appkey: cred.appKey, appsecret: cred.appSecret }),
      })
    ).json()) as { access_token: string; access_token_token_expired: string };
    clock.set(T0);
    const kisDir = join(dir, 'KIS', 'config');
    mkdirSync(kisDir, { recursive: true });
    writeFileSync(join(kisDir, 'KIS20261120'), `token: ${answer.access_token}\nvalid-date: ${answer.access_token_token_expired}\n`);
    const sinks = `- { format: kis-auth, dir: ${kisDir} }`;
    const sidecar = await openSidecar(t, configText(join(dir, 'state'), url, [{ name: 'main', credential: cred, sinks }]), dir, clock);
    const adopted = collect(sidecar, 'token.adopted');
    await runAccountUntil(sidecar, 'main', clock, T0 + 10 * MINUTE);
    assert.equal(simulator.stats(cred.appKey).tokenRequests, 1); // the other client's, not ours
    const { state } = sidecar.views()[0]!.snapshot;
    assert.equal(state.token?.accessToken, answer.access_token);
    assert.equal(state.token?.source, 'adopted');
    assert.equal(state.token?.issuedAt, T0 - HOUR); // from the JWT's iat
    assert.equal(state.lastProof?.result, 'ok');
    assert.equal(adopted.length, 0, 'adoption happens in open(), before this subscription');
    assert.equal(sidecar.views()[0]!.ready, true);
  });

  test('a token file of another app key is not adopted', async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'mine');
    const other = markerCredential('kis', 'other');
    const { simulator, url, clock } = await startSimulator(t, [cred, other]);
    const answer = (await (
      await fetch(`${url}/oauth2/tokenP`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_type: 'client_credentials', appkey: other.appKey, appsecret: other.appSecret }),
      })
    ).json()) as { access_token: string; access_token_token_expired: string };
    const path = join(dir, 'tok.json');
    writeFileSync(
      path,
      JSON.stringify({
        access_token: answer.access_token,
        token_type: 'Bearer',
        expires_in: 86400,
        issued_at: '2026-11-20T09:00:00.000000',
        expiry_datetime: '2026-11-21T09:00:00.000000',
      }),
    );
    const sidecar = await openSidecar(
      t,
      configText(join(dir, 'state'), url, [{ name: 'main', credential: cred, sinks: `- { format: json, path: ${path} }` }]),
      dir,
      clock,
    );
    await runAccountUntil(sidecar, 'main', clock, T0 + MINUTE);
    assert.equal(simulator.stats(cred.appKey).issued, 1);
    assert.equal(sidecar.views()[0]!.snapshot.state.token?.source, 'issued');
  });

  test('a corrupt state file is moved aside (still 0600), reported, and costs no crash; spacing counts from its mtime', async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'corrupt');
    const { simulator, url, clock } = await startSimulator(t, [cred]);
    const stateDir = join(dir, 'state', 'accounts');
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(stateDir, 'main.json'), '{"version": 1, "account": "main", "tok', { mode: 0o600 });
    // The clock reads the file's real mtime as "now", as after a crash in the middle of an attempt.
    clock.set(Math.floor(statSync(join(stateDir, 'main.json')).mtimeMs));
    const start = clock.now();
    const sidecar = testSidecar(parseTestConfig(configText(join(dir, 'state'), url, [{ name: 'main', credential: cred }]), dir), clock);
    const errors = collect(sidecar, 'state.error');
    await sidecar.open();
    closeBeforeCleanup(t, () => sidecar.close());
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.reason, 'corrupt');
    const aside = readdirSync(stateDir).filter((n) => n.startsWith('main.json.corrupt-'));
    assert.equal(aside.length, 1);
    assert.equal(statSync(join(stateDir, aside[0]!)).mode & 0o777, 0o600);
    await runAccountUntil(sidecar, 'main', clock, start + 59 * SECOND);
    assert.equal(simulator.stats(cred.appKey).tokenRequests, 0);
    await runAccountUntil(sidecar, 'main', clock, start + 2 * MINUTE);
    assert.equal(simulator.stats(cred.appKey).issued, 1);
  });

  test('revoke: revoked at the broker, sink files removed, nothing of the token left in the state, spacing kept', async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'revoke');
    const { simulator, url, clock } = await startSimulator(t, [cred]);
    const sidecar = await openSidecar(t, configText(join(dir, 'state'), url, [{ name: 'main', credential: cred }]), dir, clock);
    await runAccountUntil(sidecar, 'main', clock, T0 + MINUTE);
    const sinkFile = sidecar.views()[0]!.sinks[0]!.path;
    assert.equal(existsSync(sinkFile), true);
    const result = await sidecar.account('main')!.revoke();
    assert.equal(result.revoked, true);
    assert.deepEqual(result.removedFiles, [sinkFile]);
    assert.equal(simulator.stats(cred.appKey).revokes, 1);
    assert.equal(existsSync(sinkFile), false);
    const saved = stateOf(dir, 'main');
    assert.equal(saved.token, null);
    assert.equal(saved.approvalKey, null);
    assert.equal(saved.lastProof, null);
    assert.equal(saved.lastAttempt.at, T0);
    const token = sidecar.views()[0]!.snapshot.state.token;
    assert.equal(token, null, 'nor in memory');
    assert.ok(!readFileSync(join(dir, 'state', 'accounts', 'main.json'), 'utf8').includes('eyJ'), 'no token text in the state file');
  });
});

describe('lifecycle against the simulator (Kiwoom)', () => {
  const kiwoomSink = (dir: string) => `- { format: json, path: ${join(dir, 'data', '.token')}, layout: kiwoom-token }`;

  test('issues, proves with ka10001, and after maintenance re-issues on 8005', async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kiwoom', 'kw');
    const { simulator, url, clock } = await startSimulator(t, [cred]);
    const sidecar = await openSidecar(t, configText(join(dir, 'state'), url, [{ name: 'kw', credential: cred, sinks: kiwoomSink(dir) }]), dir, clock);
    const invalidated = collect(sidecar, 'token.invalidated');
    await runAccountUntil(sidecar, 'kw', clock, T0 + HOUR);
    assert.equal(sidecar.views()[0]!.ready, true);
    const file = JSON.parse(readFileSync(join(dir, 'data', '.token'), 'utf8'));
    assert.equal(file.access_token, sidecar.views()[0]!.snapshot.state.token!.accessToken);
    assert.equal(file.expires_at, '2026-11-21T09:00:00+09:00');
    simulator.maintenance();
    await runAccountUntil(sidecar, 'kw', clock, T0 + 2 * HOUR);
    assert.equal(invalidated[0]?.brokerCode, '8005');
    assert.equal(simulator.stats(cred.appKey).issued, 2);
  });

  test('a rejected key (8001) stops requests, reason auth_rejected', async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kiwoom', 'kwbad');
    const { simulator, url, clock } = await startSimulator(t, [cred]);
    const wrong = { ...cred, appSecret: `Z${cred.appSecret.slice(1)}` };
    const sidecar = await openSidecar(t, configText(join(dir, 'state'), url, [{ name: 'kw', credential: wrong, sinks: kiwoomSink(dir) }]), dir, clock);
    await runAccountUntil(sidecar, 'kw', clock, T0 + 12 * HOUR);
    assert.equal(simulator.stats(cred.appKey).tokenRequests, 1);
    assert.equal(sidecar.views()[0]!.snapshot.state.lastFailure?.reason, 'auth_rejected');
  });
});

describe('bad broker answers keep the last good token', () => {
  const cases: Array<[string, Parameters<import('../src/simulator').BrokerSimulator['injectFault']>[0], string]> = [
    ['HTTP 500', { endpoint: 'kis.token', kind: 'status', status: 500, body: { error_code: 'EGW00002', error_description: '서버 에러' } }, 'server_error'],
    ['garbage body', { endpoint: 'kis.token', kind: 'garbage' }, 'bad_response'],
    ['truncated JSON', { endpoint: 'kis.token', kind: 'truncated' }, 'bad_response'],
    ['missing fields', { endpoint: 'kis.token', kind: 'body', body: { token_type: 'Bearer', expires_in: 86400 } }, 'bad_response'],
    [
      'an expiry in the past',
      {
        endpoint: 'kis.token',
        kind: 'body',
        body: { access_token: `eyJ${'a'.repeat(300)}`, access_token_token_expired: '2026-11-20 08:00:00', token_type: 'Bearer', expires_in: 86400 },
      },
      'bad_response',
    ],
    [
      'a token of implausible length',
      {
        endpoint: 'kis.token',
        kind: 'body',
        body: { access_token: 'x'.repeat(5000), access_token_token_expired: '2026-11-22 08:00:00', token_type: 'Bearer', expires_in: 86400 },
      },
      'bad_response',
    ],
    ['a redirect', { endpoint: 'kis.token', kind: 'redirect' }, 'bad_response'],
    ['a dropped connection', { endpoint: 'kis.token', kind: 'drop' }, 'network'],
  ];
  for (const [what, fault, reason] of cases) {
    test(`${what}: reason ${reason}, previous token kept`, async (t) => {
      const dir = tempDir(t);
      const cred = markerCredential('kis', `bad${what.replace(/\W/g, '')}`.slice(0, 20));
      const { simulator, url, clock } = await startSimulator(t, [cred]);
      const sidecar = await openSidecar(t, configText(join(dir, 'state'), url, [{ name: 'main', credential: cred }]), dir, clock);
      await runAccountUntil(sidecar, 'main', clock, T0 + MINUTE);
      const good = sidecar.views()[0]!.snapshot.state.token!;
      simulator.injectFault({ ...fault, count: 1 });
      clock.set(T0 + 7 * HOUR);
      const outcome = await sidecar.renew('main', true);
      assert.equal(outcome?.result, 'failed');
      assert.equal(outcome?.result === 'failed' && outcome.reason, reason);
      const after = sidecar.views()[0]!;
      assert.deepEqual(after.snapshot.state.token, good);
      assert.equal(after.snapshot.usable, true);
      assert.equal(after.ready, true);
      assert.equal(JSON.parse(readFileSync(after.sinks[0]!.path, 'utf8')).access_token, good.accessToken);
    });
  }

  test('an absurd expiry (years away) is cut to the 24-hour lifetime, and the token used', async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'absurd');
    const { simulator, url, clock } = await startSimulator(t, [cred]);
    const token = `eyJ0eXAiOiJKV1QifQ.${Buffer.from(JSON.stringify({ sub: 'token', jti: cred.appKey })).toString('base64url')}.${'s'.repeat(80)}`;
    simulator.injectFault({
      endpoint: 'kis.token',
      kind: 'body',
      body: { access_token: token, access_token_token_expired: '2031-01-01 00:00:00', token_type: 'Bearer', expires_in: 86400 },
    });
    const sidecar = await openSidecar(
      t,
      configText(join(dir, 'state'), url, [{ name: 'main', credential: cred, extra: 'proof: { enabled: false }' }]),
      dir,
      clock,
    );
    const issued = collect(sidecar, 'issuance.issued');
    await runAccountUntil(sidecar, 'main', clock, T0 + MINUTE);
    assert.equal(issued[0]?.expiryClamped, true);
    assert.equal(sidecar.views()[0]!.snapshot.state.token?.expiresAt, T0 + 24 * HOUR);
  });
});

describe('the custom probe', () => {
  test("reports the application's health on its own and never leads to an issuance", async (t) => {
    let status = 200;
    const app = createServer((_req, res) => res.writeHead(status).end('ok'));
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => app.close(() => r())));
    const port = (app.address() as { port: number }).port;
    const clock = new ManualClock(T0);
    const bus = new EventBus();
    const seen: boolean[] = [];
    bus.on('probe.done', (e) => seen.push(e.ok));
    const dispatcher = new Agent();
    t.after(() => dispatcher.close());
    const probe = new CustomProbe(
      { name: 'main', provider: 'kis', env: 'real' },
      { url: `http://127.0.0.1:${port}/health`, intervalMs: MINUTE, timeoutMs: SECOND },
      dispatcher,
      clock,
      bus,
    );
    assert.equal(await probe.tick(), T0 + MINUTE);
    assert.equal(await probe.tick(), T0 + MINUTE, 'not due again before the interval');
    status = 503;
    clock.set(T0 + MINUTE);
    await probe.tick();
    assert.deepEqual(seen, [true, false]);
  });
});

describe('sink ownership', () => {
  test('owner and group are set on the file (for a shared volume read by another user)', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root to give files away');
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'owner');
    const { url, clock } = await startSimulator(t, [cred]);
    const sinks = `- { format: json, path: ${join(dir, 'shared', 't.json')}, owner: 4321, group: 4322, mode: "0640" }`;
    const sidecar = await openSidecar(t, configText(join(dir, 'state'), url, [{ name: 'main', credential: cred, sinks }]), dir, clock);
    await runAccountUntil(sidecar, 'main', clock, T0 + MINUTE);
    await sidecar.sinks.idle();
    const info = statSync(join(dir, 'shared', 't.json'));
    assert.deepEqual([info.uid, info.gid, info.mode & 0o777], [4321, 4322, 0o640]);
    assert.equal(sidecar.views()[0]!.ready, true);
  });
});

describe('a request cannot outlive its recorded attempt', () => {
  test('the request timeout runs from the attempt on disk: a slow state save leaves the request less time, never more', async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'slowsave');
    const { simulator, url, clock } = await startSimulator(t, [cred]);
    // The state file's rename held up: a slow disk between the attempt and the request.
    let stateSaveDelayMs = 0;
    const fs: FileSystem = {
      ...nodeFileSystem,
      rename: async (from: PathLike, to: PathLike) => {
        if (stateSaveDelayMs > 0 && String(to).includes(`${sep}accounts${sep}`)) await new Promise((r) => setTimeout(r, stateSaveDelayMs));
        return nodeFileSystem.rename(from, to);
      },
    };
    const config = parseTestConfig(configText(join(dir, 'state'), url, [{ name: 'main', credential: cred, extra: 'http: { timeout: 600ms }' }]), dir);
    const sidecar = testSidecar(config, clock, { fs });
    await sidecar.open();
    closeBeforeCleanup(t, () => sidecar.close());
    // With a quick save, an answer 300 ms late fits the 600 ms timeout.
    simulator.injectFault({ endpoint: 'kis.token', kind: 'delay', delayMs: 300, count: 1 });
    await runAccountUntil(sidecar, 'main', clock, T0 + MINUTE);
    assert.equal(simulator.stats().issued, 1);
    const good = sidecar.views()[0]!.snapshot.state.token!;

    // With the save taking 400 ms of the 600, the same answer comes too late: the request is cut when the
    // "pending" record on disk says it could no longer reach the broker, and the last good token stays.
    stateSaveDelayMs = 400;
    simulator.injectFault({ endpoint: 'kis.token', kind: 'delay', delayMs: 300, count: 1 });
    clock.set(T0 + 7 * HOUR);
    const outcome = await sidecar.renew('main', true);
    assert.equal(outcome?.result === 'failed' && outcome.reason, 'timeout');
    assert.equal(simulator.stats().tokenRequests, 2, 'the request did go out');
    assert.deepEqual(sidecar.views()[0]!.snapshot.state.token, good);

    // A save that takes the whole timeout leaves no time at all: nothing is sent.
    stateSaveDelayMs = 700;
    clock.set(T0 + 8 * HOUR);
    const none = await sidecar.renew('main', true);
    assert.equal(none?.result === 'failed' && none.reason, 'timeout');
    assert.match(sidecar.views()[0]!.snapshot.state.lastFailure!.message, /nothing was sent/);
    assert.equal(simulator.stats().tokenRequests, 2);
    assert.deepEqual(sidecar.views()[0]!.snapshot.state.token, good);
  });
});

describe('a wall-clock step right after an issuance cannot shorten the spacing', () => {
  // The broker's clock is real time: it moves only as time passes, whatever the host's wall clock does.
  const STEP_MS = 5 * SECOND;
  for (const zone of ['UTC', 'Asia/Seoul']) {
    for (const [label, stepMs] of [
      ['+25 h', 25 * HOUR],
      ['-1 h', -HOUR],
    ] as const) {
      test(`${label} on a host in ${zone}: the broker sees the next request no sooner than the spacing (60 s) after the last, and no EGW00133`, async (t) => {
        const zoneBefore = process.env.TZ;
        process.env.TZ = zone;
        t.after(() => {
          if (zoneBefore === undefined) delete process.env.TZ;
          else process.env.TZ = zoneBefore;
        });
        assert.equal(new Date(T0).getHours(), zone === 'UTC' ? 0 : 9, 'the process really runs in the zone');
        const dir = tempDir(t);
        const cred = markerCredential('kis', 'clockstep');
        const broker = new ManualClock(T0);
        const host = new ManualClock(T0);
        const { simulator, url } = await startSimulator(t, [cred], { clock: broker });
        const sidecar = testSidecar(parseTestConfig(configText(join(dir, 'state'), url, [{ name: 'main', credential: cred }]), dir, zone), host);
        await sidecar.open();
        closeBeforeCleanup(t, () => sidecar.close());
        const lifecycle = sidecar.account('main')!;
        await lifecycle.tick();
        assert.equal(simulator.stats().tokenRequests, 1);

        // 30 s after the issuance the host's wall clock steps; the loop ticks and a person forces a renewal every
        // 5 s of real time, for three minutes.
        host.advance(30 * SECOND);
        broker.advance(30 * SECOND);
        host.stepWallClock(stepMs);
        for (let elapsed = 30 * SECOND; elapsed <= 3 * MINUTE; elapsed += STEP_MS) {
          await lifecycle.tick();
          await sidecar.renew('main', true);
          host.advance(STEP_MS);
          broker.advance(STEP_MS);
        }
        const arrivals = simulator
          .requestLog()
          .filter((request) => request.endpoint === 'kis.token')
          .map((request) => request.at - T0);
        assert.ok(arrivals.length >= 2, `a request after the spacing: ${JSON.stringify(arrivals)}`);
        const gaps = arrivals.slice(1).map((at, i) => at - arrivals[i]!);
        t.diagnostic(`requests at the broker ${arrivals.map((at) => `${at / SECOND} s`).join(', ')} after the first (the step at 30 s)`);
        assert.ok(
          gaps.every((gap) => gap >= MINUTE),
          `gaps between requests at the broker: ${gaps.map((gap) => `${gap / SECOND} s`).join(', ')}`,
        );
        // Not held up by the size of the step either: the next request within two spacings of the first.
        assert.ok(arrivals[1]! <= 2 * MINUTE, `second request ${arrivals[1]! / SECOND} s after the first`);
        assert.equal(simulator.stats().rateLimited, 0, 'no EGW00133');
      });
    }
  }
});

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

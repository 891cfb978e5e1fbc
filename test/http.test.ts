import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { acceptsGzip, createHttpApp } from '../src/http/app';
import { listen } from '../src/http/server';
import {
  HOUR,
  MINUTE,
  T0,
  LogCapture,
  configText,
  recordReliability,
  markerCredential,
  parseExposition,
  parseTestConfig,
  runAccountUntil,
  sampleValue,
  startSimulator,
  tempDir,
  testSidecar,
  closeBeforeCleanup,
  serveSidecar,
} from './helpers';

const ADMIN = 'MARKER-ADMIN-TOKEN-0123456789';

/** A request as node:http sends it: no Accept-Encoding unless given, the body as received (fetch would decode it). */
function rawGet(url: string, headers: Record<string, string>, method = 'GET'): Promise<{ headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function setup(t: any, options: { top?: string; admin?: boolean } = {}) {
  const dir = tempDir(t);
  const cred = markerCredential('kis', 'http');
  const { simulator, url, clock } = await startSimulator(t, [cred]);
  const sinks = `- { format: kis-auth, dir: ${join(dir, 'KIS')} }\n- { format: json, path: ${join(dir, 't.json')} }`;
  const text = configText(join(dir, 'state'), url, [{ name: 'main', credential: cred, sinks }], options.top ?? '');
  const config = parseTestConfig(text, dir);
  if (options.admin) config.server.adminToken = ADMIN;
  const logs = new LogCapture();
  const sidecar = testSidecar(config, clock, { logger: logs.logger, secrets: logs.secrets });
  await sidecar.open();
  closeBeforeCleanup(t, () => sidecar.close());
  const base = await serveSidecar(t, sidecar, { adminToken: config.server.adminToken });
  return { dir, cred, simulator, clock, sidecar, base, logs };
}

describe('metrics after a scripted scenario: issue, fail, repair', () => {
  test('each catalogue metric has its labels and its value', async (t) => {
    const { dir, simulator, clock, sidecar, base } = await setup(t, { top: 'metrics: { compat: true }' });
    await runAccountUntil(sidecar, 'main', clock, T0 + MINUTE);
    clock.set(T0 + 7 * HOUR);
    simulator.injectFault({ endpoint: 'kis.token', kind: 'status', status: 500, body: { error_code: 'EGW00002', error_description: '서버 오류' } });
    assert.equal((await sidecar.renew('main', true))?.result, 'failed');
    unlinkSync(join(dir, 'KIS', 'KIS20261120'));
    await sidecar.sinks.tick();

    const response = await fetch(`${base}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    const s = parseExposition(await response.text());
    const a = { account: 'main', provider: 'kis', env: 'real' };
    const v = (name: string, labels: Record<string, string> = {}) => sampleValue(s, `broker_token_${name}`, { ...a, ...labels });

    assert.equal(v('expiry_timestamp_seconds'), (T0 + 24 * HOUR) / 1000);
    assert.equal(v('issued_timestamp_seconds'), T0 / 1000);
    assert.equal(v('last_renewal_timestamp_seconds'), T0 / 1000);
    // The failed attempt was a forced one: the plan (1 h before expiry, less half the 10-minute jitter) stands.
    assert.equal(v('next_renewal_timestamp_seconds'), (T0 + 22 * HOUR + 55 * MINUTE) / 1000);
    assert.equal(v('last_proof_timestamp_seconds'), T0 / 1000);
    assert.equal(v('last_proof_success_timestamp_seconds'), T0 / 1000);
    for (const state of ['valid', 'expiring', 'expired', 'missing', 'invalid']) assert.equal(v('state', { state }), state === 'valid' ? 1 : 0, state);
    assert.equal(v('usable'), 1);
    assert.equal(v('ready'), 1);
    assert.equal(v('consecutive_failures'), 1);
    assert.equal(v('credentials_rejected'), 0);
    assert.equal(v('renewal_attempts_total'), 2);
    assert.equal(v('renewal_failures_total', { reason: 'server_error' }), 1);
    for (const reason of ['rate_limited', 'auth_rejected', 'timeout', 'network', 'bad_response', 'token_rejected', 'store_error']) {
      assert.equal(v('renewal_failures_total', { reason }), 0, reason);
    }
    assert.equal(v('issuances_total'), 1);
    assert.equal(v('same_token_total'), 0);
    assert.equal(v('rate_limited_total'), 0);
    assert.equal(v('proofs_total', { result: 'ok' }), 1);
    assert.equal(v('proofs_total', { result: 'rejected' }), 0);
    assert.equal(v('proofs_total', { result: 'error' }), 0);
    assert.equal(v('invalidations_total'), 0);
    assert.equal(v('adoptions_total'), 0);
    assert.equal(v('state_errors_total', { reason: 'corrupt' }), 0);
    assert.equal(v('renewal_duration_seconds_count'), 2);
    assert.equal(v('proof_duration_seconds_count'), 1);
    const kisAuth = { sink: 'kis-auth', format: 'kis-auth' };
    const json = { sink: 'json', format: 'json' };
    for (const sink of [kisAuth, json]) {
      assert.equal(v('sink_file_present', sink), 1);
      assert.equal(v('sink_file_healthy', sink), 1);
      assert.equal(v('sink_file_mode_ok', sink), 1);
      assert.equal(v('sink_writes_total', { ...sink, cause: 'start' }), 1);
      assert.equal(v('sink_write_failures_total', { ...sink, reason: 'disk_full' }), 0);
      assert.equal(v('sink_files_cleaned_total', sink), 0);
    }
    assert.equal(v('sink_last_write_timestamp_seconds', kisAuth), (T0 + 7 * HOUR) / 1000);
    assert.equal(v('sink_repairs_total', { ...kisAuth, reason: 'missing' }), 1);
    assert.equal(v('sink_repairs_total', { ...json, reason: 'missing' }), 0);
    assert.equal(sampleValue(s, 'broker_token_build_info'), 1);
    assert.ok(s.some((x) => x.name === 'process_resident_memory_bytes'));
    // The first system's names, switched on by metrics.compat.
    assert.equal(sampleValue(s, 'kis_token_age_hours', { account: 'main' }), 7);
    assert.equal(sampleValue(s, 'kis_token_renewals_total', { account: 'main' }), 1);
  });

  test('OpenMetrics when the scraper asks for it', async (t) => {
    const { base } = await setup(t);
    const response = await fetch(`${base}/metrics`, { headers: { accept: 'application/openmetrics-text; version=1.0.0; charset=utf-8' } });
    assert.match(response.headers.get('content-type')!, /^application\/openmetrics-text/);
    const body = await response.text();
    assert.match(body, /# EOF\n$/);
    assert.match(body, /^# TYPE broker_token_issuances counter\nbroker_token_issuances_total\{/m, 'a counter family is named without _total');
    assert.doesNotMatch(body, /\n\n/, 'no blank line');
    const plain = await (await fetch(`${base}/metrics`)).text();
    assert.doesNotMatch(plain, /# EOF/);
    // An OpenMetrics scrape leaves the text format as it was (prom-client's own OpenMetrics mode would not).
    assert.match(plain, /^# TYPE broker_token_issuances_total counter$/m);
    assert.match(plain, /^broker_token_issuances_total\{/m);
  });

  test('compat names are off by default', async (t) => {
    const { base } = await setup(t);
    assert.doesNotMatch(await (await fetch(`${base}/metrics`)).text(), /kis_token_/);
  });

  test('gzip when the scraper takes it, as Prometheus does; plain otherwise; HEAD without a body', async (t) => {
    const { base } = await setup(t);
    const plain = await rawGet(`${base}/metrics`, {});
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(Number(plain.headers['content-length']), plain.body.length);
    assert.equal(plain.headers.vary, 'accept-encoding');
    const zipped = await rawGet(`${base}/metrics`, { 'accept-encoding': 'gzip' });
    assert.equal(zipped.headers['content-encoding'], 'gzip');
    assert.equal(Number(zipped.headers['content-length']), zipped.body.length);
    assert.ok(zipped.body.length < plain.body.length / 3, `gzip ${zipped.body.length} B against ${plain.body.length} B`);
    const own = (text: string) =>
      text
        .split('\n')
        .filter((line) => line.startsWith('broker_token_'))
        .join('\n');
    assert.equal(own(gunzipSync(zipped.body).toString()), own(plain.body.toString()));
    const openMetrics = await rawGet(`${base}/metrics`, { 'accept-encoding': 'gzip', accept: 'application/openmetrics-text; version=1.0.0' });
    assert.match(gunzipSync(openMetrics.body).toString(), /# EOF\n$/);
    const refused = await rawGet(`${base}/metrics`, { 'accept-encoding': 'gzip;q=0, identity' });
    assert.equal(refused.headers['content-encoding'], undefined);
    const head = await rawGet(`${base}/metrics`, { 'accept-encoding': 'gzip' }, 'HEAD');
    assert.equal(head.headers['content-encoding'], 'gzip');
    assert.ok(Number(head.headers['content-length']) > 0);
    assert.equal(head.body.length, 0);
  });

  test('Accept-Encoding is read as RFC 9110 says', () => {
    assert.equal(acceptsGzip('gzip'), true);
    assert.equal(acceptsGzip('deflate, gzip;q=0.5'), true);
    assert.equal(acceptsGzip('*'), true);
    assert.equal(acceptsGzip('GZIP'), true);
    assert.equal(acceptsGzip(undefined), false);
    assert.equal(acceptsGzip('identity'), false);
    assert.equal(acceptsGzip('gzip;q=0'), false);
    assert.equal(acceptsGzip('gzip; q=0.0, br'), false);
    assert.equal(acceptsGzip('x-gzip'), false);
  });
});

describe('health, readiness and status', () => {
  test('/readyz goes 503 -> 200 once every sink holds a valid token; /healthz is 200', async (t) => {
    const { clock, sidecar, base } = await setup(t);
    const before = await fetch(`${base}/readyz`);
    assert.equal(before.status, 503);
    const body = (await before.json()) as { ready: boolean; accounts: Array<{ account: string; ready: boolean; state: string }> };
    assert.deepEqual(
      body.accounts.map((a) => [a.account, a.ready, a.state]),
      [['main', false, 'missing']],
    );
    await runAccountUntil(sidecar, 'main', clock, T0 + MINUTE);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
  });

  test('/status reports every account in KST, a 6-character preview, and no secret', async (t) => {
    const { cred, clock, sidecar, base, logs } = await setup(t, { admin: true });
    await runAccountUntil(sidecar, 'main', clock, T0 + MINUTE);
    clock.set(T0 + HOUR);
    const text = await (await fetch(`${base}/status`)).text();
    const status = JSON.parse(text) as { accounts: Array<Record<string, any>> };
    const account = status.accounts[0]!;
    assert.equal(account.account, 'main');
    assert.equal(account.hasToken, true);
    assert.equal(account.usable, true);
    assert.equal(account.state, 'valid');
    assert.equal(account.expiresAt, '2026-11-21T09:00:00+09:00');
    assert.equal(account.secondsLeft, 23 * 3600);
    assert.equal(account.issuedAt, '2026-11-20T09:00:00+09:00');
    assert.equal(account.tokenPreview.length, 7); // six characters and an ellipsis
    assert.deepEqual(account.lastRenewal, { at: '2026-11-20T09:00:00+09:00', result: 'issued', reason: null });
    assert.equal(account.consecutiveFailures, 0);
    assert.match(account.nextRenewalAt, /^2026-11-21T07:5\d:00\+09:00$/);
    assert.deepEqual(
      account.sinks.map((s: any) => [s.name, s.healthy, s.mode]),
      [
        ['kis-auth', true, '0600'],
        ['json', true, '0600'],
      ],
    );
    const token = sidecar.views()[0]!.snapshot.state.token!.accessToken;
    const metrics = await (await fetch(`${base}/metrics`)).text();
    for (const secret of [cred.appKey, cred.appSecret, token, ADMIN]) {
      assert.ok(!text.includes(secret), 'secret in /status');
      assert.ok(!metrics.includes(secret), 'secret in /metrics');
      assert.ok(!logs.text().includes(secret), 'secret in the logs');
    }
    assert.ok(logs.records().some((r) => r.msg === 'new token received' && r.account === 'main'));
  });
});

describe('admin endpoint', () => {
  test('off by default: 404 with a message that says how to turn it on', async (t) => {
    const { base } = await setup(t);
    const response = await fetch(`${base}/renew/main`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(response.status, 404);
    assert.match(((await response.json()) as { error: string }).error, /server\.adminToken/);
  });

  test('missing, wrong and right tokens; unknown account; spacing answered with 429 and Retry-After', async (t) => {
    const { clock, sidecar, base, simulator } = await setup(t, { admin: true });
    await runAccountUntil(sidecar, 'main', clock, T0 + MINUTE / 2);
    const post = (path: string, auth?: string) => fetch(`${base}${path}`, { method: 'POST', headers: auth ? { authorization: auth } : {} });
    const missing = await post('/renew/main');
    assert.equal(missing.status, 401);
    assert.equal(missing.headers.get('www-authenticate'), 'Bearer');
    assert.equal((await post('/renew/main', 'Bearer wrong-token-wrong-token')).status, 403);
    assert.equal((await post('/renew/main', `Basic ${ADMIN}`)).status, 401);
    assert.equal((await post('/renew/nobody', `Bearer ${ADMIN}`)).status, 404);
    const notNeeded = await post('/renew/main', `Bearer ${ADMIN}`);
    assert.equal(notNeeded.status, 200);
    assert.equal(((await notNeeded.json()) as { result: string }).result, 'not_needed');
    const spaced = await post('/renew/main?force=true', `Bearer ${ADMIN}`);
    assert.equal(spaced.status, 429);
    assert.equal(spaced.headers.get('retry-after'), '30');
    clock.set(T0 + 7 * HOUR);
    const renewed = await post('/renew/main?force=true', `Bearer ${ADMIN}`);
    assert.equal(renewed.status, 200);
    assert.equal(((await renewed.json()) as { result: string }).result, 'issued');
    assert.equal(simulator.stats().issued, 2);
    recordReliability({
      kind: 'fault',
      category: 'http',
      fault: 'admin requests without or with a wrong token',
      reason: '(401 / 403)',
      alert: 'none',
      issuances: 0,
      outcome: '401 with WWW-Authenticate without a bearer token, 403 with a wrong one (compared in constant time); nothing renewed',
    });
  });
});

describe('HTTP hygiene', () => {
  test('unknown routes 404 JSON, wrong methods 405 with Allow, oversized bodies 413', async (t) => {
    const { base } = await setup(t, { admin: true });
    const unknown = await fetch(`${base}/nope`);
    assert.equal(unknown.status, 404);
    assert.match(unknown.headers.get('content-type')!, /application\/json/);
    const wrong = await fetch(`${base}/metrics`, { method: 'POST' });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'GET');
    const big = await fetch(`${base}/renew/main`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ pad: 'x'.repeat(5000) }),
    });
    assert.equal(big.status, 413);
    assert.deepEqual(await big.json(), { error: 'request body too large' });
    recordReliability({
      kind: 'fault',
      category: 'http',
      fault: 'an oversized request body (5 kB)',
      reason: '(413)',
      alert: 'none',
      issuances: 0,
      outcome: 'refused with 413 before the admin handler; the limit is 1 KiB',
    });
  });
});

test('/healthz is 503 and names the loop when one is stuck', async (t) => {
  const { sidecar } = await setup(t);
  const app = createHttpApp({
    control: { views: () => sidecar.views(), stuckLoops: () => ['account:main'], stuckSinks: () => [], renew: () => Promise.resolve(undefined) },
    metrics: sidecar.metrics,
    now: () => sidecar.clock.now(),
    adminToken: undefined,
    secrets: sidecar.secrets,
    bus: sidecar.bus,
  });
  const server = await listen(app, '127.0.0.1', 0, 5_000);
  t.after(() => server.close());
  const response = await fetch(`${server.url}/healthz`);
  assert.equal(response.status, 503);
  assert.deepEqual(await response.json(), { status: 'stuck', stuckLoops: ['account:main'], stuckSinks: [] });
});

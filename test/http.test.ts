import { test, describe, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { unlinkSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request as httpRequest, type IncomingHttpHeaders, get as httpGet, type ServerResponse } from 'node:http';
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
  CLI,
  SECOND,
  exited,
  freePort,
  spawnForTest,
  until,
} from './helpers';
import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { Agent, request } from 'undici';
import { systemClock } from '../src/core/clock';
import type { ConnectionDropReason } from '../src/core/errors';
import { connectionBudget, openFileLimit } from '../src/http/descriptors';

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
    control: {
      startingUp: () => false,
      views: () => sidecar.views(),
      stuckLoops: () => ['account:main'],
      stuckSinks: () => [],
      renew: () => Promise.resolve(undefined),
    },
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

test('/readyz while the accounts start: 503 without going over them, then the accounts', async (t) => {
  const { sidecar } = await setup(t);
  let startingUp = true;
  let viewsAsked = 0;
  const app = createHttpApp({
    control: {
      startingUp: () => startingUp,
      views: () => (viewsAsked++, sidecar.views()),
      stuckLoops: () => [],
      stuckSinks: () => [],
      renew: () => Promise.resolve(undefined),
    },
    metrics: sidecar.metrics,
    now: () => sidecar.clock.now(),
    adminToken: undefined,
    secrets: sidecar.secrets,
    bus: sidecar.bus,
  });
  const server = await listen(app, '127.0.0.1', 0, 5_000);
  t.after(() => server.close());
  const during = await fetch(`${server.url}/readyz`);
  assert.equal(during.status, 503);
  assert.deepEqual(await during.json(), { ready: false, startingUp: true });
  assert.equal(viewsAsked, 0);
  startingUp = false;
  const after = (await (await fetch(`${server.url}/readyz`)).json()) as { accounts: Array<{ account: string }> };
  assert.deepEqual(
    after.accounts.map((a) => a.account),
    sidecar.views().map((v) => v.snapshot.ref.name),
  );
  assert.equal(viewsAsked, 1);
});

/** A GET on a connection of its own, as a kubelet probe makes it: the status and body, or the error's code when none came in time. */
function get(url: string, timeoutMs: number): Promise<{ status: number | string; body: string }> {
  return new Promise((resolve) => {
    const req = httpGet(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('no answer in time'), { code: 'TIMEOUT' })));
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ status: error.code ?? error.message, body: '' }));
  });
}

const probe = async (url: string, timeoutMs: number) => (await get(url, timeoutMs)).status;

/**
 * A GET from a process of its own, as a kubelet's probe comes: curl connects and sends its request at once. The test's
 * own process would be a poor prober under a flood: on a loaded CI host it was once descheduled between connecting
 * and writing for longer than a flooded connection lives (the limit over the flood's rate, about 0.2 s here), and its
 * connection was evicted as idle before its request was sent, a stall no real probe client has.
 */
function probeFromProcess(url: string, timeoutMs: number): Promise<number | string> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', String(timeoutMs / 1_000), url], (error, stdout, stderr) =>
      resolve(error ? `curl: ${stderr.trim() || error.message}` : Number(stdout)),
    );
  });
}

/**
 * Connections that never send a byte, `count` of them at all times: each one the server closes is opened again a
 * second later, as a client stuck in a reconnect loop (or an attacker) does. They come from a process of their own,
 * as an attacker's would: in the test's process, handling 100 reconnections a second delayed the probes' own
 * requests, which is a load no real probe client carries. The child reports its counts on stdout.
 */
function idleFlood(t: TestContext, port: number, count: number) {
  const script = `
    const { connect } = require('node:net');
    const sockets = new Set();
    let opened = 0, closedByServer = 0;
    const open = () => {
      const socket = connect(${port}, '127.0.0.1');
      opened++;
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.resume(); // read the server's 408 or FIN, so a close is seen
      socket.on('close', () => { sockets.delete(socket); closedByServer++; setTimeout(open, 1000); });
    };
    for (let i = 0; i < ${count}; i++) open();
    setInterval(() => process.stdout.write(JSON.stringify({ open: sockets.size, opened, closedByServer }) + '\\n'), 100);
  `;
  const child = spawnForTest(t, process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stats = { open: 0, opened: 0, closedByServer: 0 };
  let pending = '';
  child.stdout!.on('data', (d: Buffer) => {
    const lines = (pending + d.toString()).split('\n');
    pending = lines.pop() ?? '';
    const last = lines.filter(Boolean).at(-1);
    if (last) stats = JSON.parse(last) as typeof stats;
  });
  return {
    stats: () => stats,
    stop: () => child.kill('SIGKILL'),
  };
}

test('150 idle connections under `ulimit -n 64`: /healthz still answers and a deleted token file is still repaired', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const cred = markerCredential('kis', 'idle');
  const { url } = await startSimulator(t, [cred], { clock: systemClock as never, spacingMs: SECOND });
  const port = await freePort();
  const tokenFile = join(dir, 't.json');
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    configText(join(dir, 'state'), url, [
      { name: 'main', credential: cred, extra: 'renewal: { spacing: 1s }', sinks: `- { format: json, path: ${tokenFile} }` },
    ]).replace('server: { enabled: false }', `server: { host: 127.0.0.1, port: ${port} }`),
  );
  const child = spawnForTest(t, 'bash', ['-c', `ulimit -n 64; exec "${process.execPath}" "${CLI}" start --config "${config}"`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const base = `http://127.0.0.1:${port}`;
  await until(
    () => `the sidecar to be ready; log:\n${log}`,
    20_000,
    async () => (await probe(`${base}/readyz`, 2_000)) === 200,
  );
  const token = (JSON.parse(readFileSync(tokenFile, 'utf8')) as { access_token: string }).access_token;

  const flood = idleFlood(t, port, 150);
  t.after(() => flood.stop());
  await until('the flood to connect', 10_000, () => flood.stats().opened >= 150);
  await new Promise((r) => setTimeout(r, 1_500));
  const descriptors = readdirSync(`/proc/${child.pid}/fd`).length;

  // Well inside the 10 s headers timeout: Node's own bound has not freed anything yet.
  const answers: Array<number | string> = [];
  for (let i = 0; i < 5; i++) {
    answers.push(await probeFromProcess(`${base}/healthz`, 2_000));
    await new Promise((r) => setTimeout(r, 200));
  }
  unlinkSync(tokenFile);
  const repaired = await until('the token file to be repaired', 4_000, () => existsSync(tokenFile))
    .then((ms) => ms)
    .catch(() => undefined);
  const repairedToken = repaired === undefined ? undefined : (JSON.parse(readFileSync(tokenFile, 'utf8')) as { access_token: string }).access_token;
  const metrics = (await get(`${base}/metrics`, 2_000)).body;
  const duringFlood = flood.stats();
  flood.stop();

  assert.deepEqual(answers, [200, 200, 200, 200, 200], `/healthz during the flood; log:\n${log.slice(-3_000)}`);
  assert.notEqual(repaired, undefined, `the deleted token file was not repaired within 4 s; log:\n${log.slice(-3_000)}`);
  assert.equal(repairedToken, token, 'repaired from the state, no new issuance');
  assert.ok(descriptors < 64 - 8, `the sidecar held ${descriptors} descriptors during the flood, leaving too few for its own files`);
  assert.doesNotMatch(log, /EMFILE/);
  const samples = parseExposition(metrics);
  const dropped = (reason: string) => sampleValue(samples, 'broker_token_http_connections_dropped_total', { reason });
  assert.ok(dropped('evicted') > 0, 'idle connections were evicted to make room');
  assert.equal(dropped('refused'), 0, 'nothing refused: every connection held was idle');
  assert.match(log, /"maxConnections":\d+/, 'the start-up line names the connection limit');
  assert.ok(log.split('\n').filter((line) => line.includes('HTTP connection')).length <= 3, 'dropped connections are logged a few times, not once each');

  child.kill('SIGTERM');
  assert.equal(await exited(child), 0);
  recordReliability({
    kind: 'fault',
    category: 'http',
    fault: '150 connections that never send a byte, reopened as they close, under ulimit -n 64',
    reason: '(connections dropped: evicted, silent)',
    alert: 'none',
    issuances: 0,
    outcome: `/healthz answered 5/5, the deleted file was repaired in ${repaired} ms from the state; ${descriptors} descriptors held; ${duringFlood.closedByServer} idle connections closed`,
  });
});

test('wrong admin tokens: every one counted by reason, logged once and then once a minute, the token presented never', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const cred = markerCredential('kis', 'admin');
  const { url, clock } = await startSimulator(t, [cred]);
  const config = parseTestConfig(configText(join(dir, 'state'), url, [{ name: 'main', credential: cred }]), dir);
  const adminToken = 'MARKER-ADMIN-TOKEN-0123456789';
  const logs = new LogCapture();
  const sidecar = testSidecar(config, clock, { logger: logs.logger, secrets: logs.secrets });
  await sidecar.open();
  closeBeforeCleanup(t, () => sidecar.close());
  const base = await serveSidecar(t, sidecar, { adminToken });
  const dispatcher = new Agent({ connections: 8 });
  t.after(() => dispatcher.close());
  const post = (authorization?: string) =>
    request(`${base}/renew/main`, { method: 'POST', headers: authorization ? { authorization } : {}, dispatcher }).then(
      async (r) => (await r.body.dump(), r.statusCode),
    );

  // 6,000 requests: 3,000 with no header, 1,000 with another scheme, 2,000 with wrong bearer tokens (one a near miss).
  const presented: string[] = [];
  const statuses = new Map<number, number>();
  const send = async (i: number) => {
    let authorization: string | undefined;
    if (i % 6 === 1) authorization = `Basic WRONGMARKER${i}`;
    else if (i % 2 === 1) {
      const wrong = i === 3 ? `${adminToken.slice(0, -1)}X` : `WRONGMARKER-${i}-${'z'.repeat(20)}`;
      presented.push(wrong);
      authorization = `Bearer ${wrong}`;
    }
    const status = await post(authorization);
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
  };
  for (let i = 0; i < 6_000; i += 8) await Promise.all(Array.from({ length: 8 }, (_, k) => send(i + k)));
  assert.deepEqual(Object.fromEntries(statuses), { 401: 4_000, 403: 2_000 });
  assert.equal(await post(`Bearer ${adminToken}`), 200, 'the right token is not counted');

  const counted = async () => {
    const samples = parseExposition((await sidecar.metrics.render(false)).body);
    return {
      missing: sampleValue(samples, 'broker_token_admin_auth_failures_total', { reason: 'missing' }),
      wrong: sampleValue(samples, 'broker_token_admin_auth_failures_total', { reason: 'wrong' }),
    };
  };
  assert.deepEqual(await counted(), { missing: 4_000, wrong: 2_000 });

  const authLines = () => logs.records().filter((r) => String(r.msg).includes('admin'));
  const settle = () => new Promise((r) => setImmediate(r));
  await settle();
  assert.equal(authLines().length, 1, 'the first failure is logged at once, the rest wait for the summary');
  const first = authLines()[0]!;
  assert.equal(first.level, 'warn');
  assert.equal(first.remoteAddress, '127.0.0.1');
  assert.equal(first.reason, 'missing');

  clock.advance(MINUTE - 1);
  await settle();
  assert.equal(authLines().length, 1, 'nothing more before the minute is up');
  clock.advance(1);
  await settle();
  assert.equal(authLines().length, 2, 'one summary line after a minute');
  const summary = authLines()[1]!;
  assert.equal(summary.level, 'warn');
  assert.equal(summary.count, 5_999, 'the summary counts the failures since the last line');
  assert.deepEqual(summary.reasons, { missing: 3_999, wrong: 2_000 });

  clock.advance(5 * MINUTE);
  await settle();
  assert.equal(authLines().length, 2, 'a quiet minute adds no line');
  for (let i = 0; i < 3; i++) await post(`Bearer WRONGMARKER-late-${i}`);
  await settle();
  assert.equal(authLines().length, 3, 'after a quiet spell the next failure is logged at once again');
  clock.advance(MINUTE);
  await settle();
  assert.equal(authLines().length, 4);
  assert.equal(authLines()[3]!.count, 2);
  assert.deepEqual(await counted(), { missing: 4_000, wrong: 2_003 });

  const text = logs.text();
  assert.ok(!text.includes('WRONGMARKER'), 'no presented token in the log');
  assert.ok(!presented.some((token) => text.includes(token)), 'not even the near miss');
  assert.ok(!text.includes(adminToken));
});

test(
  'the connection limit: silent connections closed after the first-byte timeout, the oldest idle one evicted for a newcomer, a newcomer refused when all are busy',
  { timeout: 60_000 },
  async (t) => {
    const held: ServerResponse[] = [];
    const drops: ConnectionDropReason[] = [];
    // /hold answers only when the test lets it: a request in progress.
    const server = await listen((req, res) => (req.url === '/hold' ? held.push(res) : res.end('ok')), '127.0.0.1', 0, 1_000, {
      maxConnections: 3,
      onDrop: (reason) => drops.push(reason),
    });
    t.after(() => server.close(100));
    const port = Number(new URL(server.url).port);
    const closed = (socket: Socket) => new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    const silent = () => {
      const socket = connect(port, '127.0.0.1').on('error', () => undefined);
      t.after(() => socket.destroy());
      return new Promise<Socket>((resolve) => socket.once('connect', () => resolve(socket)));
    };
    const settle = () => new Promise((r) => setTimeout(r, 100));

    // Silent: closed after the first-byte timeout (half the headers timeout here: 0.5 s), with no limit in sight.
    const lone = await silent();
    const start = Date.now();
    const loneClosedAt = await closed(lone);
    assert.ok(loneClosedAt - start >= 400 && loneClosedAt - start < 3_000, `closed after ${loneClosedAt - start} ms`);
    assert.deepEqual(drops, ['silent']);

    // Full of idle connections: a newcomer takes the place of the oldest, and gets its answer.
    const [a, b, c] = [await silent(), await silent(), await silent()];
    const aClosed = closed(a);
    assert.equal((await get(`${server.url}/healthz`, 2_000)).status, 200);
    await aClosed;
    assert.deepEqual(drops, ['silent', 'evicted']);
    assert.equal(b.destroyed || c.destroyed, false, 'only the oldest was evicted');

    // Full of requests in progress: nothing to evict, the newcomer is refused; once they are answered, room again.
    b.destroy();
    c.destroy();
    await settle();
    const holding = [1, 2, 3].map(() => get(`${server.url}/hold`, 5_000));
    await until('three requests in progress', 5_000, () => held.length === 3, 20);
    assert.equal((await get(`${server.url}/healthz`, 2_000)).status, 'ECONNRESET');
    assert.deepEqual(drops, ['silent', 'evicted', 'refused']);
    for (const res of held) res.end('done');
    assert.deepEqual(
      (await Promise.all(holding)).map((r) => r.status),
      [200, 200, 200],
      'the requests in progress were never cut',
    );
    assert.equal((await get(`${server.url}/healthz`, 2_000)).status, 200);
  },
);

test("the connection limit comes from the open-files limit, less a reserve for the sidecar's own work", () => {
  const limits = (soft: string) => () =>
    `Limit                     Soft Limit           Hard Limit           Units\nMax processes             63432                63432                processes\nMax open files            ${soft}                 1048576              files\n`;
  assert.equal(openFileLimit(limits('64')), 64);
  assert.equal(openFileLimit(limits('unlimited')), undefined);
  assert.equal(
    openFileLimit(() => {
      throw new Error('no /proc');
    }),
    undefined,
  );
  assert.equal(typeof openFileLimit(), 'number', 'this Linux host has /proc/self/limits');
  // 32 for the runtime and files in flight, one per broker request that may be in flight (8 by default).
  const http = { gatewayConnections: 0 };
  assert.deepEqual(connectionBudget(64, 8), { ...http, maxConnections: 24, descriptorLimit: 64, reserved: 40, tooLow: false });
  assert.deepEqual(connectionBudget(1024, 8), { ...http, maxConnections: 256, descriptorLimit: 1024, reserved: 40, tooLow: false });
  assert.deepEqual(connectionBudget(44, 8), { ...http, maxConnections: 8, descriptorLimit: 44, reserved: 40, tooLow: true });
  assert.deepEqual(connectionBudget(undefined, 8), { ...http, maxConnections: 256, descriptorLimit: undefined, reserved: 40, tooLow: false });
  // With the gateway: its 32 keep-alive connections to the brokers reserved too; a quarter of the rest (at most 64)
  // for the HTTP port, the others for the gateway's clients, so a flood on one port cannot take the other's places.
  assert.deepEqual(connectionBudget(128, 8, true), { maxConnections: 14, gatewayConnections: 42, descriptorLimit: 128, reserved: 72, tooLow: false });
  assert.deepEqual(connectionBudget(65_536, 8, true), { maxConnections: 64, gatewayConnections: 1_024, descriptorLimit: 65_536, reserved: 72, tooLow: false });
});

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { get as httpGet, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { existsSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { systemClock } from '../src/core/clock';
import type { ConnectionDropReason } from '../src/core/errors';
import { connectionBudget, openFileLimit } from '../src/http/descriptors';
import { listen } from '../src/http/server';
import {
  CLI,
  MINUTE,
  SECOND,
  LogCapture,
  configText,
  exited,
  freePort,
  markerCredential,
  parseExposition,
  parseTestConfig,
  recordReliability,
  sampleValue,
  spawnForTest,
  startSimulator,
  tempDir,
  testSidecar,
  until,
  serveSidecar,
} from './helpers';

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
  t.after(() => sidecar.close());
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

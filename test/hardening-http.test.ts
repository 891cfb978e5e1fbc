import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { createHttpApp } from '../src/http/app';
import { listen } from '../src/http/server';
import { MINUTE, LogCapture, configText, markerCredential, parseExposition, parseTestConfig, sampleValue, startSimulator, tempDir, testSidecar } from './helpers';

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
  const app = createHttpApp({ control: sidecar, metrics: sidecar.metrics, now: () => clock.now(), adminToken, secrets: sidecar.secrets, bus: sidecar.bus });
  const server = await listen(app, '127.0.0.1', 0, 5_000);
  t.after(() => server.close());
  const dispatcher = new Agent({ connections: 8 });
  t.after(() => dispatcher.close());
  const post = (authorization?: string) =>
    request(`${server.url}/renew/main`, { method: 'POST', headers: authorization ? { authorization } : {}, dispatcher }).then(async (r) => (await r.body.dump(), r.statusCode));

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
    return { missing: sampleValue(samples, 'broker_token_admin_auth_failures_total', { reason: 'missing' }), wrong: sampleValue(samples, 'broker_token_admin_auth_failures_total', { reason: 'wrong' }) };
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

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { parse as parseYaml } from 'yaml';
import { systemClock } from '../src/core/clock';
import { startSidecarGateway } from '../src/wiring';
import { sha256 } from '../src/core/wire';
import {
  CLI,
  LogCapture,
  closeBeforeCleanup,
  freePort,
  configText,
  exited,
  markerCredential,
  parseExposition,
  parseTestConfig,
  sampleValue,
  spawnForTest,
  tempDir,
  testSidecar,
  recordReliability,
  tier,
  until,
} from './helpers';
import { redisAvailable, startRedis } from './redis-harness';
import { PRICE, call, clientEntries, gatewayHarness, localClient, simulatorProcess } from './gateway-harness';

/**
 * The gateway end to end: a sidecar against the simulator, its gateway on a port, and clients that hold only
 * local credentials. The simulator's request log is what the broker would have seen.
 */

test('a KIS client with local credentials: its token, revoke and approval requests are answered locally, its calls reach the broker with the real ones', async (t) => {
  const bot = localClient('bot');
  const h = await gatewayHarness(t, [bot]);
  const before = h.simulator.stats();
  const logBefore = h.simulator.requestLog().length;

  const tokenP = await request(`${h.base}/oauth2/tokenP`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'client_credentials', appkey: bot.appKey, appsecret: bot.appSecret }),
  });
  assert.equal(tokenP.statusCode, 200);
  const issued = (await tokenP.body.json()) as Record<string, string>;
  assert.match(issued.access_token!, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT, as the broker gives');
  assert.match(issued.access_token_token_expired!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  assert.notEqual(issued.access_token, h.sidecar.account('main')!.gatewayToken()!.accessToken, 'never the real token');

  const priced = await call(h.base, bot, issued.access_token);
  assert.equal(priced.status, 200);
  assert.equal(priced.body.rt_cd, '0');

  const approval = await request(`${h.base}/oauth2/Approval`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'client_credentials', appkey: bot.appKey, secretkey: bot.appSecret }),
  });
  assert.equal(approval.statusCode, 200);
  assert.ok(((await approval.body.json()) as { approval_key?: string }).approval_key);
  const revoke = await request(`${h.base}/oauth2/revokeP`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ appkey: bot.appKey, appsecret: bot.appSecret, token: issued.access_token }),
  });
  assert.equal(revoke.statusCode, 200);
  await revoke.body.dump();

  const after = h.simulator.stats();
  assert.equal(after.tokenRequests, before.tokenRequests, 'no token request reached the broker');
  assert.equal(after.revokes, before.revokes, 'no revoke reached the broker');
  assert.ok(after.approvals - before.approvals <= 1, "at most the sidecar's own approval key");
  assert.equal(
    after.proofsOk - before.proofsOk,
    1,
    `the one call went through; at the broker: ${JSON.stringify(
      // Endpoints and outcomes only: a request record carries the app key.
      h.simulator
        .requestLog()
        .slice(logBefore)
        .map(({ endpoint, status, outcome }) => ({ endpoint, status, outcome })),
    )}`,
  );

  // Wrong local secret: the broker's own error shape, nothing sent.
  const wrong = await call(h.base, { ...bot, appSecret: bot.appSecret.replace(/^./, (first) => (first === 'x' ? 'y' : 'x')) });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.body.rt_cd, '1');
  assert.equal(wrong.body.msg_cd, 'EGW00105');
  // The account's real key sent as a client's: refused too (the gateway holds it; a client never needs it).
  const real = await call(h.base, { name: 'x', appKey: h.cred.appKey, appSecret: h.cred.appSecret });
  assert.equal(real.status, 401);
  const unknown = await request(`${h.gateway.url}/nosuch${PRICE}`);
  assert.equal(unknown.statusCode, 404);
  await unknown.body.dump();
  assert.equal(h.simulator.stats().proofs - before.proofs, 1, 'refused calls never reach the broker');

  const metrics = parseExposition((await h.sidecar.metrics.render(false)).body);
  assert.equal(sampleValue(metrics, 'broker_token_gateway_local_answers_total', { client: 'bot', endpoint: 'token' }), 1);
  assert.equal(sampleValue(metrics, 'broker_token_gateway_calls_total', { client: 'bot', api: 'FHKST01010100', result: 'ok', code: '' }), 1);
  assert.equal(sampleValue(metrics, 'broker_token_gateway_refused_total', { reason: 'unauthenticated' }), 2);
  for (const secret of [h.cred.appKey, h.cred.appSecret, bot.appSecret, issued.access_token!]) {
    assert.ok(!h.logs.lines.join('\n').includes(secret), 'no secret or token in the logs');
  }
});

test('an order through the gateway: the body goes to the broker as sent, the answer comes back as given', async (t) => {
  const bot = localClient('bot');
  const h = await gatewayHarness(t, [bot]);
  const order = { CANO: '50012345', ACNT_PRDT_CD: '01', PDNO: '005930', ORD_DVSN: '00', ORD_QTY: '1', ORD_UNPR: '70000' };
  const r = await request(`${h.base}/uapi/domestic-stock/v1/trading/order-cash`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json; charset=utf-8',
      authorization: 'Bearer local',
      appkey: bot.appKey,
      appsecret: bot.appSecret,
      tr_id: 'TTTC0012U',
      custtype: 'P',
    },
    body: JSON.stringify(order),
  });
  const body = (await r.body.json()) as { rt_cd: string; output?: { ODNO?: string } };
  assert.equal(r.statusCode, 200);
  assert.equal(body.rt_cd, '0');
  assert.match(body.output?.ODNO ?? '', /^\d{10}$/);
  const bad = await request(`${h.base}/uapi/domestic-stock/v1/trading/order-cash`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', appkey: bot.appKey, appsecret: bot.appSecret, tr_id: 'TTTC0012U', custtype: 'P' },
    body: JSON.stringify({ ...order, ORD_QTY: '0' }),
  });
  assert.equal(((await bad.body.json()) as { rt_cd: string }).rt_cd, '1', "the broker's refusal reaches the client as it was");
  assert.equal(h.simulator.stats().ordersOk, 1);
  const metrics = parseExposition((await h.sidecar.metrics.render(false)).body);
  assert.equal(sampleValue(metrics, 'broker_token_gateway_calls_total', { client: 'bot', api: 'TTTC0012U', result: 'ok', code: '' }), 1);
  assert.equal(sampleValue(metrics, 'broker_token_gateway_calls_total', { client: 'bot', api: 'TTTC0012U', result: 'broker_error', code: 'OPSQ2002' }), 1);
});

test('a Kiwoom client: a local token from /oauth2/token, calls and orders with it, nothing issued at the broker', async (t) => {
  const bot = localClient('bot');
  const h = await gatewayHarness(t, [bot], { provider: 'kiwoom' });
  const before = h.simulator.stats();
  const tokenAnswer = await request(`${h.base}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json;charset=UTF-8', 'api-id': 'au10001' },
    body: JSON.stringify({ grant_type: 'client_credentials', appkey: bot.appKey, secretkey: bot.appSecret }),
  });
  const issued = (await tokenAnswer.body.json()) as { token: string; expires_dt: string; return_code: number };
  assert.equal(issued.return_code, 0);
  assert.match(issued.expires_dt, /^\d{14}$/);
  const kiwoom = (path: string, apiId: string, body: unknown, token = issued.token) =>
    request(`${h.base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json;charset=UTF-8', 'api-id': apiId, authorization: `Bearer ${token}`, 'cont-yn': 'N', 'next-key': '' },
      body: JSON.stringify(body),
    }).then(async (r) => ({ status: r.statusCode, body: (await r.body.json()) as { return_code: number; return_msg?: string; ord_no?: string } }));
  assert.equal((await kiwoom('/api/dostk/stkinfo', 'ka10001', { stk_cd: '005930' })).body.return_code, 0);
  const ordered = await kiwoom('/api/dostk/ordr', 'kt10000', { dmst_stex_tp: 'KRX', stk_cd: '005930', ord_qty: '1', ord_uv: '', trde_tp: '3', cond_uv: '' });
  assert.equal(ordered.body.return_code, 0);
  assert.match(ordered.body.ord_no ?? '', /^\d+$/);
  const forged = await kiwoom('/api/dostk/stkinfo', 'ka10001', { stk_cd: '005930' }, `${issued.token.slice(0, -2)}xx`);
  assert.equal(forged.status, 401);
  assert.match(forged.body.return_msg ?? '', /8005/, "a forged local token reads as a bad token, in the broker's words");
  const after = h.simulator.stats();
  assert.equal(after.tokenRequests, before.tokenRequests, 'no token request reached the broker');
  assert.equal(after.proofsOk - before.proofsOk, 1);
  assert.equal(after.ordersOk - before.ordersOk, 1);
});

test("gateway add-client: local credentials of the broker's shape in a 0600 file, an entry with only their digest", (t) => {
  const dir = tempDir(t);
  const cred = markerCredential('kis', 'addclient');
  const config = join(dir, 'config.yaml');
  writeFileSync(config, configText(join(dir, 'state'), 'http://127.0.0.1:9', [{ name: 'main', credential: cred }]));
  const run = spawnSync(process.execPath, [CLI, 'gateway', 'add-client', '--config', config, '--name', 'bot-a', '--account', 'main', '--dir', dir], {
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, run.stderr);
  const file = join(dir, 'bot-a.gateway.yaml');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const written = parseYaml(readFileSync(file, 'utf8')) as { appkey: string; appsecret: string; urls: Record<string, string> };
  assert.equal(written.appkey.length, 36);
  assert.equal(written.appsecret.length, 180);
  assert.match(written.urls.main!, /^http:\/\/127\.0\.0\.1:9465\/main$/);
  assert.ok(!run.stdout.includes(written.appsecret), 'the secret is in the file only');
  const entry = run.stdout.split('\n').find((line) => line.includes('appSecretSha256'))!;
  assert.ok(entry.includes(sha256(written.appsecret).toString('hex')));
  // Pasted into the config, it is a valid client.
  const withClient = readFileSync(config, 'utf8').replace(
    'server: { enabled: false }',
    `server: { enabled: false }\ngateway:\n  enabled: true\n  clients:\n${entry}`,
  );
  const parsed = parseTestConfig(withClient, dir);
  assert.deepEqual(
    parsed.gateway.clients.map((c) => c.name),
    ['bot-a'],
  );
  const again = spawnSync(process.execPath, [CLI, 'gateway', 'add-client', '--config', config, '--name', 'bot-b', '--account', 'nosuch', '--dir', dir], {
    encoding: 'utf8',
  });
  assert.equal(again.status, 2);
  assert.match(again.stderr, /nosuch/);
});

test('a token killed at the broker mid-run: calls recover with one issuance, within the spacing', async (t) => {
  const bot = localClient('bot');
  const h = await gatewayHarness(t, [bot]);
  // The first issuance must be past the 1 s spacing, as a token killed hours into its life would be.
  await new Promise((r) => setTimeout(r, 1_100));
  const issuedBefore = h.simulator.stats().issued;
  assert.equal((await call(h.base, bot)).status, 200);
  h.simulator.maintenance();
  const started = Date.now();
  const answers = await Promise.all(Array.from({ length: 5 }, () => call(h.base, bot)));
  assert.deepEqual(
    answers.map((a) => `${String(a.body.rt_cd)}${a.body.rt_cd === '0' ? '' : ` ${String(a.body.msg_cd)}`}`),
    ['0', '0', '0', '0', '0'],
    'every call answered with the new token',
  );
  const recoveredMs = Date.now() - started;
  assert.ok(recoveredMs < 5_000, 'recovered within the spacing and a proof');
  assert.equal(h.simulator.stats().issued - issuedBefore, 1, 'exactly one issuance, however many calls saw the token die');
  const metrics = parseExposition((await h.sidecar.metrics.render(false)).body);
  assert.ok(sampleValue(metrics, 'broker_token_gateway_retries_total', { reason: 'token_fault' }) >= 1);
  recordReliability({
    kind: 'fault',
    category: 'gateway',
    fault: 'the token killed at the broker while five client calls are on their way (EGW00121, as after a maintenance)',
    reason: '(gateway retries: token_fault)',
    alert: 'none',
    issuances: 1,
    outcome: `one proof, one issuance within the rules, each call sent again once with the new token: 5/5 answered rt_cd 0 in ${recoveredMs} ms`,
  });
});

test(
  'ten client processes trying 18 calls a second each: the broker sees at most 18 in any second, no EGW00201, equal shares',
  { timeout: 180_000 },
  async (t) => {
    // Every part in a process of its own, as in production: the broker (the simulator), the sidecar with its
    // gateway, and ten bots. The simulator's request log is what the broker counted, on its own clock.
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'budget');
    const clients = Array.from({ length: 10 }, (_, i) => localClient(`bot${i}`));
    const sim = await simulatorProcess(t, cred);
    const simUrl = sim.url;
    const gatewayPort = await freePort();
    const clientsYaml = clientEntries(clients);
    writeFileSync(
      join(dir, 'config.yaml'),
      configText(
        join(dir, 'state'),
        simUrl,
        [{ name: 'main', credential: cred, extra: 'renewal: { spacing: 1s }' }],
        `gateway:\n  enabled: true\n  port: ${gatewayPort}\n  clients:\n${clientsYaml}\n`,
      ),
    );
    const sidecar = spawnForTest(t, process.execPath, [CLI, 'start', '--config', join(dir, 'config.yaml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    sidecar.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    await until(
      () => `the gateway; log:\n${log}`,
      20_000,
      () => log.includes('gateway serving'),
    );
    const base = `http://127.0.0.1:${gatewayPort}/main`;

    const seconds = tier(6, 20);
    const startAt = Date.now() + 2_000; // every bot starts at once, whenever its process came up
    const script = `
    const http = require('node:http');
    const [base, appKey, appSecret, seconds, startAt] = process.argv.slice(1);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const counts = {};
    let inFlight = 0;
    const one = () => {
      if (inFlight >= 8) { counts.skipped = (counts.skipped || 0) + 1; return; }
      inFlight++;
      const req = http.get(base + ${JSON.stringify(PRICE)}, { agent, headers: { authorization: 'Bearer local', appkey: appKey, appsecret: appSecret, tr_id: 'FHKST01010100', custtype: 'P' } }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => { inFlight--; const code = res.statusCode + ':' + (JSON.parse(body).msg_cd || ''); counts[code] = (counts[code] || 0) + 1; });
      });
      req.on('error', () => { inFlight--; counts.error = (counts.error || 0) + 1; });
    };
    setTimeout(() => {
      const started = Date.now();
      const timer = setInterval(() => {
        if (Date.now() - started < seconds * 1000) return one();
        clearInterval(timer);
        const wait = setInterval(() => { if (inFlight === 0) { clearInterval(wait); process.stdout.write(JSON.stringify(counts)); agent.destroy(); } }, 50);
      }, 1000 / 18);
    }, Number(startAt) - Date.now());
  `;
    const outputs = await Promise.all(
      clients.map((c) => {
        const child = spawnForTest(t, process.execPath, ['-e', script, base, c.appKey, c.appSecret, String(seconds), String(startAt)], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        return new Promise<Record<string, number>>((resolve) => {
          let text = '';
          child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
          void exited(child).then(() => resolve(JSON.parse(text || '{}') as Record<string, number>));
        });
      }),
    );
    const busiest = await sim.busiestSecond('kis.price');
    const stats = await sim.stats();
    sidecar.kill('SIGTERM');
    assert.equal(await exited(sidecar), 0);
    const ok = outputs.map((o) => o['200:MCA00000'] ?? 0);
    const total = ok.reduce((a, b) => a + b, 0);
    const mean = total / ok.length;
    const detail = JSON.stringify({ busiest, ok, first: outputs[0] });
    assert.ok(busiest <= 18, `the broker saw ${busiest} calls in one second: ${detail}`);
    assert.equal(stats.quotaExceeded, 0, `EGW00201 answers: ${detail}`);
    assert.equal(stats.tokenRequests, 1, "the sidecar's one issuance; the bots asked for none");
    assert.ok(total >= seconds * 15, `the budget was used: ${total} calls in ${seconds} s; ${detail}`);
    // The clients take turns (test/unit-budget.test.ts pins the order); what each gets also depends on whether it had a
    // call waiting at its turn, which a busy host makes noisy. Over the short tier's ~14 calls a client, one call is
    // 7 %; the long tier's ~35 calls make 20 % a real bound.
    const tolerance = tier(0.4, 0.2);
    for (const share of ok) assert.ok(Math.abs(share - mean) <= tolerance * mean, `each client within ${tolerance * 100} % of an equal share: ${detail}`);
    for (const o of outputs) assert.equal(o.error ?? 0, 0, `no connection errors: ${detail}`);
    assert.doesNotMatch(log, new RegExp([cred.appKey, cred.appSecret, ...clients.map((c) => c.appSecret)].join('|')), 'no secret in the log');
    const spread = Math.max(...ok.map((share) => Math.abs(share - mean) / mean));
    recordReliability({
      kind: 'fault',
      category: 'gateway',
      fault: `ten client processes trying 18 calls a second each for ${seconds} s, on one KIS real app key (10 times the broker's limit)`,
      reason: '(gateway calls: ok, budget_exhausted)',
      alert: '(Prometheus: BrokerTokenGatewayBudgetSaturated, if it lasts 10 min)',
      issuances: 0,
      outcome: `the broker saw at most ${busiest} calls in any second and 0 EGW00201; ${total} calls answered, the last of them queued at the end and served within maxWait; each client within ${Math.round(spread * 100)} % of an equal share; the bots issued nothing`,
    });
  },
);

test('gateway config: local credentials of the broker shape, never a real key, limits no higher than the broker allows against its own hosts', () => {
  const real = markerCredential('kis', 'cfg');
  const bot = localClient('bot');
  const problemsOf = (gateway: string, baseUrl = 'http://127.0.0.1:9', sinks = 'sinks: []') => {
    const text = `stateDir: /tmp/gw-state\ngateway:\n${gateway}\naccounts:\n  - { name: main, provider: kis, appKey: "${real.appKey}", appSecret: "${real.appSecret}", baseUrl: "${baseUrl}", ${sinks} }\n`;
    try {
      parseTestConfig(text, '/tmp/gw');
      return [];
    } catch (error) {
      return (error as { problems: string[] }).problems;
    }
  };
  const client = (fields: string) => `  enabled: true\n  clients:\n    - { name: bot, accounts: [main], ${fields} }`;
  const digest = sha256(bot.appSecret).toString('hex');
  assert.deepEqual(problemsOf(client(`appKey: "${bot.appKey}", appSecretSha256: "${digest}"`)), [], 'a good client; no sink needed for an account it uses');
  assert.deepEqual(problemsOf(client(`appKey: "short", appSecretSha256: "${digest}"`)), [
    'gateway.clients[0].appKey: must be 36 characters for a KIS account, as a real one',
  ]);
  assert.deepEqual(problemsOf(client(`appKey: "${bot.appKey}", appSecret: "tooshort"`)), [
    'gateway.clients[0].appSecret: must be 180 characters for a KIS account, as a real one',
  ]);
  assert.deepEqual(problemsOf(client(`appKey: "${real.appKey}", appSecretSha256: "${digest}"`)), [
    "gateway.clients[0].appKey: is an account's real app key: give the client a local one (`gateway add-client`)",
  ]);
  assert.deepEqual(problemsOf(client(`appKey: "${bot.appKey}"`)), [
    'gateway.clients[0].appSecret: set exactly one of appSecret, appSecretFile and appSecretSha256',
  ]);
  assert.deepEqual(problemsOf('  enabled: true'), [
    'accounts[0].sinks: must list at least 1 sink (the files applications read), unless a gateway client uses the account',
    'gateway.clients: must list at least 1 client when the gateway is enabled (or name a clientsFile that `gateway add-client` fills)',
  ]);
  const limited = `${client(`appKey: "${bot.appKey}", appSecretSha256: "${digest}"`)}\n  callsPerSecond: { main: 50 }`;
  assert.deepEqual(problemsOf(limited), [], 'above the published limit against the simulator');
  assert.deepEqual(problemsOf(limited, 'https://openapi.koreainvestment.com:9443'), [
    "gateway.callsPerSecond.main: must be at most 18 because the account's baseUrl is KIS's own host (openapi.koreainvestment.com), whose limit that is; a higher value needs a baseUrl elsewhere (the simulator, a proxy)",
  ]);
  assert.ok(
    !JSON.stringify(problemsOf(client(`appKey: "${bot.appKey}", appSecret: "${bot.appSecret.slice(0, 20)}"`))).includes(bot.appSecret.slice(0, 20)),
    'a secret is never echoed',
  );
});

test('a program outside the gateway fills the broker window: the call meets EGW00201, is counted, and is sent again in the next window', async (t) => {
  const bot = localClient('bot');
  const h = await gatewayHarness(t, [bot]);
  const real = h.sidecar.account('main')!.gatewayToken()!.accessToken;
  // The outside program: calls with the real credentials, early in a second, until the broker says EGW00201.
  while (Date.now() % 1_000 > 200) await new Promise((r) => setTimeout(r, 10));
  let outside = 0;
  for (let refused = false; !refused && outside < 40; outside++) {
    const r = await request(`${h.url}${PRICE}`, {
      headers: { authorization: `Bearer ${real}`, appkey: h.cred.appKey, appsecret: h.cred.appSecret, tr_id: 'FHKST01010100', custtype: 'P' },
    });
    refused = ((await r.body.json()) as { msg_cd: string }).msg_cd === 'EGW00201';
  }
  assert.ok(outside <= 19, 'the outside program filled the window');
  const answer = await call(h.base, bot);
  assert.equal(answer.body.rt_cd, '0', 'answered after the retry');
  assert.equal(h.simulator.stats().quotaExceeded, 2, "the outside program's EGW00201 and the gateway's one; its retry waited for the next window");
  const metrics = parseExposition((await h.sidecar.metrics.render(false)).body);
  assert.equal(sampleValue(metrics, 'broker_token_gateway_retries_total', { reason: 'rate_limited' }), 1);
  assert.equal(sampleValue(metrics, 'broker_token_gateway_calls_total', { client: 'bot', api: 'FHKST01010100', result: 'ok', code: '' }), 1);
});

test('two replicas on one Redis: their gateways share one budget, the broker sees at most 18 calls in any second', { timeout: 60_000 }, async (t) => {
  if (!redisAvailable()) {
    if (process.env.CI) assert.fail('redis-server is required in CI');
    return t.skip('redis-server not installed');
  }
  const redis = await startRedis(t);
  const cred = markerCredential('kis', 'shared-budget');
  const sim = await simulatorProcess(t, cred);
  const bot = localClient('bot');
  const entry = `    - { name: bot, accounts: [main], appKey: "${bot.appKey}", appSecretSha256: "${sha256(bot.appSecret).toString('hex')}" }`;
  const replicas = await Promise.all(
    ['a', 'b'].map(async (name) => {
      const dir = tempDir(t);
      const top = `store: { type: redis, url: "${redis.url}" }\ngateway:\n  enabled: true\n  port: 0\n  windowMargin: 150ms\n  clients:\n${entry}\n`;
      const config = parseTestConfig(
        configText(join(dir, 'state'), sim.url, [{ name: 'main', credential: cred, extra: 'renewal: { spacing: 1s }' }], top),
        dir,
      );
      const sidecar = testSidecar(config, systemClock as never, { logger: new LogCapture().logger });
      await sidecar.open();
      closeBeforeCleanup(t, () => sidecar.close());
      const gateway = await startSidecarGateway(sidecar, 256);
      closeBeforeCleanup(t, () => gateway.close());
      sidecar.run();
      await until(`replica ${name}'s token`, 15_000, () => sidecar.account('main')!.gatewayToken() !== undefined);
      return `${gateway.url}/main`;
    }),
  );
  const seconds = tier(4, 15);
  const until_ = Date.now() + seconds * 1_000;
  const answers = new Map<string, number>();
  const worker = async (base: string) => {
    while (Date.now() < until_) {
      const { status, body } = await call(base, bot);
      const key = `${status}:${String(body.msg_cd)}`;
      answers.set(key, (answers.get(key) ?? 0) + 1);
    }
  };
  await Promise.all(replicas.flatMap((base) => Array.from({ length: 6 }, () => worker(base))));
  const busiest = await sim.busiestSecond('kis.price');
  const stats = await sim.stats();
  const detail = JSON.stringify({ busiest, answers: Object.fromEntries(answers) });
  assert.ok(busiest <= 18, `the broker saw ${busiest} calls in one second: ${detail}`);
  assert.equal(stats.quotaExceeded, 0, detail);
  assert.ok((answers.get('200:MCA00000') ?? 0) >= seconds * 14, `the shared budget was used: ${detail}`);
  assert.equal(stats.tokenRequests, 1, 'one token for both replicas');
  recordReliability({
    kind: 'fault',
    category: 'gateway',
    fault: `two replicas on one Redis, each with six callers as fast as they are answered, for ${seconds} s`,
    reason: '(gateway calls: ok, budget_exhausted)',
    alert: '(Prometheus: BrokerTokenGatewayBudgetSaturated, if it lasts 10 min)',
    issuances: 0,
    outcome: `one budget counted in Redis: the broker saw at most ${busiest} calls in any second and 0 EGW00201; ${answers.get('200:MCA00000') ?? 0} calls answered; one token for both replicas`,
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { mkdirSync, readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { gatewayHealthOf } from '../src/wiring';
import { startGateway } from '../src/gateway/start';
import { createHttpApp } from '../src/http/app';
import { listen } from '../src/http/server';
import { REPLICAS, replicaTools, runReplica } from './replicas';
import {
  closeBeforeCleanup,
  configText,
  exited,
  freePort,
  markerCredential,
  parseExposition,
  recordReliability,
  sampleValue,
  spawnForTest,
  tempDir,
  tier,
  until,
} from './helpers';
import {
  PRICE,
  call,
  clientEntries,
  gatewayHarness,
  hostileProcess,
  localClient,
  residentMiB,
  sidecarProcess,
  simulatorProcess,
  type Client,
} from './gateway-harness';
import { redisAvailable, startRedis } from './redis-harness';

/**
 * The gateway tried as a hostile or buggy client would: every attempt that once turned it into an amplifier of
 * calls with the real key, or locked its clients out, replayed, each with the safe outcome asserted and its figure
 * recorded (docs/reliability.md, "Hostile clients"). Where a figure depends on processes (memory, descriptors, what
 * the broker saw each second), the sidecar, the simulator and the hostile clients each run as a process of their own.
 */

const tools = replicaTools();
const EXAMPLES = join(__dirname, '..', '..', 'examples');

const hostile = (attempt: string, outcome: string, figure: string) => {
  process.stdout.write(`# hostile: ${attempt}: ${figure}\n`);
  recordReliability({ kind: 'hostile', attempt, outcome, figure });
};

const tokenRequest = (client: Client) => ({
  grant_type: 'client_credentials',
  appkey: client.appKey,
  appsecret: client.appSecret,
  secretkey: client.appSecret,
});

/** Writes `text` on a new connection and returns all that comes back until the gateway closes it. */
function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.on('connect', () => socket.write(text));
    socket.on('data', (d: Buffer) => {
      answer += d.toString();
      // A whole answer with a body read: enough, whether or not the gateway closes.
      if (/\r\n\r\n[\s\S]*\}$/.test(answer)) socket.end();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(answer));
  });
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const r = await request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await r.body.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON: left empty
  }
  return { status: r.statusCode, body: json, headers: r.headers };
}

test('token endpoints: spelled as the broker spells them they are answered here; every variant, and anything else under /oauth2, is refused and never forwarded', async (t) => {
  const bot = localClient('bot');
  const h = await gatewayHarness(t, [bot]);
  const logBefore = h.simulator.requestLog().length;
  const variants = [
    '/main/oauth2/tokenp',
    '/main/oauth2/TOKENP',
    '/main/oauth2/tokenP/',
    '/main/oauth2/approval',
    '/main/OAUTH2/tokenP',
    '/main/oauth2/tokenP2',
    '/main/oauth2',
    '/oauth2/tokenp',
    '/oauth2/Approval2',
  ];
  for (const path of variants) {
    const answer = await post(`${h.gateway.url}${path}`, tokenRequest(bot));
    assert.equal(answer.status, 404, `${path}: ${JSON.stringify(answer.body)}`);
    assert.equal(answer.body.rt_cd, '1', "the broker's error shape");
  }
  const get = await request(`${h.base}/oauth2/tokenP`);
  assert.equal(get.statusCode, 404, 'a GET of a token endpoint is no token request');
  await get.body.dump();
  const { port } = new URL(h.gateway.url);
  for (const path of ['/%zz/x', '/main/uapi/%2e%2e/oauth2/tokenP', '/main/uapi/..%2Foauth2/tokenP', '/main/uapi/a%00b']) {
    // Sent as written: an HTTP library would normalise some of these before they left.
    const answer = await rawRequest(Number(port), `GET ${path} HTTP/1.1\r\nHost: x\r\nappkey: ${bot.appKey}\r\nappsecret: ${bot.appSecret}\r\n\r\n`);
    assert.match(answer, /^HTTP\/1\.1 400/, `${path}: a path no broker has`);
  }
  assert.equal((await post(`${h.base}/oauth2/tokenP`, tokenRequest(bot))).status, 200, 'the exact path is answered');
  const forwarded = h.simulator
    .requestLog()
    .slice(logBefore)
    .filter((r) => r.endpoint !== 'kis.price');
  assert.deepEqual(
    forwarded.map((r) => r.endpoint),
    [],
    'nothing reached a token endpoint of the broker',
  );
  const metrics = parseExposition((await h.sidecar.metrics.render(false)).body);
  assert.equal(sampleValue(metrics, 'broker_token_gateway_refused_total', { reason: 'not_found' }), variants.length + 1);
  assert.equal(sampleValue(metrics, 'broker_token_gateway_refused_total', { reason: 'bad_request' }), 4);
  hostile(
    'token paths spelled otherwise (tokenp, TOKENP, tokenP/, approval, OAUTH2, a GET), malformed escapes (%zz, %2e%2e, ..%2F, %00)',
    'refused locally in the broker shape (404 / 400), never forwarded',
    `${variants.length + 1} variants and 4 malformed paths: 0 requests at the broker`,
  );
});

test('an unknown caller is answered from its headers at once and its connection closed: its body is never waited for', async (t) => {
  const bot = localClient('bot');
  const h = await gatewayHarness(t, [bot]);
  const { port } = new URL(h.gateway.url);
  const started = performance.now();
  // A call with a wrong secret announcing a megabyte it never sends: answered, and the connection closed by the gateway.
  const answer = await rawRequest(
    Number(port),
    `POST /main${PRICE} HTTP/1.1\r\nHost: x\r\nappkey: ${bot.appKey}\r\nappsecret: wrong\r\nContent-Length: 1000000\r\n\r\n{`,
  );
  const tookMs = performance.now() - started;
  assert.match(answer, /^HTTP\/1\.1 401/);
  assert.match(answer, /EGW00105/);
  assert.ok(tookMs < 1_500, `answered and closed in ${Math.round(tookMs)} ms, not after a body timeout`);
  hostile(
    'a call with wrong credentials announcing a 1 MB body it never sends',
    'answered 401 from the headers, connection closed, body never read',
    `${Math.round(tookMs)} ms`,
  );
});

test('Approval flooded while the broker fails it: the broker sees one attempt per backoff step, whatever the clients do', async (t) => {
  const clients = Array.from({ length: 8 }, (_, i) => localClient(`bot${i}`));
  const seconds = tier(4, 10);
  const figures: string[] = [];
  for (const fault of [{ kind: 'status' as const, status: 500 }, { kind: 'drop' as const }]) {
    const h = await gatewayHarness(t, clients);
    h.simulator.injectFault({ endpoint: 'kis.approval', count: 1_000_000, ...fault });
    const until_ = Date.now() + seconds * 1_000;
    const answers = { total: 0, retryAfter: 0, ok: 0 };
    await Promise.all(
      clients.map(async (client) => {
        while (Date.now() < until_) {
          const answer = await post(`${h.base}/oauth2/Approval`, tokenRequest(client));
          answers.total++;
          if (answer.status === 200) answers.ok++;
          if (answer.headers['retry-after'] !== undefined) answers.retryAfter++;
        }
      }),
    );
    const atBroker = h.simulator.requestLog().filter((r) => r.endpoint === 'kis.approval').length;
    // 1 s, 2 s, 4 s, 8 s between attempts: at 0, ~1, ~3, ~7 s (jitter ±20 %).
    assert.ok(atBroker <= (seconds >= 10 ? 5 : 3), `${atBroker} Approval requests reached the broker in ${seconds} s`);
    assert.ok(atBroker >= 1, 'the first one did');
    assert.equal(answers.ok, 0);
    assert.ok(answers.retryAfter >= answers.total - 8, `every refused client is told when to ask again: ${JSON.stringify(answers)}`);
    figures.push(`${fault.kind === 'status' ? 'HTTP 500' : 'connection dropped'}: ${answers.total} client requests, ${atBroker} at the broker`);
  }
  hostile(
    `8 clients looping on Approval for ${seconds} s while the broker fails it (500, or drops the connection)`,
    'one attempt per backoff step (1, 2, 4 … 60 s); clients answered at once with Retry-After',
    figures.join('; '),
  );
});

test('Kiwoom: a new api-id on every call is no new budget: the broker sees the catch-all budget, and memory stays flat', async (t) => {
  const { cred, bot, sim, port, sidecar } = await gatewaySidecar(t, 'kiwoom', 'apiflood', {});
  const base = `http://127.0.0.1:${port}/main`;
  await until('the first token', 20_000, async () => (await post(`${base}/oauth2/token`, tokenRequest(bot))).body.return_code === 0);
  const token = String((await post(`${base}/oauth2/token`, tokenRequest(bot))).body.token);
  const headers = { 'content-type': 'application/json;charset=UTF-8', authorization: `Bearer ${token}`, 'cont-yn': 'N', 'next-key': '' };
  const seconds = tier(8, 30);
  const warm = hostileProcess(t, 'flood.js', [`${base}/api/dostk/stkinfo`, JSON.stringify(headers), '20', 'POST', '{"stk_cd":"005930"}', '--invent-api-id']);
  await new Promise((r) => setTimeout(r, 2_000));
  const floodFrom = Date.now();
  const rssBefore = residentMiB(sidecar.child.pid!);
  await new Promise((r) => setTimeout(r, seconds * 1_000));
  const rssAfter = residentMiB(sidecar.child.pid!);
  const seen = await warm.stop<{ calls: number; statuses: Record<string, number> }>();
  const invented = (r: { endpoint: string; outcome: string }) => r.endpoint.startsWith('kiwoom.') && r.outcome === 'bad_request';
  const busiest = await sim.busiestSecond(invented, floodFrom);
  const reached = (await sim.requests()).filter((r) => invented(r) && r.at >= floodFrom).length;
  const growth = rssAfter - rssBefore;
  const detail = JSON.stringify({ busiest, reached, rssBefore: Math.round(rssBefore), rssAfter: Math.round(rssAfter), seen });
  // Every invented api-id shares the one catch-all budget: Kiwoom's documented rate (about one a second per api-id).
  assert.ok(busiest <= 1, `the broker saw ${busiest} invented-api-id calls in one second: ${detail}`);
  assert.ok(reached <= seconds + 1, detail);
  assert.ok(growth <= 30, `the sidecar's memory grew ${growth.toFixed(1)} MiB: ${detail}`);
  hostile(
    `20 keep-alive connections inventing a new Kiwoom api-id on every call for ${seconds} s`,
    'one catch-all budget for every api-id the broker does not document; queues of idle keys dropped',
    `${seen.calls} calls sent, ${reached} reached the broker (at most ${busiest} in any second); sidecar RSS ${rssBefore.toFixed(0)} → ${rssAfter.toFixed(0)} MiB`,
  );
  assert.doesNotMatch(sidecar.log(), new RegExp([cred.appKey, cred.appSecret, bot.appSecret, token].join('|')), 'no secret in the log');
});

/** The simulator and a sidecar with its gateway, each a process of its own, for one client `bot` on account `main`. */
async function gatewaySidecar(t: Parameters<typeof tempDir>[0], provider: 'kis' | 'kiwoom', tag: string, options: { openFiles?: number } = {}) {
  const dir = tempDir(t);
  const cred = markerCredential(provider, tag);
  const bot = localClient('bot');
  const sim = await simulatorProcess(t, cred);
  const port = await freePort();
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    configText(
      join(dir, 'state'),
      sim.url,
      [{ name: 'main', credential: cred, extra: 'renewal: { spacing: 1s }' }],
      `gateway:\n  enabled: true\n  port: ${port}\n  clients:\n${clientEntries([bot])}\n`,
    ),
  );
  const sidecar = await sidecarProcess(t, config, options);
  return { dir, cred, bot, sim, port, sidecar };
}

async function slowConnectionsTest(t: Parameters<typeof tempDir>[0], count: number, openFiles: number) {
  const { bot, port, sidecar } = await gatewaySidecar(t, 'kis', `slow${count}`, { openFiles });
  const limit = Number(/"maxConnections":(\d+)[^\n]*gateway serving/.exec(sidecar.log())?.[1]);
  const base = `http://127.0.0.1:${port}/main`;
  await until('a first answered call', 20_000, async () => (await call(base, bot)).status === 200);
  const slow = hostileProcess(t, 'slow-connections.js', ['127.0.0.1', String(port), String(count), '/main/oauth2/tokenP']);
  await new Promise((r) => setTimeout(r, 1_000));
  const headers = { appkey: bot.appKey, appsecret: bot.appSecret, tr_id: 'FHKST01010100', custtype: 'P', authorization: 'Bearer local' };
  const caller = hostileProcess(t, 'caller.js', [`${base}${PRICE}`, JSON.stringify(headers), '200']);
  // The window starts at the caller's first answer: on a host busy with two CPU burners its own start took seconds.
  await caller.said('"first"');
  await new Promise((r) => setTimeout(r, tier(5, 20) * 1_000));
  const served = await caller.stop<{ calls: number; ok: number; retried: number; failed: number; latenciesMs: number[]; statuses: Record<string, number> }>();
  const flood = await slow.stop<{ opened: number; closedByServer: number }>();
  const slowest = Math.max(...served.latenciesMs);
  const detail = JSON.stringify({ limit, flood, served: { ...served, latenciesMs: undefined }, slowest });
  // One call at a time, each on a new connection waiting in the kernel's accept queue behind the flood's: few, but each in time.
  assert.ok(served.calls >= 3, detail);
  assert.equal(served.ok, served.calls, `every authenticated call answered: ${detail}`);
  assert.ok(slowest <= 2_000, `the slowest authenticated call took ${slowest} ms: ${detail}`);
  assert.ok(!/EMFILE/.test(sidecar.log()), 'no descriptor ran out');
  return { limit, flood, served, slowest };
}

test('260 connections trickling a token request: an authenticated client is served throughout', async (t) => {
  const { limit, flood, served, slowest } = await slowConnectionsTest(t, 260, 512);
  hostile(
    `260 connections sending headers and 1 byte of a token request's body, reopened when closed (ulimit -n 512: ${limit} gateway connections)`,
    'unauthenticated connections evicted first and closed after 2 s; authenticated calls served',
    `${served.ok}/${served.calls} calls answered, slowest ${slowest} ms, ${served.retried} retried after a reset; ${flood.opened} hostile connections opened`,
  );
});

test('1,000 connections trickling a token request, more than the gateway takes: an authenticated client is served throughout', async (t) => {
  const { limit, flood, served, slowest } = await slowConnectionsTest(t, 1_000, 512);
  assert.ok(limit < 1_000, 'the flood is larger than the connection limit');
  hostile(
    `1,000 connections sending headers and 1 byte of a token request's body, reopened when closed (ulimit -n 512: ${limit} gateway connections)`,
    'the oldest unauthenticated connection evicted for each newcomer; authenticated calls served',
    `${served.ok}/${served.calls} calls answered, slowest ${slowest} ms, ${served.retried} retried after a reset; ${flood.opened} hostile connections opened`,
  );
});

test('the gateway port under ulimit -n 128 flooded with 200 slow connections: a deleted token file is repaired within a second', async (t) => {
  const { dir, port, sidecar } = await gatewaySidecar(t, 'kis', 'fds', { openFiles: 128 });
  const file = join(dir, 'sinks', 'main.json');
  await until('the token file', 20_000, () => existsSync(file));
  const slow = hostileProcess(t, 'slow-connections.js', ['127.0.0.1', String(port), '200', '/main/oauth2/tokenP']);
  await new Promise((r) => setTimeout(r, 2_000));
  const repairs: number[] = [];
  for (let i = 0; i < 3; i++) {
    rmSync(file);
    const deletedAt = performance.now();
    await until('the file repaired', 10_000, () => existsSync(file), 10);
    repairs.push(Math.round(performance.now() - deletedAt));
    await new Promise((r) => setTimeout(r, 300));
  }
  const flood = await slow.stop<{ opened: number }>();
  const detail = JSON.stringify({ repairs, flood });
  assert.ok(Math.max(...repairs) <= 1_000, `repaired in ${repairs.join(', ')} ms: ${detail}`);
  assert.doesNotMatch(sidecar.log(), /EMFILE/, 'no descriptor ran out');
  hostile(
    '200 slow connections to the gateway port of a sidecar under ulimit -n 128, a token file deleted three times',
    "the gateway's connections come from the same descriptor budget as the HTTP port's, with a reserve for the files",
    `repaired in ${repairs.join(', ')} ms; no EMFILE`,
  );
});

test(
  'two replicas on one Redis beside two CPU-burning processes, ten clients each, three runs: at most 18 calls in any second at the broker, no EGW00201; Redis killed mid-run: still none',
  { timeout: 600_000 },
  async (t) => {
    if (!redisAvailable()) {
      if (process.env.CI) assert.fail('redis-server is required in CI');
      return t.skip('redis-server not installed');
    }
    const redis = await startRedis(t);
    const cred = markerCredential('kis', 'replicas-busy');
    const sim = await simulatorProcess(t, cred);
    const bot = localClient('bot');
    const ports = await Promise.all([freePort(), freePort()]);
    const replicas = await Promise.all(
      ports.map(async (port) => {
        const dir = tempDir(t);
        const config = join(dir, 'config.yaml');
        writeFileSync(
          config,
          configText(
            join(dir, 'state'),
            sim.url,
            [{ name: 'main', credential: cred, extra: 'renewal: { spacing: 1s }' }],
            `store: { type: redis, url: "${redis.url}" }\ngateway:\n  enabled: true\n  port: ${port}\n  clients:\n${clientEntries([bot])}\n`,
          ),
        );
        return sidecarProcess(t, config);
      }),
    );
    const burners = [0, 1].map(() => spawnForTest(t, process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
    const headers = { appkey: bot.appKey, appsecret: bot.appSecret, tr_id: 'FHKST01010100', custtype: 'P', authorization: 'Bearer local' };
    const seconds = tier(6, 15);
    const runs: Array<{ busiest: number; quotaExceeded: number; ok: number }> = [];
    const run = async (killRedisAfterMs?: number) => {
      const before = (await sim.stats()).quotaExceeded;
      const from = Date.now();
      const floods = ports.map((port) => hostileProcess(t, 'flood.js', [`http://127.0.0.1:${port}/main${PRICE}`, JSON.stringify(headers), '10']));
      if (killRedisAfterMs !== undefined) {
        await new Promise((r) => setTimeout(r, killRedisAfterMs));
        await redis.stop();
        await new Promise((r) => setTimeout(r, seconds * 1_000 - killRedisAfterMs));
      } else {
        await new Promise((r) => setTimeout(r, seconds * 1_000));
      }
      const seen = await Promise.all(floods.map((f) => f.stop<{ statuses: Record<string, number> }>()));
      const busiest = await sim.busiestSecond('kis.price', from);
      const quotaExceeded = (await sim.stats()).quotaExceeded - before;
      const ok = seen.reduce((n, s) => n + (s.statuses['200'] ?? 0), 0);
      const detail = JSON.stringify({ busiest, quotaExceeded, seen });
      assert.ok(busiest <= 18, `the broker saw ${busiest} calls in one second: ${detail}`);
      assert.equal(quotaExceeded, 0, `EGW00201 at the broker: ${detail}`);
      assert.ok(ok >= seconds * (killRedisAfterMs === undefined ? 8 : 4), `the shared budget was used: ${detail}`);
      runs.push({ busiest, quotaExceeded, ok });
    };
    for (let i = 0; i < 3; i++) await run();
    for (const replica of replicas) assert.doesNotMatch(replica.log(), /cannot be counted in Redis/, 'no fallback while Redis is up (a start included)');
    await run(Math.round((seconds * 1_000) / 3));
    for (const burner of burners) burner.kill('SIGKILL');
    for (const replica of replicas) {
      replica.child.kill('SIGTERM');
      assert.equal(await exited(replica.child), 0);
      assert.match(replica.log(), /cannot be counted in Redis[^\n]*keeps to 1\/2 of each limit/, 'the fallback is logged');
    }
    const shared = runs.slice(0, 3);
    const killed = runs[3]!;
    hostile(
      `two replicas on one Redis, ten clients each as fast as answered, two CPU-burning processes beside them: three runs of ${seconds} s, then one with Redis killed a third of the way`,
      'one budget in Redis, each slot counted until a second after its answer; Redis gone: a quiet time, then half the limit each',
      `busiest second at the broker ${shared.map((r) => r.busiest).join(', ')} (limit 18), ${shared.reduce((n, r) => n + r.quotaExceeded, 0)} EGW00201, ${shared.map((r) => r.ok).join(', ')} calls answered; Redis killed: busiest ${killed.busiest}, ${killed.quotaExceeded} EGW00201, ${killed.ok} answered`,
    );
  },
);

test('a Kiwoom local token is a real credential: only its own client may revoke it, a revocation outlives a restart, a rotated secret ends it', async (t) => {
  const bot = localClient('bot');
  const other = localClient('other');
  const h = await gatewayHarness(t, [bot, other], { provider: 'kiwoom' });
  const login = async (base: string, client: Client) => String((await post(`${base}/oauth2/token`, tokenRequest(client), { 'api-id': 'au10001' })).body.token);
  const info = async (base: string, token: string) =>
    post(`${base}/api/dostk/stkinfo`, { stk_cd: '005930' }, { 'api-id': 'ka10001', authorization: `Bearer ${token}`, 'cont-yn': 'N', 'next-key': '' });
  const revoke = (base: string, client: Client, token: string) =>
    post(`${base}/oauth2/revoke`, { appkey: client.appKey, secretkey: client.appSecret, token }, { 'api-id': 'au10002' });

  const first = await login(h.base, bot);
  assert.equal((await info(h.base, first)).body.return_code, 0);
  const stolen = await revoke(h.base, other, first);
  assert.equal(stolen.status, 403, "another client's revoke is refused");
  assert.equal((await info(h.base, first)).body.return_code, 0, 'and the token still works');
  assert.equal((await revoke(h.base, bot, first)).status, 200);
  const revoked = await info(h.base, first);
  assert.equal(revoked.status, 401);
  assert.match(String(revoked.body.return_msg), /8005/);
  const second = await login(h.base, bot);

  await h.gateway.close();
  await h.sidecar.close();
  const restarted = await gatewayHarness(t, [bot, other], { reuse: { sim: h.sim, cred: h.cred, dir: h.dir } });
  assert.equal((await info(restarted.base, first)).status, 401, 'revoked before the restart, refused after it');
  assert.equal((await info(restarted.base, second)).body.return_code, 0, 'a token not revoked survives the restart');

  await restarted.gateway.close();
  await restarted.sidecar.close();
  const rotated = { ...bot, appSecret: localClient('x').appSecret };
  const after = await gatewayHarness(t, [rotated, other], { reuse: { sim: h.sim, cred: h.cred, dir: h.dir } });
  const old = await info(after.base, second);
  assert.equal(old.status, 401, "a token made before the client's secret was rotated is refused");
  assert.match(String(old.body.return_msg), /8005/);
  assert.equal((await info(after.base, await login(after.base, rotated))).body.return_code, 0, 'the new secret logs in');
  hostile(
    "Kiwoom local tokens: another client's revoke, a restart after a revoke, a rotated client secret",
    "refused (403); revoked stays revoked (kept in the state directory until the token's expiry); every token of the old secret refused (8005)",
    '3 of 3 refused as they should; tokens not revoked keep working',
  );
});

test('an expired Kiwoom local token is refused with 8005, before anything is sent; the client logs in again, locally', async (t) => {
  const bot = localClient('bot');
  const h = await gatewayHarness(t, [bot], { provider: 'kiwoom' });
  // The gateway of this sidecar, on a clock the test moves: the local token's expiry is the real token's.
  const clock = { offsetMs: 0 };
  const gateway = await startGateway({
    config: h.sidecar.config,
    account: (name) => h.sidecar.gatewayAccount(name),
    budget: h.sidecar.budget,
    bus: h.sidecar.bus,
    logger: h.sidecar.logger,
    now: () => Date.now() + clock.offsetMs,
    maxConnections: 64,
  });
  closeBeforeCleanup(t, () => gateway.close());
  const base = `${gateway.url}/main`;
  const issued = await post(`${base}/oauth2/token`, tokenRequest(bot), { 'api-id': 'au10001' });
  const token = String(issued.body.token);
  const info = () =>
    post(`${base}/api/dostk/stkinfo`, { stk_cd: '005930' }, { 'api-id': 'ka10001', authorization: `Bearer ${token}`, 'cont-yn': 'N', 'next-key': '' });
  assert.equal((await info()).body.return_code, 0);
  const expiresAt = h.sidecar.account('main')!.gatewayToken()!.expiresAt;
  const before = h.simulator.requestLog().length;
  clock.offsetMs = expiresAt - Date.now() + 1_000;
  const expired = await info();
  assert.equal(expired.status, 401);
  assert.match(String(expired.body.return_msg), /8005/);
  assert.equal(h.simulator.requestLog().length, before, 'nothing sent to the broker');
  const again = await post(`${base}/oauth2/token`, tokenRequest(bot), { 'api-id': 'au10001' });
  assert.equal(again.body.return_code, 0, 'a new local token, at no cost at the broker');
  hostile(
    'a Kiwoom local token used after its expiry',
    'refused 8005 before anything is sent; a new local token at once',
    '1 of 1 refused, 0 requests at the broker',
  );
});

test('a KIS bot on kis_auth.py keeps its first local token in memory across two real-token renewals, and every call works', async (t) => {
  if (!tools) return t.skip('python3 with PyYAML, or faketime, not installed');
  const bot = localClient('bot');
  const h = await gatewayHarness(t, [bot], { simulator: { sameTokenWindowMs: 0 } });
  const home = join(tempDir(t), 'home');
  const devlp = parseDocument(readFileSync(join(EXAMPLES, 'gateway', 'kis_devlp.yaml'), 'utf8'));
  devlp.set('my_app', bot.appKey);
  devlp.set('my_sec', bot.appSecret);
  devlp.set('prod', String(devlp.get('prod')).replace('http://127.0.0.1:9465', h.gateway.url));
  mkdirSync(join(home, 'KIS', 'config'), { recursive: true });
  writeFileSync(join(home, 'KIS', 'config', 'kis_devlp.yaml'), devlp.toString(), { mode: 0o600 });
  const issuedBefore = h.simulator.stats().issued;
  const tokens = new Set([h.sidecar.account('main')!.gatewayToken()!.accessToken]);
  const running = runReplica(join(EXAMPLES, 'gateway', 'bot.py'), ['--calls', '40'], {
    tools,
    home,
    timeZone: 'UTC',
    env: { PYTHONPATH: REPLICAS },
    timeoutMs: 120_000,
  });
  for (let i = 0; i < 2; i++) {
    await new Promise((r) => setTimeout(r, 1_300));
    const outcome = await h.sidecar.renew('main', true);
    assert.equal(outcome?.result, 'issued', JSON.stringify(outcome));
    tokens.add(h.sidecar.account('main')!.gatewayToken()!.accessToken);
  }
  const ran = await running;
  const lines = ran.stdout.trim().split('\n');
  assert.equal(ran.status, 0, ran.stderr);
  assert.equal(lines.filter((l) => l === '005930: 71000').length, 40, `every call answered: ${ran.stdout}`);
  assert.equal(tokens.size, 3, 'two renewals during the run');
  assert.equal(h.simulator.stats().issued - issuedBefore, 2);
  hostile(
    'a kis_auth.py bot keeping its first local token in memory while the real token is renewed twice',
    'KIS calls are authenticated by the local key and secret; the bearer is never checked, the current real token always sent',
    '40 of 40 calls answered across 2 renewals',
  );
});

test('/healthz shows a gateway that cannot accept connections', async (t) => {
  const bot = localClient('bot');
  const h = await gatewayHarness(t, [bot]);
  const app = createHttpApp({
    control: h.sidecar,
    metrics: h.sidecar.metrics,
    now: () => Date.now(),
    adminToken: undefined,
    secrets: h.sidecar.secrets,
    bus: h.sidecar.bus,
    gateway: () => gatewayHealthOf(h.gateway),
  });
  const server = await listen(app, '127.0.0.1', 0, 5_000);
  t.after(() => server.close());
  const healthz = async () => {
    const r = await request(`${server.url}/healthz`);
    return { status: r.statusCode, body: (await r.body.json()) as { status: string; gateway?: { listening: boolean; accepting: boolean } } };
  };
  const up = await healthz();
  assert.equal(up.status, 200);
  assert.equal(up.body.gateway?.accepting, true);
  await h.gateway.close();
  const down = await healthz();
  assert.equal(down.status, 503);
  assert.equal(down.body.status, 'gateway_down');
  assert.equal(down.body.gateway?.listening, false);
});

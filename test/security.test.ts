import { newLocalCredentials } from '../src/gateway/clients';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SpawnOptions } from 'node:child_process';
import { readFileSync, readdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../src/core/clock';
import {
  CLI,
  SECOND,
  fakeSlack,
  configText,
  exited,
  freePort,
  markerCredential,
  recordReliability,
  spawnForTest,
  startSimulator,
  tempDir,
  until,
} from './helpers';

/** Starts the CLI (through sh when `shell` is set, to run it first), collecting stdout and stderr together. */
function runCli(t: { after(fn: () => void): void }, args: string[], options: { env?: NodeJS.ProcessEnv; shell?: string } = {}) {
  const spawnOptions: SpawnOptions = { env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] };
  const child = options.shell
    ? spawnForTest(t, 'sh', ['-c', `${options.shell}; exec "${process.execPath}" "${CLI}" ${args.map((a) => `"${a}"`).join(' ')}`], spawnOptions)
    : spawnForTest(t, process.execPath, [CLI, ...args], spawnOptions);
  const out = { text: '' };
  child.stdout!.on('data', (d: Buffer) => (out.text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out.text += d.toString()));
  return { child, out, done: exited(child) };
}

test('no secret in any log line, /metrics, /status, HTTP error, Slack payload, error message or crash output', { timeout: 180_000 }, async (t) => {
  const dir = tempDir(t);
  const cred = markerCredential('kis', 'leak');
  const adminToken = 'MKADMINTOKEN-0123456789abcdef';
  const slack = await fakeSlack(t, '/services/T0MK/B0MK/MKHOOKSECRETVALUE42');
  const webhook = slack.url;
  const slackBodies = slack.delivered;
  const { simulator, url } = await startSimulator(t, [cred], { clock: systemClock as never, spacingMs: SECOND });
  const port = await freePort();
  const gatewayPort = await freePort();
  const bot = newLocalCredentials();
  const gatewayYaml = `gateway:\n  enabled: true\n  port: ${gatewayPort}\n  clients:\n    - { name: bot, accounts: [main], appKey: "${bot.appKey}", appSecret: "${bot.appSecret}" }`;
  const config = join(dir, 'config.yaml');
  writeFileSync(join(dir, 'webhook'), `${webhook}\n`);
  writeFileSync(
    config,
    configText(
      join(dir, 'state'),
      url,
      [
        {
          name: 'main',
          credential: cred,
          extra: 'renewal: { spacing: 1s }\nproof: { interval: 2s }',
          sinks: `- { format: kis-auth, dir: ${join(dir, 'KIS')} }\n- { format: json, path: ${join(dir, 't.json')} }\n- { format: approval-key, path: ${join(dir, 'ws.key')} }`,
        },
      ],
      `slack:\n  webhookUrlFile: ${join(dir, 'webhook')}\n  evaluationInterval: 1s\n  notices: { renewed: true, lifecycle: true }\n  alerts: { sinkUnrepairable: { grace: 1s } }\nlog: { level: debug }`,
    ).replace('server: { enabled: false }', `server: { host: 127.0.0.1, port: ${port}, adminToken: ${adminToken} }\n${gatewayYaml}`),
  );
  const texts: string[] = [];
  const tokens = new Set<string>();
  const collectTokens = () => {
    for (const file of [join(dir, 't.json'), join(dir, 'ws.key')]) {
      try {
        const text = readFileSync(file, 'utf8');
        tokens.add(file.endsWith('.json') ? (JSON.parse(text) as { access_token: string }).access_token : text.trim());
      } catch {
        // not written yet
      }
    }
  };
  const base = `http://127.0.0.1:${port}`;
  const sidecar = runCli(t, ['start', '--config', config]);
  await until('ready', 20_000, async () => (await fetch(`${base}/readyz`)).status === 200);
  collectTokens();

  const get = async (path: string, init?: RequestInit) => {
    const response = await fetch(`${base}${path}`, init);
    texts.push(`${path} ${response.status} ${await response.text()}`);
  };
  for (const path of ['/status', '/metrics', '/readyz', '/healthz', '/nothing']) await get(path);
  await get('/renew/main', { method: 'POST' });
  await get('/renew/main', { method: 'POST', headers: { authorization: `Bearer ${cred.appSecret}` } }); // a secret as a wrong token
  await get('/renew/main', {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ appSecret: cred.appSecret, pad: 'x'.repeat(4000) }),
  });
  // Through the gateway: a local token (its answer is the one place it may appear), calls with the local
  // credentials, with wrong ones, with the real secret sent as a client's, and an order whose body names an account.
  const gateway = `http://127.0.0.1:${gatewayPort}/main`;
  const tokenP = await fetch(`${gateway}/oauth2/tokenP`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'client_credentials', appkey: bot.appKey, appsecret: bot.appSecret }),
  });
  const localToken = ((await tokenP.json()) as { access_token: string }).access_token;
  const viaGateway = async (path: string, headers: Record<string, string>, body?: unknown) => {
    const response = await fetch(`${gateway}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'content-type': 'application/json', tr_id: 'FHKST01010100', custtype: 'P', authorization: `Bearer ${localToken}`, ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    texts.push(`gateway ${path} ${response.status} ${JSON.stringify([...response.headers])} ${await response.text()}`);
  };
  const pricePath = '/uapi/domestic-stock/v1/quotations/inquire-price?FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930';
  await viaGateway(pricePath, { appkey: bot.appKey, appsecret: bot.appSecret });
  await viaGateway(pricePath, { appkey: bot.appKey, appsecret: `${bot.appSecret.slice(0, -1)}x` });
  await viaGateway(pricePath, { appkey: cred.appKey, appsecret: cred.appSecret });
  await viaGateway(
    '/uapi/domestic-stock/v1/trading/order-cash',
    { appkey: bot.appKey, appsecret: bot.appSecret, tr_id: 'TTTC0012U' },
    { CANO: '50012345', ACNT_PRDT_CD: '01', PDNO: '005930', ORD_DVSN: '00', ORD_QTY: '1', ORD_UNPR: '70000' },
  );
  await viaGateway('/oauth2/revokeP', { appkey: bot.appKey }, { appkey: bot.appKey, appsecret: cred.appSecret, token: localToken });
  // A damaged file, repaired; maintenance kills the token, the next proof finds it and it is re-issued.
  unlinkSync(join(dir, 't.json'));
  simulator.maintenance();
  await until('a re-issued token', 20_000, () => simulator.stats().issued >= 2);
  await new Promise((r) => setTimeout(r, 1_500));
  collectTokens();
  // A forced renewal meets a rejected secret: an alert, a failure reason, log lines.
  simulator.injectFault({
    endpoint: 'kis.token',
    kind: 'status',
    status: 403,
    body: { error_description: '유효하지 않은 AppSecret입니다.', error_code: 'EGW00105' },
  });
  await get('/renew/main?force=true', { method: 'POST', headers: { authorization: `Bearer ${adminToken}` } });
  await until('the credentials alert in Slack', 10_000, () => slackBodies().some((b) => b.includes('credentials_rejected')));
  for (const path of ['/status', '/metrics']) await get(path);
  sidecar.child.kill('SIGTERM');
  assert.equal(await sidecar.done, 0);
  texts.push(sidecar.out.text);

  // Error and crash output of the other commands.
  const badSecret = { ...cred, appSecret: `${cred.appSecret.slice(0, 179)}\n${cred.appSecret.slice(179)}` };
  writeFileSync(join(dir, 'bad.yaml'), configText(join(dir, 'state2'), url, [{ name: 'main', credential: badSecret }]));
  const check = runCli(t, ['check-config', '--config', join(dir, 'bad.yaml')]);
  assert.equal(await check.done, 2);
  texts.push(check.out.text);
  const wrong = { ...cred, appSecret: `W${cred.appSecret.slice(1)}` };
  writeFileSync(join(dir, 'wrong.yaml'), configText(join(dir, 'state3'), url, [{ name: 'main', credential: wrong }]));
  const once = runCli(t, ['once', '--config', join(dir, 'wrong.yaml')]);
  assert.equal(await once.done, 1);
  texts.push(once.out.text);

  texts.push(...slackBodies());
  assert.ok(slackBodies().length >= 3, `Slack got ${slackBodies().length} messages`);
  assert.ok(tokens.size >= 3, 'tokens and the approval key were collected to scan for');
  const secrets = [cred.appKey, cred.appSecret, wrong.appSecret, webhook, 'MKHOOKSECRETVALUE42', adminToken, bot.appSecret, localToken, ...tokens];
  const everything = texts.join('\n');
  const leaks = secrets.filter((secret) => everything.includes(secret)).map((s) => `${s.slice(0, 8)}...`);
  recordReliability({
    kind: 'secrets',
    scannedBytes: everything.length,
    logLines: sidecar.out.text.split('\n').length,
    slackMessages: slackBodies().length,
    secretsChecked: secrets.length,
    leaks: leaks.length,
  });
  assert.deepEqual(leaks, []);
});

test('two sidecars started at the same moment on one state directory: exactly one runs, ten times over', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const cred = markerCredential('kis', 'race');
  const { url } = await startSimulator(t, [cred], { clock: systemClock as never, spacingMs: SECOND });
  const config = join(dir, 'config.yaml');
  writeFileSync(config, configText(join(dir, 'state'), url, [{ name: 'main', credential: cred, extra: 'renewal: { spacing: 1s }' }]));
  const outcomes: string[] = [];
  for (let round = 0; round < 10; round++) {
    const a = runCli(t, ['start', '--config', config]);
    const b = runCli(t, ['start', '--config', config]);
    // The deadline only ends a round in which neither exits (both would be running): generous, since a loaded
    // machine can take seconds to start two Node processes.
    const first = await Promise.race([
      a.done.then((c) => ['a', c] as const),
      b.done.then((c) => ['b', c] as const),
      new Promise<['none', null]>((r) => setTimeout(() => r(['none', null]), 20_000).unref()),
    ]);
    assert.equal(first[1], 3, `round ${round}: the loser exits 3 (${a.out.text}${b.out.text})`);
    const survivor = first[0] === 'a' ? b : a;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(survivor.child.exitCode, null, `round ${round}: the winner keeps running`);
    survivor.child.kill('SIGKILL');
    await survivor.done;
    outcomes.push(first[0]);
  }
  recordReliability({ kind: 'lock-race', rounds: 10, oneRunningEachRound: true });
});

test('with umask 000, every file is 0600 and every directory the sidecar creates 0700', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const cred = markerCredential('kis', 'umask');
  const { url } = await startSimulator(t, [cred], { clock: systemClock as never });
  const port = await freePort();
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    configText(
      join(dir, 'state'),
      url,
      [
        {
          name: 'main',
          credential: cred,
          sinks: `- { format: kis-auth, dir: ${join(dir, 'out', 'KIS', 'config')} }\n- { format: json, path: ${join(dir, 'out', 'tokens', 't.json')} }`,
        },
      ],
      `slack: { webhookUrl: "http://127.0.0.1:9/x" }`,
    ).replace('server: { enabled: false }', `server: { host: 127.0.0.1, port: ${port} }`),
  );
  const sidecar = runCli(t, ['start', '--config', config], { shell: 'umask 000' });
  await until('ready', 20_000, async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200);
  await new Promise((r) => setTimeout(r, 500));
  const modes: Record<string, string> = {};
  const walk = (path: string) => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      modes[full.slice(dir.length)] = (statSync(full).mode & 0o777).toString(8);
      if (entry.isDirectory()) walk(full);
    }
  };
  walk(join(dir, 'state'));
  walk(join(dir, 'out'));
  sidecar.child.kill('SIGTERM');
  await sidecar.done;
  for (const [path, mode] of Object.entries(modes)) {
    const isDir = /\/(state|accounts|out|KIS|config|tokens)$/.test(path);
    assert.equal(mode, isDir ? '700' : '600', `${path}: ${mode}`);
  }
  assert.ok(Object.keys(modes).some((p) => p.endsWith('sidecar.lock')) && Object.keys(modes).some((p) => p.endsWith('main.json')));
  recordReliability({ kind: 'modes', umask: '000', checked: Object.keys(modes).length });
});

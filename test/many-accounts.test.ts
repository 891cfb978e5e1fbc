import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../src/core/clock';
import { generateCredential } from '../src/simulator';
import {
  CLI,
  MINUTE,
  T0,
  configText,
  markerCredential,
  parseExposition,
  parseTestConfig,
  recordReliability,
  runAccountUntil,
  startSimulator,
  tempDir,
  testSidecar,
  until,
  freePort,
  spawnForTest,
  type AccountSpec,
  closeBeforeCleanup,
  tier,
} from './helpers';

describe('configuration reload', () => {
  test('accounts added, changed and removed without a restart; untouched accounts keep their state and loops', async (t) => {
    const dir = tempDir(t);
    const creds = ['a', 'b', 'c', 'd'].map((n) => markerCredential('kis', `reload${n}`));
    const { simulator, url, clock } = await startSimulator(t, creds);
    const spec = (name: string, i: number, sink = `${name}.json`): AccountSpec => ({
      name,
      credential: creds[i]!,
      sinks: `- { format: json, path: ${join(dir, sink)} }`,
    });
    const first = parseTestConfig(configText(join(dir, 'state'), url, [spec('a', 0), spec('b', 1), spec('c', 2)]), dir);
    const sidecar = testSidecar(first, clock);
    await sidecar.open();
    closeBeforeCleanup(t, () => sidecar.close());
    for (const name of ['a', 'b', 'c']) await runAccountUntil(sidecar, name, clock, T0 + MINUTE);
    const lifecycleA = sidecar.account('a');
    const tokenB = sidecar.account('b')!.snapshot().state.token!.accessToken;

    const next = parseTestConfig(configText(join(dir, 'state'), url, [spec('a', 0), spec('b', 1, 'b-moved.json'), spec('d', 3)]), dir);
    const summary = await sidecar.reload(next);
    assert.deepEqual(summary, { added: ['d'], removed: ['c'], changed: ['b'], unchanged: 1, needsRestart: [] });
    assert.equal(sidecar.account('a'), lifecycleA, 'an untouched account is the same object, loops and all');
    assert.equal(sidecar.account('c'), undefined);
    for (const name of ['a', 'b', 'd']) await runAccountUntil(sidecar, name, clock, T0 + 2 * MINUTE);
    await sidecar.sinks.idle();
    // b restarted from its stored state: the same token, now in its new file, and no issuance for it.
    assert.equal((JSON.parse(readFileSync(join(dir, 'b-moved.json'), 'utf8')) as { access_token: string }).access_token, tokenB);
    assert.equal(simulator.stats(creds[1]!.appKey).issued, 1);
    assert.equal(simulator.stats(creds[3]!.appKey).issued, 1);
    assert.equal(simulator.stats().issued, 4);
    const metrics = (await sidecar.metrics.render(false)).body;
    assert.ok(!/account="c"/.test(metrics), "the removed account's series are gone");
    assert.ok(/broker_token_usable\{account="d"/.test(metrics));
    // A change of a setting that needs a restart is named, and left as it was.
    const portChange = { ...next, server: { ...next.server, port: 1234 } };
    assert.deepEqual((await sidecar.reload(portChange)).needsRestart, ['server']);
    assert.notEqual(sidecar.config.server.port, 1234);
  });

  test('the running sidecar: a bad config file is refused and reported, a good one applied, by file change and SIGHUP', { timeout: 60_000 }, async (t) => {
    const dir = tempDir(t);
    const creds = [markerCredential('kis', 'live1'), markerCredential('kis', 'live2')];
    const { simulator, url } = await startSimulator(t, creds, { clock: systemClock as never });
    const port = await freePort();
    const write = (accounts: AccountSpec[], extra = '') =>
      writeFileSync(
        join(dir, 'config.yaml'),
        configText(join(dir, 'state'), url, accounts).replace('server: { enabled: false }', `server: { host: 127.0.0.1, port: ${port} }`) + extra,
      );
    const one: AccountSpec = { name: 'one', credential: creds[0]!, sinks: `- { format: json, path: ${join(dir, 'one.json')} }` };
    const two: AccountSpec = { name: 'two', credential: creds[1]!, sinks: `- { format: json, path: ${join(dir, 'two.json')} }` };
    write([one]);
    const child = spawnForTest(t, process.execPath, [CLI, 'start', '--config', join(dir, 'config.yaml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const base = `http://127.0.0.1:${port}`;
    await until(
      () => `ready (exit ${String(child.exitCode)}; the sidecar's log: ${log.slice(-800)})`,
      20_000,
      async () => (await fetch(`${base}/readyz`)).status === 200,
    );
    const metric = async (name: string, labels = '') =>
      parseExposition(await (await fetch(`${base}/metrics`)).text()).find(
        (s) =>
          s.name === name &&
          (labels === '' ||
            Object.entries(s.labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(',')
              .includes(labels)),
      )?.value;

    // A bad file: kept out, reported; the running account keeps being served.
    writeFileSync(join(dir, 'config.yaml'), `${readFileSync(join(dir, 'config.yaml'), 'utf8')}bogus: true\n`);
    await until('the failed reload', 10_000, () => log.includes('configuration reload failed'));
    assert.match(log, /"problems":\["bogus: unknown key"\]/);
    assert.equal(await metric('broker_token_config_last_reload_successful'), 0);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);

    // A good file with a second account: applied on the file change.
    write([one, two]);
    await until('the second account', 15_000, async () => {
      const body = (await (await fetch(`${base}/readyz`)).json()) as { ready: boolean; accounts: Array<{ account: string }> };
      return body.ready && body.accounts.length === 2;
    });
    assert.equal(await metric('broker_token_config_last_reload_successful'), 1);
    assert.equal(simulator.stats().issued, 2);
    // SIGHUP does the same: back to one account.
    write([one]);
    await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGHUP');
    await until('the removal', 10_000, async () => ((await (await fetch(`${base}/readyz`)).json()) as { accounts: unknown[] }).accounts.length === 1);
    assert.equal(child.exitCode, null, 'SIGHUP does not stop the sidecar');
    assert.equal(simulator.stats().issued, 2, 'no issuance for the account that stayed');
    assert.ok((await metric('broker_token_config_reloads_total', 'result=applied'))! >= 2);
  });
});

/** Accounts in one sidecar: 250 in npm test, 1,000 in npm run reliability (BTS_LONG=1). */
const MANY = tier(250, 1000);

test(
  `${MANY.toLocaleString('en')} accounts with distinct app keys: all ready, one issuance per app key, requests bounded in concurrency`,
  { timeout: 300_000 },
  async (t) => {
    const dir = tempDir(t);
    const count = MANY;
    const creds = Array.from({ length: count }, (_, i) => generateCredential('kis', `many-${i}`, 'real'));
    const { simulator, url } = await startSimulator(t, creds, { clock: systemClock as never });
    // Every token request is held 20 ms at the broker, and the requests open at once are counted.
    simulator.injectFault({ endpoint: 'kis.token', kind: 'delay', delayMs: 20, count: count });
    let inFlight = 0;
    let maxInFlight = 0;
    simulator.httpServer!.on('request', (req, res) => {
      if (!req.url?.startsWith('/oauth2/tokenP')) return;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      res.on('close', () => inFlight--);
    });
    const port = await freePort();
    const accounts = creds.map((credential, i) => ({
      name: `acct-${String(i).padStart(4, '0')}`,
      credential,
      sinks: `- { format: json, path: "${join(dir, 'tokens', '{account}.json')}" }`,
    }));
    writeFileSync(
      join(dir, 'config.yaml'),
      configText(join(dir, 'state'), url, accounts).replace(
        'server: { enabled: false }',
        `server: { host: 127.0.0.1, port: ${port} }\nlimits: { maxConcurrentRequests: 8 }`,
      ),
    );
    const started = Date.now();
    const child = spawnForTest(t, process.execPath, [CLI, 'start', '--config', join(dir, 'config.yaml')], { stdio: 'ignore' });
    await until(`all ${count.toLocaleString('en')} accounts ready`, 240_000, async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200);
    const readyMs = Date.now() - started;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    const stats = simulator.stats();
    recordReliability({ kind: 'many-accounts', accounts: count, readyMs, issued: stats.issued, maxInFlight });
    assert.equal(stats.issued, count);
    assert.equal(stats.tokenRequests, count);
    assert.equal(stats.rateLimited, 0);
    assert.ok(maxInFlight <= 8, `${maxInFlight} token requests in flight at once`);
    assert.ok(maxInFlight >= 2, 'requests did run side by side');
    // Ready well within the time the README states for a 2-core machine (60 s).
    assert.ok(readyMs < 60_000, `ready after ${readyMs} ms`);
  },
);

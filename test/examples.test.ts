import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument, type YAMLMap, type YAMLSeq } from 'yaml';
import { systemClock } from '../src/core/clock';
import { parseConfig } from '../src/config/load';
import { Sidecar } from '../src/sidecar';
import { tokenId } from '../src/store/state';
import { generateCredential, type SimulatorCredential } from '../src/simulator';
import { sha256 } from '../src/core/wire';
import { startSidecarGateway } from '../src/cli/boot';
import { newLocalCredentials } from '../src/gateway/clients';
import { LogCapture, SECOND, spawnForTest, startSimulator, tempDir, until, closeBeforeCleanup } from './helpers';
import { REPLICAS, replicaTools, runReplica, writeKisDevlp, type ReplicaOutcome } from './replicas';

/**
 * The examples under examples/, run as a user would run them: the example's own sidecar.yaml (only the broker host,
 * the state folder and the shared folder moved into the test's directory) and the example's program, with the
 * replicas in test/replicas standing in for kis_auth.py and python-kis (the real ones need packages from PyPI).
 */

const EXAMPLES = join(__dirname, '..', '..', 'examples');
const tools = replicaTools();

interface ExampleSetup {
  dir: string;
  sidecar: Sidecar;
  simulator: import('../src/simulator').BrokerSimulator;
  url: string;
  tokenIdOf: (account: string) => string;
}

/**
 * The example's sidecar.yaml against the simulator: its absolute shared folders (/shared, /srv/bot) moved under the
 * test's directory, its ./secrets files written there, and a 1 s spacing so that a test can renew at once.
 */
async function runExampleSidecar(t: any, example: string, credential: SimulatorCredential, env: Record<string, string> = {}): Promise<ExampleSetup> {
  const dir = tempDir(t);
  const { simulator, url } = await startSimulator(t, [credential], { clock: systemClock as never, spacingMs: SECOND, sameTokenWindowMs: 0 });
  const text = readFileSync(join(EXAMPLES, example, 'sidecar.yaml'), 'utf8').replace(/(?<=[\s"])\/(shared|srv\/bot)\//g, `${dir}/$1/`);
  const doc = parseDocument(text);
  const accounts = doc.get('accounts') as YAMLSeq<YAMLMap>;
  for (const account of accounts.items) {
    account.set('baseUrl', url);
    account.set('renewal', doc.createNode({ spacing: '1s' }));
  }
  // The gateway on a port of the system's choosing (startGateway reports it).
  if (doc.has('gateway')) doc.setIn(['gateway', 'port'], 0);
  mkdirSync(join(dir, 'secrets'), { mode: 0o700 });
  writeFileSync(join(dir, 'secrets', credential.provider === 'kis' ? 'kis_app_secret' : 'kiwoom_secret_key'), `${credential.appSecret}\n`, { mode: 0o600 });
  const configText = doc.toString();
  writeFileSync(join(dir, 'sidecar.yaml'), configText);
  const keyVariable = credential.provider === 'kis' ? 'KIS_APP_KEY' : 'KIWOOM_APP_KEY';
  const config = parseConfig(configText, join(dir, 'sidecar.yaml'), dir, { env: { [keyVariable]: credential.appKey, ...env } });
  const sidecar = new Sidecar(config, { clock: systemClock, watch: true, logger: new LogCapture().logger });
  await sidecar.open();
  sidecar.run();
  closeBeforeCleanup(t, () => sidecar.close());
  await until("the example's token files", 10_000, () => sidecar.views().every((v) => v.ready), 20);
  const tokenIdOf = (account: string) => tokenId(sidecar.views().find((v) => v.snapshot.ref.name === account)!.snapshot.state.token!.accessToken);
  return { dir, sidecar, simulator, url, tokenIdOf };
}

describe('examples/: each example works as its README says', () => {
  test('gateway: a bot on kis_auth.py and one on python-kis, each with local credentials only, call through the gateway and issue nothing', async (t) => {
    if (!tools) return t.skip('python3 with PyYAML, or faketime, not installed');
    const credential = generateCredential('kis', 'example-gateway');
    const local = newLocalCredentials();
    const home = join(tempDir(t), 'home');
    const { sidecar, simulator } = await runExampleSidecar(t, 'gateway', credential, {
      BOT_LOCAL_APP_KEY: local.appKey,
      BOT_LOCAL_SECRET_SHA256: sha256(local.appSecret).toString('hex'),
    });
    await until("the sidecar's token", 10_000, () => sidecar.account('main')!.gatewayToken() !== undefined, 20);
    const gateway = await startSidecarGateway(sidecar, 256);
    closeBeforeCleanup(t, () => gateway.close());

    // The example's kis_devlp.yaml with the values `gateway add-client` gave, in the bot's ~/KIS/config.
    const devlp = parseDocument(readFileSync(join(EXAMPLES, 'gateway', 'kis_devlp.yaml'), 'utf8'));
    devlp.set('my_app', local.appKey);
    devlp.set('my_sec', local.appSecret);
    devlp.set('prod', String(devlp.get('prod')).replace('http://127.0.0.1:9465', gateway.url));
    mkdirSync(join(home, 'KIS', 'config'), { recursive: true });
    writeFileSync(join(home, 'KIS', 'config', 'kis_devlp.yaml'), devlp.toString(), { mode: 0o600 });
    const bot = await runReplica(join(EXAMPLES, 'gateway', 'bot.py'), [], { tools, home, timeZone: 'UTC', env: { PYTHONPATH: REPLICAS } });
    assert.equal(printed(bot), ['005930: 71000', '005930: 71000', '005930: 71000', 'approval key: yes'].join('\n'));

    const pykis = await runReplica(join(EXAMPLES, 'gateway', 'pykis_bot.py'), ['--id', 'trader01'], {
      tools,
      home,
      timeZone: 'UTC',
      env: { PYTHONPATH: REPLICAS, BOT_LOCAL_APP_KEY: local.appKey, BOT_LOCAL_APP_SECRET: local.appSecret, KIS_GATEWAY: gateway.url },
    });
    assert.match(printed(pykis), /^python-kis: token \w{8} of \d+ characters$/);
    const stats = simulator.stats();
    assert.equal(stats.tokenRequests, 1, "the sidecar's one issuance: neither bot asked the broker for a token");
    assert.equal(stats.approvals, 1, "the sidecar's approval key, handed to the bot");
    assert.equal(stats.proofsOk, 4, "the sidecar's proof and the bot's three calls");
    const devlpText = readFileSync(join(home, 'KIS', 'config', 'kis_devlp.yaml'), 'utf8');
    assert.ok(!devlpText.includes(credential.appSecret) && !devlpText.includes(credential.appKey), "no real credential on the bot's side");
  });

  test("kis-auth: a long-running bot on kis_auth.py reads the sidecar's token, and after a renewal the notify signal makes it read the new one", async (t) => {
    if (!tools) return t.skip('python3 with PyYAML, or faketime, not installed');
    const credential = generateCredential('kis', 'example-kis-auth');
    const home = join(tempDir(t), 'home');
    const { dir, sidecar, simulator, url, tokenIdOf } = await runExampleSidecar(t, 'kis-auth', credential, { HOME: home });
    writeKisDevlp(home, credential, url);
    const bot = spawnForTest(t, tools.python, [join(EXAMPLES, 'kis-auth', 'bot.py'), '--pid-file', join(dir, 'bot.pid')], {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: home, TZ: 'UTC', PYTHONPATH: REPLICAS, PYTHONDONTWRITEBYTECODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    bot.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    bot.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const authLines = () => [...out.matchAll(/^auth: token (\w+) from (\S+)$/gm)].map((m) => m[1]!);
    await until(
      () => `the bot's first auth (${out})`,
      10_000,
      () => authLines().length === 1,
      20,
    );
    assert.equal(authLines()[0], tokenIdOf('main'));
    await new Promise((r) => setTimeout(r, 1100)); // the 1 s spacing since the first issuance
    const renewal = await sidecar.renew('main', true);
    assert.equal(renewal?.result, 'issued');
    await until(
      () => `the bot's second auth (${out})`,
      10_000,
      () => authLines().length === 2,
      20,
    );
    assert.equal(authLines()[1], tokenIdOf('main'), 'the bot took the new token');
    assert.notEqual(authLines()[1], authLines()[0]);
    assert.equal(simulator.stats().tokenRequests, 2, "the sidecar's two issuances, none from the bot");
  });

  test("python-kis: PyKis(keep_token=DIR) starts with the sidecar's token and issues none", async (t) => {
    if (!tools) return t.skip('python3 with PyYAML, or faketime, not installed');
    const credential = generateCredential('kis', 'example-pykis');
    const { dir, simulator, url, tokenIdOf } = await runExampleSidecar(t, 'python-kis', credential, { KIS_HTS_ID: 'trader01' });
    const run = await runReplica(join(EXAMPLES, 'python-kis', 'bot.py'), ['--id', 'trader01', '--keep-token', join(dir, 'shared', 'pykis')], {
      tools,
      home: dir,
      timeZone: 'UTC',
      env: { PYTHONPATH: REPLICAS, KIS_APP_KEY: credential.appKey, KIS_APP_SECRET: credential.appSecret, PYKIS_REPLICA_REAL_DOMAIN: url },
    });
    assert.equal(printed(run), `python-kis: token ${tokenIdOf('main')}`);
    assert.equal(simulator.stats().tokenRequests, 1);
  });

  test('json: read_token.py reads both JSON layouts as instants, on a UTC clock and a KST one', async (t) => {
    if (!tools) return t.skip('python3 with PyYAML, or faketime, not installed');
    const credential = generateCredential('kis', 'example-json');
    const { dir, simulator, tokenIdOf } = await runExampleSidecar(t, 'json', credential);
    for (const file of [
      join(dir, 'shared', 'KIS', 'tokens', `token_${credential.appKey.slice(0, 10)}_real.json`),
      join(dir, 'shared', 'data', '.kis_token_cache.json'),
    ]) {
      for (const timeZone of ['UTC', 'Asia/Seoul']) {
        const run = await runReplica(join(EXAMPLES, 'json', 'read_token.py'), [file], { tools, home: dir, timeZone });
        assert.equal(printed(run), `token ${tokenIdOf('main')}`, `${file} on ${timeZone}`);
      }
    }
    assert.equal(simulator.stats().tokenRequests, 1);
  });

  test("kiwoom: the token provider takes the sidecar's token, and the new one after a renewal", async (t) => {
    if (!tools) return t.skip('python3 with PyYAML, or faketime, not installed');
    const credential = generateCredential('kiwoom', 'example-kiwoom');
    const { dir, sidecar, simulator, tokenIdOf } = await runExampleSidecar(t, 'kiwoom', credential);
    const file = join(dir, 'srv/bot', 'data', '.token');
    const read = async () => printed(await runReplica(join(EXAMPLES, 'kiwoom', 'token_provider.py'), [file], { tools, home: dir, timeZone: 'UTC' }));
    assert.equal(await read(), `kiwoom: token ${tokenIdOf('kiwoom')}`);
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await sidecar.renew('kiwoom', true))?.result, 'issued');
    await sidecar.sinks.idle();
    assert.equal(await read(), `kiwoom: token ${tokenIdOf('kiwoom')}`);
    assert.equal(simulator.stats().tokenRequests, 2);
  });
});

/** What an example printed, once it exited 0. */
function printed(run: ReplicaOutcome): string {
  assert.equal(run.status, 0, run.stderr);
  return run.stdout.trim();
}

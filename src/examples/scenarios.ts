/**
 * What each example shows, step by step, and what must hold for the run to pass: the bot gets the sidecar's
 * token, and the broker sees no token request from it.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parse as parseYaml, parseDocument } from 'yaml';
import { addGatewayClient } from '../cli/gateway-client';
import { startSidecarGateway, startSidecarRealtime } from '../wiring';
import type { Sidecar } from '../sidecar';
import { generateCredential, type SimulatorCredential } from '../simulator';
import { sinkPaths } from '../sinks/formats';
import { tokenId } from '../store/account-state';
import { writeKisDevlp } from './kis-devlp';
import { EXAMPLES, ExampleFailure, REPLICAS, REPOSITORY, runBot, say, startBot, startSidecar, waitUntil, type Workspace } from './workspace';

interface Scenario {
  credential: () => SimulatorCredential;
  run: (ws: Workspace, python: string, credential: SimulatorCredential) => Promise<void>;
}

function expect(condition: boolean, what: string): void {
  if (!condition) throw new ExampleFailure(what);
}

function currentTokenId(sidecar: Sidecar, account: string): string {
  const token = sidecar.views().find((v) => v.snapshot.ref.name === account)?.snapshot.state.token;
  if (!token) throw new ExampleFailure(`the sidecar has no token for ${account}`);
  return tokenId(token.accessToken);
}

/** The broker's count at the end: every token request came from the sidecar. */
function brokerSaw(ws: Workspace, issuedBySidecar: number): void {
  const stats = ws.simulator.stats();
  say(`the broker saw ${stats.tokenRequests} token request(s), all from the sidecar; the bot asked for none`);
  expect(stats.tokenRequests === issuedBySidecar, `expected ${issuedBySidecar} token request(s) at the broker, saw ${stats.tokenRequests}`);
}

/** The official kis_auth.py when the user put it beside the example's bot, else the replica (which says so). */
function kisAuthModule(example: string): Record<string, string> {
  const official = join(EXAMPLES, example, 'kis_auth.py');
  if (existsSync(official)) {
    say(`using the official kis_auth.py found at ${relative(REPOSITORY, official)}`);
    return {};
  }
  say(`kis_auth.py is not installed beside the bot (copy the official one to examples/${example}/ to use it): using its replica, test/replicas/kis_auth.py`);
  return { PYTHONPATH: REPLICAS };
}

/** python-kis when it is installed, else its replica (which says so). */
function pythonKisModule(python: string): Record<string, string> {
  if (spawnSync(python, ['-c', 'import pykis'], { encoding: 'utf8', env: { PATH: process.env.PATH } }).status === 0) {
    say('using python-kis as installed');
    return {};
  }
  say('python-kis is not installed (pip install python-kis to use it): using its replica, test/replicas/pykis');
  return { PYTHONPATH: REPLICAS };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A forced renewal once the simulator's 1 s spacing since the first issuance has passed. */
async function renewNow(sidecar: Sidecar, account: string): Promise<string> {
  await sleep(1_100);
  const outcome = await sidecar.renew(account, true);
  expect(outcome?.result === 'issued', `the renewal of ${account} did not issue a token (${outcome?.result ?? 'no outcome'})`);
  await sidecar.sinks.idle();
  const id = currentTokenId(sidecar, account);
  say(`renewed ${account}: token ${id}, written to every file`);
  return id;
}

const kisAuth: Scenario = {
  credential: () => generateCredential('kis', 'example-kis-auth'),
  async run(ws, python, credential) {
    // The user's own kis_devlp.yaml, which kis_auth.py reads from the token folder: here with the simulator's key.
    writeKisDevlp(ws.home, credential, ws.simulatorUrl);
    const sidecar = await startSidecar(ws);
    const first = currentTokenId(sidecar, 'main');
    const module = kisAuthModule('kis-auth');
    say('starting bot.py on a UTC clock, as in a container (it names its file by the UTC date): python3 bot.py --pid-file ./bot.pid');
    const bot = startBot(ws, python, join(EXAMPLES, 'kis-auth', 'bot.py'), ['--pid-file', './bot.pid'], { TZ: 'UTC', ...module });
    const auths = () => [...bot.output().matchAll(/^auth: token (\w+) from /gm)].map((m) => m[1]!);
    await waitUntil("the bot's first auth()", () => auths().length >= 1 || bot.child.exitCode !== null);
    expect(auths()[0] === first, `the bot read token ${auths()[0] ?? 'none'}, the sidecar holds ${first}`);
    say(`the bot read the sidecar's token ${first}`);
    const second = await renewNow(sidecar, 'main');
    say('notify sent SIGHUP to the bot (pidFile ./bot.pid); it calls ka.auth() again');
    await waitUntil("the bot's second auth()", () => auths().length >= 2 || bot.child.exitCode !== null);
    expect(auths()[1] === second, `after the renewal the bot read ${auths()[1] ?? 'nothing'}, the sidecar holds ${second}`);
    say(`the bot took the new token ${second}`);
    brokerSaw(ws, 2);
  },
};

const pythonKis: Scenario = {
  credential: () => generateCredential('kis', 'example-python-kis'),
  async run(ws, python, credential) {
    const sidecar = await startSidecar(ws);
    const id = currentTokenId(sidecar, 'main');
    const dir = sidecar.config.accounts[0]!.sinks.find((s) => s.format === 'python-kis');
    if (dir?.format !== 'python-kis') throw new ExampleFailure('the example has no python-kis sink');
    const module = pythonKisModule(python);
    const lines = await runBot(ws, python, join(EXAMPLES, 'python-kis', 'bot.py'), ['--id', 'trader01', '--keep-token', dir.dir], {
      KIS_APP_SECRET: credential.appSecret,
      KIS_BASE_URL: ws.simulatorUrl,
      ...module,
    });
    expect(lines.includes(`python-kis: token ${id}`), `PyKis did not start with the sidecar's token ${id}`);
    expect(
      lines.some((l) => l.startsWith('005930: 71000')),
      "python-kis's quote did not come back",
    );
    say(`PyKis(keep_token=...) started with the sidecar's token ${id} and quoted 005930 with it`);
    brokerSaw(ws, 1);
  },
};

const json: Scenario = {
  credential: () => generateCredential('kis', 'example-json'),
  async run(ws, python) {
    const sidecar = await startSidecar(ws);
    const id = currentTokenId(sidecar, 'main');
    for (const sink of sidecar.config.accounts[0]!.sinks) {
      for (const path of sinkPaths(sink, Date.now())) {
        for (const zone of ['UTC', 'Asia/Seoul']) {
          say(`read_token.py ${relative(ws.dir, path)} on ${zone}`);
          const lines = await runBot(ws, python, join(EXAMPLES, 'json', 'read_token.py'), [path], { TZ: zone });
          expect(lines.includes(`token ${id}`), `read_token.py did not read the sidecar's token ${id} from ${path} on ${zone}`);
        }
      }
    }
    say(`both layouts read as the sidecar's token ${id}, on a UTC clock and a KST one`);
    brokerSaw(ws, 1);
  },
};

const kiwoom: Scenario = {
  credential: () => generateCredential('kiwoom', 'example-kiwoom'),
  async run(ws, python) {
    const sidecar = await startSidecar(ws);
    const sink = sidecar.config.accounts[0]!.sinks[0]!;
    const file = sink.format === 'json' ? sink.path : '';
    const read = async () => runBot(ws, python, join(EXAMPLES, 'kiwoom', 'token_provider.py'), [file], { TZ: 'UTC' });
    const first = currentTokenId(sidecar, 'kiwoom');
    expect((await read()).includes(`kiwoom: token ${first}`), `the provider did not take the sidecar's token ${first}`);
    const second = await renewNow(sidecar, 'kiwoom');
    expect((await read()).includes(`kiwoom: token ${second}`), `after the renewal the provider did not take ${second}`);
    say('the provider took the new token from the file, with no request of its own');
    brokerSaw(ws, 2);
  },
};

const gateway: Scenario = {
  credential: () => generateCredential('kis', 'example-gateway'),
  async run(ws, python) {
    // Step 1 of the example's README: the client, before the config is complete (KIS_APP_KEY is not even set here).
    say('broker-token-sidecar gateway add-client --config sidecar.yaml --name bot --account main --dir ./bot');
    const printed = await addGatewayClient(ws.configPath, 'bot', ['main'], join(ws.dir, 'bot'), { PATH: process.env.PATH });
    for (const line of printed.trim().split('\n')) say(`  | ${line.replaceAll(ws.dir, '.')}`);
    const local = parseYaml(readFileSync(join(ws.dir, 'bot', 'bot.gateway.yaml'), 'utf8')) as { appkey: string; appsecret: string };
    const sidecar = await startSidecar(ws);
    const running = await startSidecarGateway(sidecar, 256);
    ws.cleanup.unshift(() => running.close());
    say(`gateway on ${running.url}`);
    // The bot's kis_devlp.yaml: the example's, with the local credentials and the gateway's URL for the account.
    const devlp = parseDocument(readFileSync(join(EXAMPLES, 'gateway', 'kis_devlp.yaml'), 'utf8'));
    devlp.set('my_app', local.appkey);
    devlp.set('my_sec', local.appsecret);
    devlp.set('prod', `${running.url}/main`);
    mkdirSync(join(ws.home, 'KIS', 'config'), { recursive: true, mode: 0o700 });
    writeFileSync(join(ws.home, 'KIS', 'config', 'kis_devlp.yaml'), devlp.toString(), { mode: 0o600 });
    const bot = await runBot(ws, python, join(EXAMPLES, 'gateway', 'bot.py'), [], { TZ: 'UTC', ...kisAuthModule('gateway') });
    expect(
      bot.filter((l) => l === '005930: 71000').length === 3 && bot.includes('approval key: yes'),
      'bot.py did not get its three prices and the approval key',
    );
    const pykis = await runBot(ws, python, join(EXAMPLES, 'gateway', 'pykis_bot.py'), ['--id', 'trader01'], {
      BOT_LOCAL_APP_KEY: local.appkey,
      BOT_LOCAL_APP_SECRET: local.appsecret,
      KIS_GATEWAY: running.url,
      ...pythonKisModule(python),
    });
    expect(
      pykis.some((l) => /^python-kis: token \w{8} of \d+ characters$/.test(l)),
      'pykis_bot.py did not get a local token',
    );
    say('both bots called through the gateway with local credentials only; their token requests were answered locally');
    brokerSaw(ws, 1);
  },
};

const realtime: Scenario = {
  credential: () => generateCredential('kis', 'example-realtime'),
  async run(ws, python, credential) {
    say('broker-token-sidecar gateway add-client --config sidecar.yaml --name bot --account main --dir ./bot');
    await addGatewayClient(ws.configPath, 'bot', ['main'], join(ws.dir, 'bot'), { PATH: process.env.PATH });
    const local = parseYaml(readFileSync(join(ws.dir, 'bot', 'bot.gateway.yaml'), 'utf8')) as { appkey: string; appsecret: string };
    const sidecar = await startSidecar(ws);
    const gateway = await startSidecarGateway(sidecar, 256);
    ws.cleanup.unshift(() => gateway.close());
    const endpoint = await startSidecarRealtime(sidecar, gateway.credentials);
    ws.cleanup.unshift(() => endpoint.close());
    say(`gateway on ${gateway.url}, real-time endpoint on ${endpoint.url}`);
    const devlp = parseDocument(readFileSync(join(EXAMPLES, 'realtime', 'kis_devlp.yaml'), 'utf8'));
    devlp.set('my_app', local.appkey);
    devlp.set('my_sec', local.appsecret);
    devlp.set('my_htsid', 'trader01');
    devlp.set('prod', `${gateway.url}/main`);
    devlp.set('ops', `${endpoint.url}/main`);
    mkdirSync(join(ws.home, 'KIS', 'config'), { recursive: true, mode: 0o700 });
    writeFileSync(join(ws.home, 'KIS', 'config', 'kis_devlp.yaml'), devlp.toString(), { mode: 0o600 });
    const module = kisAuthModule('realtime');
    // Two programs on the one app key: at the broker the second would get OPSP8996; through the sidecar both subscribe.
    say('starting bot.py twice on the same app key: python3 bot.py --rows 4');
    const bots = [0, 1].map(() => startBot(ws, python, join(EXAMPLES, 'realtime', 'bot.py'), ['--rows', '4'], { TZ: 'UTC', ...module }));
    const prices = (bot: (typeof bots)[number]) => bot.lines.filter((l) => /^\d{6}: price \d+ volume \d+$/.test(l)).length;
    await waitUntil('prices at both bots', () => bots.every((bot) => prices(bot) >= 2 || bot.child.exitCode !== null));
    expect(
      bots.every((bot) => prices(bot) >= 2),
      'a bot got no prices',
    );
    const stats = ws.simulator.realtime.stats(credential.appKey);
    expect(stats.sessions === 1 && stats.peakConcurrentSessions === 1, `the broker saw ${stats.sessions} sessions for the key`);
    expect(stats.refusals['OPSP8996'] === undefined, 'the broker refused a second session');
    say(`the broker saw one session and ${stats.registrations} registrations for two programs' three each`);
    ws.simulator.realtime.fill('trader01');
    await waitUntil('the fill notice at both bots', () => bots.every((bot) => bot.lines.some((l) => l.startsWith('fill: order '))));
    say('both bots decrypted the fill notice with the key and iv the endpoint gave them');
    await waitUntil('both bots done', () => bots.every((bot) => bot.lines.includes('done')));
    brokerSaw(ws, 1);
  },
};

export const SCENARIOS: Record<string, Scenario> = {
  'kis-auth': kisAuth,
  'python-kis': pythonKis,
  json,
  kiwoom,
  gateway,
  realtime,
};

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, relative, resolve } from 'node:path';
import { parseConfig } from '../config/load';
import { runSimulatorServer, generateCredential, type SimulatorCredential } from '../simulator';
import { clockFromEnvironment } from '../core/clock';
import { sinkPaths } from '../sinks/formats';
import { StateDirectoryLock } from '../store/lock';
import { sha256 } from '../core/wire';
import { newLocalCredentials } from '../gateway/clients';
import { CliError, EXIT, StopSignal, serve } from './boot';
import { demonstrateRealtime } from './demo-realtime';

/** Marks a folder the demo made, and so may empty: nothing else is ever deleted. */
const DEMO_MARKER = '.broker-token-sidecar-demo';
const DEMO_HOST = '127.0.0.1';

/**
 * Everything that could make the demo fail is checked before anything on disk is touched: the folder is absent,
 * empty or a demo's own; no demo runs in it now; the port is free. A second `npm run demo` beside a running one
 * then stops here and leaves the first one alone.
 */
async function checkBeforeTouching(dir: string, port: number): Promise<void> {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new CliError(`--dir ${dir} exists and is not a folder`, EXIT.config);
    const entries = readdirSync(dir);
    if (entries.length > 0 && !entries.includes(DEMO_MARKER)) {
      throw new CliError(`--dir ${dir} is not empty and was not made by the demo: nothing in it is deleted; choose an empty or new folder`, EXIT.config);
    }
    const holder = await StateDirectoryLock.holder(join(dir, 'state'));
    if (holder) throw new CliError(`a demo is already running in ${dir} (${holder}); stop it first, or give this one another --dir and --port`, EXIT.startup);
  }
  if (port !== 0 && !(await portIsFree(port))) {
    throw new CliError(`port ${port} on ${DEMO_HOST} is in use (another demo or sidecar?); --port 0 takes any free one`, EXIT.startup);
  }
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, DEMO_HOST, () => probe.close(() => resolve(true)));
  });
}

/**
 * The demo: the broker simulator on loopback and the sidecar against it, on an embedded config that is the
 * same format as a real one (written out beside the files, so it can be read and copied). No credentials,
 * no KakaoTalk notices.
 */
/** The demo's config, written out as a real one would be; only the credentials are the simulator's made-up ones. */
function demoConfig(values: {
  port: number;
  simulatorUrl: string;
  kis: SimulatorCredential;
  kiwoom: SimulatorCredential;
  shownPath: string;
  adminToken: string;
  bot: { appKey: string; appSecretSha256: string };
}): string {
  return `# The demo's configuration, in the same format as a real one (see the README's configuration reference).
# The credentials below are made up, accepted only by the simulator; in a real config take them from the
# environment or from files, e.g.  appKey: \${KIS_APP_KEY}  and  appSecretFile: /run/secrets/kis_app_secret
# Try:  npx broker-token-sidecar status --config ${values.shownPath}
stateDir: ./state
log: { level: info, format: pretty }
server:
  host: 127.0.0.1
  port: ${values.port}
  adminToken: "${values.adminToken}"   # made for this demo; POST /renew/<account> with it as the bearer token
gateway:      # bots call the broker through the sidecar with local credentials (README, Gateway)
  enabled: true
  port: 0     # any free port: the demo prints it
  clients:
    - { name: demo-bot, accounts: [kis-demo], appKey: "${values.bot.appKey}", appSecretSha256: "${values.bot.appSecretSha256}" }
realtime:     # one WebSocket session per app key, shared by every bot (README, Real-time)
  enabled: true
  port: 0
  fills: { demo-bot: [demo] }   # fill notices of the HTS id "demo" go to demo-bot only
accounts:
  - name: kis-demo
    provider: kis
    env: mock
    appKey: "${values.kis.appKey}"
    appSecret: "${values.kis.appSecret}"
    baseUrl: ${values.simulatorUrl}   # the simulator; omit baseUrl to use the broker's own host
    sinks:
      - { format: kis-auth, dir: ./KIS/config }      # what kis_auth.py reads: KIS{YYYYMMDD}, by the date of KST, UTC and this host
      - { format: python-kis, dir: ./pykis, htsId: demo }   # what PyKis(id="demo", ..., keep_token="./pykis") loads
      - { format: json, path: ./tokens/kis-demo.json, layout: kis-client }
      - { format: approval-key, path: ./tokens/kis-demo.approval-key }
  - name: kiwoom-demo
    provider: kiwoom
    env: mock
    appKey: "${values.kiwoom.appKey}"
    appSecret: "${values.kiwoom.appSecret}"
    baseUrl: ${values.simulatorUrl}
    sinks:
      - { format: json, path: ./data/.token, layout: kiwoom-token }
`;
}

/** @public cli.ts requires this module only when the demo runs, a require() knip does not follow. */
export async function runDemo(options: { dir: string; port: number }): Promise<number> {
  const stop = new StopSignal();
  const dir = resolve(options.dir);
  await checkBeforeTouching(dir, options.port);
  // Each demo starts fresh: the simulator remembers nothing between runs, so old tokens would be refused. Only a
  // folder the demo made (its marker) is emptied.
  if (existsSync(join(dir, DEMO_MARKER))) rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, DEMO_MARKER), 'Made by `broker-token-sidecar demo`, which empties this folder when it starts again.\n', { mode: 0o600 });
  const kis = generateCredential('kis', 'demo', 'mock');
  const kiwoom = generateCredential('kiwoom', 'demo', 'mock');
  const clock = clockFromEnvironment();
  const { url, simulator } = await runSimulatorServer({ clock, credentials: [kis, kiwoom] });
  const configPath = join(dir, 'config.yaml');
  const adminToken = randomBytes(18).toString('base64url');
  // A gateway client for the demo's bots: its local key and secret (nothing at the broker) are printed, its digest configured.
  const bot = newLocalCredentials();
  const text = demoConfig({
    port: options.port,
    simulatorUrl: url,
    kis,
    kiwoom,
    shownPath: relative(process.cwd(), configPath),
    adminToken,
    bot: { appKey: bot.appKey, appSecretSha256: sha256(bot.appSecret).toString('hex') },
  });
  writeFileSync(configPath, text, { mode: 0o600 });
  const botFile = join(dir, 'demo-bot.gateway.yaml');
  writeFileSync(
    botFile,
    `# demo-bot's local credentials for the demo's gateway and real-time endpoint\nappkey: "${bot.appKey}"\nappsecret: "${bot.appSecret}"\n`,
    {
      mode: 0o600,
    },
  );
  const config = parseConfig(text, configPath, dir);
  const shown = (path: string) => relative(process.cwd(), path) || '.';
  const code = await serve(config, stop, {
    sidecar: { clock },
    onListening: (server, sidecar, ports) => {
      let readyAnnounced = false;
      const announce = () => {
        if (readyAnnounced || !sidecar.views().every((v) => v.ready)) return;
        readyAnnounced = true;
        const { gateway, realtime } = ports;
        const look =
          gateway && realtime
            ? demonstrateRealtime(gateway, realtime, 'kis-demo', bot, () => simulator.realtime.stats(kis.appKey).sessions)
            : Promise.resolve([]);
        void look
          .catch((error: unknown) => [`real-time: the demo's clients failed: ${(error as Error).message}`])
          .then((lines) => process.stdout.write(`\n${[...lines, 'All token files are written: the demo is ready. Press Ctrl-C to stop.'].join('\n')}\n`));
      };
      sidecar.bus.on('sink.written', announce);
      const files = config.accounts.flatMap((a) =>
        a.sinks.flatMap((s) =>
          sinkPaths(s, clock.now()).map((path) => `${shown(path)}   (${a.name}, ${s.format}${s.format === 'json' ? ` ${s.layout}` : ''})`),
        ),
      );
      const lines = [
        '',
        'broker-token-sidecar demo',
        `  broker simulator  ${url}   (KIS and Kiwoom on loopback; made-up credentials)`,
        `  config            ${shown(configPath)}`,
        `  state             ${shown(config.stateDir)}`,
        '  token files       ' + files.join('\n                    '),
      ];
      if (ports.gateway && ports.realtime) {
        lines.push(
          `  gateway           ${ports.gateway}/kis-demo   (REST: kis_devlp.yaml's prod)`,
          `  real-time         ${ports.realtime}/kis-demo   (WebSocket: kis_devlp.yaml's ops, python-kis's websocket domain)`,
          `  demo-bot          ${shown(botFile)}   (its local key and secret: my_app and my_sec; nothing at the broker)`,
        );
      }
      if (server) {
        lines.push(
          `  metrics           ${server.url}/metrics`,
          `  status            ${server.url}/status`,
          `  ready             ${server.url}/readyz`,
          `  admin token       ${adminToken}   (made for this demo, in ${shown(configPath)})`,
        );
      }
      const kisAuth = config.accounts[0]!.sinks.find((s) => s.format === 'kis-auth');
      lines.push(
        '',
        `The KIS folder holds KIS{YYYYMMDD} under today's date in ${kisAuth?.format === 'kis-auth' ? kisAuth.readerTimeZones.join(', ') : 'each reader zone'}: kis_auth.py names`,
        'its file by the date on its own clock, and from 00:00 to 09:00 KST the UTC date is still the day before. So the',
        "file's date may not be this host's date, and there may be two files: both hold the same token.",
        '',
        `Try: delete ${shown(sinkPaths(config.accounts[0]!.sinks[0]!, clock.now())[0]!)} and watch it come back, with no new token.`,
        ...(server ? [`     renew now:  curl -X POST -H "Authorization: Bearer ${adminToken}" '${server.url}/renew/kis-demo?force=true'`] : []),
        '',
      );
      process.stdout.write(`${lines.join('\n')}\n`);
      // Files written while the sidecar opened (before this listener) count too.
      announce();
    },
  });
  await simulator.close();
  return code;
}

import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseConfig } from '../config/load';
import { runSimulatorServer, generateCredential, type SimulatorCredential } from '../simulator';
import { clockFromEnvironment } from '../core/clock';
import { sinkPaths } from '../sinks/formats';
import { StopSignal, openSidecar, runUntilSignalled } from './boot';

/**
 * The demo: the broker simulator on loopback and the sidecar against it, on an embedded config that is the
 * same format as a real one (written out beside the files, so it can be read and copied). No credentials,
 * no KakaoTalk notices.
 */
/** The demo's config, written out as a real one would be; only the credentials are the simulator's made-up ones. */
function demoConfig(values: { port: number; simulatorUrl: string; kis: SimulatorCredential; kiwoom: SimulatorCredential; shownPath: string }): string {
  return `# The demo's configuration, in the same format as a real one (see the README's configuration reference).
# The credentials below are made up, accepted only by the simulator; in a real config take them from the
# environment or from files, e.g.  appKey: \${KIS_APP_KEY}  and  appSecretFile: /run/secrets/kis_app_secret
# Try:  npx broker-token-sidecar status --config ${values.shownPath}
stateDir: ./state
log: { level: info, format: pretty }
server:
  host: 127.0.0.1
  port: ${values.port}
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

export async function runDemo(options: { dir: string; port: number }): Promise<number> {
  const stop = new StopSignal();
  const dir = resolve(options.dir);
  // Each demo starts fresh: the simulator remembers nothing between runs, so old tokens would be refused.
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const kis = generateCredential('kis', 'demo', 'mock');
  const kiwoom = generateCredential('kiwoom', 'demo', 'mock');
  const clock = clockFromEnvironment();
  const { url, simulator } = await runSimulatorServer({ clock, credentials: [kis, kiwoom] });
  const configPath = join(dir, 'config.yaml');
  const text = demoConfig({ port: options.port, simulatorUrl: url, kis, kiwoom, shownPath: relative(process.cwd(), configPath) });
  writeFileSync(configPath, text, { mode: 0o600 });
  const config = parseConfig(text, configPath, dir);
  const sidecar = await openSidecar(config, { clock });
  const shown = (path: string) => relative(process.cwd(), path) || '.';
  let readyAnnounced = false;
  sidecar.bus.on('sink.written', () => {
    if (readyAnnounced || !sidecar.views().every((v) => v.ready)) return;
    readyAnnounced = true;
    process.stdout.write('\nAll token files are written: the demo is ready. Press Ctrl-C to stop.\n');
  });
  const code = await runUntilSignalled(sidecar, stop, (server) => {
    const files = config.accounts.flatMap((a) =>
      a.sinks.flatMap((s) => sinkPaths(s, clock.now()).map((path) => `${shown(path)}   (${a.name}, ${s.format}${s.format === 'json' ? ` ${s.layout}` : ''})`)),
    );
    const lines = [
      '',
      'broker-token-sidecar demo',
      `  broker simulator  ${url}   (KIS and Kiwoom on loopback; made-up credentials)`,
      `  config            ${shown(configPath)}`,
      `  state             ${shown(config.stateDir)}`,
      '  token files       ' + files.join('\n                    '),
    ];
    if (server) {
      lines.push(`  metrics           ${server.url}/metrics`, `  status            ${server.url}/status`, `  ready             ${server.url}/readyz`);
    }
    lines.push('', `Try: delete ${shown(sinkPaths(config.accounts[0]!.sinks[0]!, clock.now())[0]!)} and watch it come back, with no new token.`, '');
    process.stdout.write(`${lines.join('\n')}\n`);
  });
  await simulator.close();
  return code;
}

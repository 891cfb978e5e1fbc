/**
 * What every example run shares: a folder of its own, the example's sidecar.yaml copied there with only what must
 * differ from a real setup overridden (and each override printed), the simulator, the sidecar, and the bot's
 * process with its printed lines. Nothing under examples/ is written: the shipped files stay as a user copies them.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { parseDocument, type Document, type YAMLMap, type YAMLSeq } from 'yaml';
import { systemClock } from '../core/clock';
import { createLogger } from '../logging/logger';
import { SecretRegistry } from '../core/secrets';
import { parseConfig } from '../config/load';
import type { Sidecar } from '../sidecar';
import { createSidecar } from '../wiring';
import { runSimulatorServer, type BrokerSimulator, type SimulatorCredential } from '../simulator';

/** The repository's root, from dist/src/examples/. */
export const REPOSITORY = join(__dirname, '..', '..', '..');
export const EXAMPLES = join(REPOSITORY, 'examples');
/** The Python stand-ins for kis_auth.py and python-kis, used when the real ones are not installed. */
export const REPLICAS = join(REPOSITORY, 'test', 'replicas');

/** A step of the run failed: the message says what was expected and what happened. */
export class ExampleFailure extends Error {}

export function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Debian's interpreter has PyYAML (python3-yaml), which kis_auth.py needs; a pyenv shim on PATH may not. */
export function findPython(): string {
  for (const candidate of ['/usr/bin/python3', 'python3']) {
    if (spawnSync(candidate, ['-c', 'import yaml'], { encoding: 'utf8' }).status === 0) return candidate;
  }
  throw new ExampleFailure('no python3 with PyYAML found (Debian/Ubuntu: apt-get install python3-yaml)');
}

/** Seconds of patience for what a loaded machine may take a while to do (a Python start, a first issuance). */
const PATIENCE_MS = 30_000;

export async function waitUntil(what: string, condition: () => boolean, ms = PATIENCE_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new ExampleFailure(`gave up after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface Workspace {
  dir: string;
  /** The bot's HOME: ~/KIS/config, ~/.pykis. */
  home: string;
  env: Record<string, string>;
  simulator: BrokerSimulator;
  simulatorUrl: string;
  /** The example's sidecar.yaml as copied into `dir`, with the overrides applied. */
  configPath: string;
  cleanup: Array<() => Promise<void> | void>;
}

/**
 * The run's folder, the simulator (1 s spacing and no same-token window, so an example can show a renewal at once)
 * and the example's sidecar.yaml copied in with the overrides a run against the simulator needs. Each override is
 * printed: against the real broker, none of them is made (README, "Pointing it at the real KIS or Kiwoom servers").
 */
export async function openWorkspace(example: string, credential: SimulatorCredential, keep: boolean): Promise<Workspace> {
  const shipped = join(EXAMPLES, example, 'sidecar.yaml');
  if (!existsSync(shipped)) throw new ExampleFailure(`${shipped} not found: run this from a clone of the repository`);
  const dir = mkdtempSync(join(tmpdir(), `bts-example-${example}-`));
  const home = join(dir, 'home');
  mkdirSync(home, { mode: 0o700 });
  const cleanup: Workspace['cleanup'] = [() => (keep ? say(`kept ${dir}`) : rmSync(dir, { recursive: true, force: true }))];
  const { url, simulator } = await runSimulatorServer({ clock: systemClock, credentials: [credential], spacingMs: 1_000, sameTokenWindowMs: 0 });
  cleanup.unshift(() => simulator.close());
  say(`broker simulator on ${url} (made-up credentials; no KakaoTalk notice)`);
  say(`run folder ${dir}${keep ? '' : ' (removed at the end; --keep keeps it)'}`);

  const doc = parseDocument(readFileSync(shipped, 'utf8'));
  const overrides: string[] = [];
  const keyVariable = credential.provider === 'kis' ? 'KIS_APP_KEY' : 'KIWOOM_APP_KEY';
  const env: Record<string, string> = { HOME: home, [keyVariable]: credential.appKey, KIS_HTS_ID: 'trader01' };
  (doc.get('accounts') as YAMLSeq<YAMLMap>).items.forEach((account, index) => {
    account.set('baseUrl', url);
    account.setIn(['renewal', 'spacing'], '1s');
    overrides.push(`accounts[${index}].baseUrl: ${url} (the simulator; without baseUrl, the broker's own host)`);
    overrides.push(`accounts[${index}].renewal.spacing: 1s (the simulator's; a broker's host takes 1m at least)`);
    const secretFile = account.get('appSecretFile');
    if (typeof secretFile === 'string') {
      const path = isAbsolute(secretFile) ? join(dir, 'root', secretFile) : join(dir, secretFile);
      if (isAbsolute(secretFile)) account.set('appSecretFile', path);
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      writeFileSync(path, `${credential.appSecret}\n`, { mode: 0o600 });
      overrides.push(`${secretFile}: the simulator's made-up secret (mode 0600)`);
    }
    moveAbsolutePaths(doc, account, index, dir, overrides);
  });
  if (doc.hasIn(['gateway', 'port'])) {
    doc.setIn(['gateway', 'port'], 0);
    overrides.push('gateway.port: 0 (any free port; the run prints it)');
  }
  if (doc.hasIn(['realtime', 'port'])) {
    doc.setIn(['realtime', 'port'], 0);
    overrides.push('realtime.port: 0 (any free port; the run prints it)');
  }
  overrides.push(`environment: ${Object.keys(env).join(', ')} (HOME is the bot's home in the run folder)`);
  const configPath = join(dir, 'sidecar.yaml');
  writeFileSync(configPath, doc.toString(), { mode: 0o600 });
  say(`examples/${example}/sidecar.yaml, copied with these overrides:`);
  for (const line of overrides) say(`  ${line}`);
  return { dir, home, env, simulator, simulatorUrl: url, configPath, cleanup };
}

/** A sink's absolute folder (/shared/..., /srv/...) is moved under the run folder, so a run writes nothing outside it. */
function moveAbsolutePaths(doc: Document, account: YAMLMap, index: number, dir: string, overrides: string[]): void {
  const sinks = account.get('sinks') as YAMLSeq<YAMLMap> | undefined;
  sinks?.items.forEach((sink, s) => {
    for (const key of ['dir', 'path']) {
      const value = sink.get(key);
      if (typeof value !== 'string' || !value.startsWith('/')) continue;
      const moved = join(dir, 'root', value);
      sink.set(key, doc.createNode(moved));
      overrides.push(`accounts[${index}].sinks[${s}].${key}: ${relative(dir, moved)} in the run folder, instead of ${value}`);
    }
  });
}

/** The sidecar, in this process, on the copied config; its log goes to sidecar.log in the run folder. */
export async function startSidecar(ws: Workspace): Promise<Sidecar> {
  const config = parseConfig(readFileSync(ws.configPath, 'utf8'), ws.configPath, ws.dir, { env: { ...process.env, ...ws.env } });
  const secrets = new SecretRegistry();
  const logPath = join(ws.dir, 'sidecar.log');
  const logger = createLogger({
    level: 'info',
    format: 'json',
    secrets,
    destination: { write: (line: string) => writeFileSync(logPath, line, { flag: 'a' }) },
  });
  const sidecar = createSidecar(config, { clock: systemClock, secrets, logger });
  await sidecar.open();
  sidecar.run();
  ws.cleanup.unshift(() => sidecar.close());
  await waitUntil('the token in every file', () => sidecar.views().every((v) => v.ready));
  say(
    `sidecar ready: ${sidecar
      .views()
      .map((v) => `${v.snapshot.ref.name} has a token, ${v.sinks.length} file(s) written`)
      .join('; ')}`,
  );
  return sidecar;
}

interface Bot {
  child: ChildProcess;
  lines: string[];
  output: () => string;
}

/** A Python program of the example, its printed lines kept (stdout and stderr, so a traceback shows). */
export function startBot(ws: Workspace, python: string, script: string, args: string[], env: Record<string, string>): Bot {
  const child = spawn(python, [script, ...args], {
    cwd: ws.dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', PYTHONDONTWRITEBYTECODE: '1', ...ws.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const bot: Bot = { child, lines: [], output: () => bot.lines.join('\n') };
  let partial = '';
  const take = (data: Buffer) => {
    const text = partial + data.toString();
    const parts = text.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      bot.lines.push(line);
      say(`  | ${line}`);
    }
  };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  ws.cleanup.unshift(() => stopProcess(child));
  return bot;
}

/** Runs a program to its end; fails unless it exits 0. */
export async function runBot(ws: Workspace, python: string, script: string, args: string[], env: Record<string, string> = {}): Promise<string[]> {
  const bot = startBot(ws, python, script, args, env);
  const code = await new Promise<number | null>((resolve) => bot.child.once('close', resolve));
  if (code !== 0) throw new ExampleFailure(`${relative(REPOSITORY, script)} exited with ${String(code)}`);
  return bot.lines;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const closed = new Promise((resolve) => child.once('close', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await closed;
  clearTimeout(timer);
}

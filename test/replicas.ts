import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { SimulatorCredential } from '../src/simulator';
import { preview } from '../src/core/secrets';

/**
 * Runs the replicas in test/replicas (faithful copies, in behaviour, of the programs users run beside the sidecar:
 * kis_auth.py, python-kis, the JSON and Kiwoom token caches) the way those programs run: their own HOME, their own
 * time zone, any instant on their own clock (libfaketime), and optionally a read-only view of the token folder.
 */

export const REPLICAS = join(__dirname, '..', '..', 'test', 'replicas');
// Debian's interpreter, which has PyYAML from python3-yaml; a pyenv shim on PATH would be another Python.
const PYTHON = '/usr/bin/python3';

export interface ReplicaTools {
  python: string;
  /** libfaketime itself, preloaded into a replica (see runReplica). */
  libfaketime: string;
}

/** python3 with PyYAML, and libfaketime: required in CI (.ci/run installs them), elsewhere their absence skips. */
export function replicaTools(): ReplicaTools | undefined {
  const yaml = spawnSync(PYTHON, ['-c', 'import yaml'], { encoding: 'utf8' });
  const libfaketime = spawnSync('sh', ['-c', 'ls /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1 2>/dev/null | head -1'], {
    encoding: 'utf8',
  }).stdout.trim();
  if (yaml.status === 0 && libfaketime !== '') return { python: PYTHON, libfaketime };
  if (process.env.CI) throw new Error('the client replicas need python3 with PyYAML and faketime in CI (apt-get install python3-yaml faketime)');
  return undefined;
}

/** Whether this machine can give a process a read-only bind mount of a folder (an unprivileged user namespace). */
export function canMountReadOnly(): boolean {
  const probe = spawnSync(
    'unshare',
    ['--user', '--map-root-user', '--mount', 'sh', '-c', 'mount --bind -o ro /tmp /tmp && ! touch /tmp/.ro-probe 2>/dev/null'],
    { encoding: 'utf8' },
  );
  return probe.status === 0;
}

interface CredentialFiles {
  appKeyFile: string;
  secretFile: string;
}

/** The credentials as files (mode 0600), the way the replicas take them: never on a command line. */
export function writeCredentialFiles(dir: string, credential: SimulatorCredential, name: string): CredentialFiles {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const appKeyFile = join(dir, `${name}.appkey`);
  const secretFile = join(dir, `${name}.secret`);
  writeFileSync(appKeyFile, `${credential.appKey}\n`, { mode: 0o600 });
  writeFileSync(secretFile, `${credential.appSecret}\n`, { mode: 0o600 });
  return { appKeyFile, secretFile };
}

export { writeKisDevlp } from '../src/examples/kis-devlp';

export interface ReplicaReport {
  token: string | null;
  file: string;
  tokenRequests: number;
  /** kis_auth.py only: whether its import found no file and created an empty one. */
  createdAtImport?: boolean;
}

export interface ReplicaRun {
  tools: ReplicaTools;
  /** The replica's HOME (kis_auth.py's ~/KIS/config, python-kis's ~/.pykis). */
  home: string;
  /** The replica's own clock: its zone (TZ) ... */
  timeZone: string;
  /** ... and the instant its clock starts at (epoch ms); the real time when unset. */
  at?: number;
  /** A folder the replica sees read-only (a bind mount in its own mount namespace), as from a `:ro` volume. */
  readOnly?: string;
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface ReplicaOutcome {
  status: number | null;
  stdout: string;
  /** The last JSON line the replica printed, when it printed one. */
  report: ReplicaReport | undefined;
  stderr: string;
}

/**
 * Runs one replica script (a name in test/replicas, or an absolute path: an example) without blocking this process
 * (the simulator it may call lives here). Its clock is faked from `at` in its own zone, so it computes dates, names
 * and comparisons as a process on that clock would.
 */
export function runReplica(script: string, args: string[], run: ReplicaRun): Promise<ReplicaOutcome> {
  let command = [run.tools.python, isAbsolute(script) ? script : join(REPLICAS, script), ...args];
  // The replica's clock, `at` from now on: libfaketime preloaded with an offset from the real clock. Not the faketime
  // wrapper: it names a semaphore and a shared-memory segment after its pid, leaves them behind when a test kills it,
  // and a later wrapper given the same pid (the suite starts thousands of processes) fails to start.
  const fakeClock = run.at === undefined ? {} : { LD_PRELOAD: run.tools.libfaketime, FAKETIME: `${signed(Math.round((run.at - Date.now()) / 1000))}` };
  if (run.readOnly !== undefined) {
    command = ['unshare', '--user', '--map-root-user', '--mount', 'sh', '-c', 'mount --bind -o ro "$0" "$0" && exec "$@"', run.readOnly, ...command];
  }
  const child = spawn(command[0]!, command.slice(1), {
    cwd: run.cwd ?? run.home,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: run.home,
      TZ: run.timeZone,
      LANG: 'C.UTF-8',
      PYTHONDONTWRITEBYTECODE: '1',
      ...fakeClock,
      ...run.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), run.timeoutMs ?? 20_000);
  return new Promise((resolve) => {
    child.once('close', (status) => {
      clearTimeout(timer);
      const last = stdout.trim().split('\n').filter(Boolean).pop();
      let report: ReplicaReport | undefined;
      try {
        report = last === undefined ? undefined : (JSON.parse(last) as ReplicaReport);
      } catch {
        report = undefined;
      }
      resolve({ status, stdout, report, stderr });
    });
  });
}

/** A libfaketime offset in seconds: "+N" or "-N". */
const signed = (seconds: number): string => (seconds < 0 ? String(seconds) : `+${seconds}`);

/**
 * A report in words, for assertion messages: the token only as a preview, never whole (test output is read by people
 * and kept by CI).
 */
export function describeOutcome(name: string, outcome: ReplicaOutcome): string {
  const r = outcome.report;
  const body = r
    ? `token ${r.token === null ? 'none' : preview(r.token)}, ${r.tokenRequests} request(s) of its own${r.createdAtImport ? ', created an empty file at import' : ''}, file ${r.file}`
    : `no report (exit ${String(outcome.status)}): ${outcome.stderr.trim().split('\n').slice(-1)[0] ?? ''}`;
  return `${name}: ${body}`;
}

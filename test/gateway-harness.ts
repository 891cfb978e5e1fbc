import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { startSidecarGateway } from '../src/wiring';
import { systemClock } from '../src/core/clock';
import { sha256 } from '../src/core/wire';
import { newLocalCredentials } from '../src/gateway/clients';
import type { RunningGateway } from '../src/gateway/start';
import type { Sidecar } from '../src/sidecar';
import type { SimulatorOptions } from '../src/simulator/types';
import {
  closeBeforeCleanup,
  CLI,
  LogCapture,
  configText,
  freePort,
  markerCredential,
  parseTestConfig,
  spawnForTest,
  startSimulator,
  tempDir,
  testSidecar,
  until,
} from './helpers';

/**
 * The gateway's test harness: a sidecar against the simulator with its gateway on a port, clients holding only
 * local credentials, and the simulator as a process of its own when a test counts what the broker saw each second.
 */

export const PRICE = '/uapi/domestic-stock/v1/quotations/inquire-price?FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930';

/** Local credentials of the broker's shape: a KIS client checks 36 and 180 characters. */
export function localClient(name: string) {
  return { name, ...newLocalCredentials() };
}

export type Client = ReturnType<typeof localClient>;

/** The `gateway.clients` entries for these clients (their digests only), each allowed on `main`. */
export function clientEntries(clients: Client[]): string {
  return clients
    .map((c) => `    - { name: ${c.name}, accounts: [main], appKey: "${c.appKey}", appSecretSha256: "${sha256(c.appSecret).toString('hex')}" }`)
    .join('\n');
}

interface HarnessOptions {
  provider?: 'kis' | 'kiwoom';
  /** Simulator settings for a new simulator. */
  simulator?: Partial<SimulatorOptions>;
  /** A running simulator and its credential, and the folder of an earlier harness: a restart of the same sidecar. */
  reuse?: { sim: Awaited<ReturnType<typeof startSimulator>>; cred: ReturnType<typeof markerCredential>; dir: string };
}

export async function gatewayHarness(t: Parameters<typeof tempDir>[0], clients: Client[], options: HarnessOptions = {}) {
  const dir = options.reuse?.dir ?? tempDir(t);
  const cred = options.reuse?.cred ?? markerCredential(options.provider ?? 'kis', 'gateway');
  const sim = options.reuse?.sim ?? (await startSimulator(t, [cred], { spacingMs: 1_000, ...options.simulator, clock: systemClock as never }));
  const top = `gateway:\n  enabled: true\n  port: 0\n  clients:\n${clientEntries(clients)}\n`;
  const config = parseTestConfig(configText(join(dir, 'state'), sim.url, [{ name: 'main', credential: cred, extra: 'renewal: { spacing: 1s }' }], top), dir);
  const logs = new LogCapture();
  const sidecar: Sidecar = testSidecar(config, systemClock as never, { logger: logs.logger, secrets: logs.secrets });
  await sidecar.open();
  closeBeforeCleanup(t, () => sidecar.close());
  // Before the loops, as `start` does: the sidecar's first proof already waits for its budget slot.
  const gateway: RunningGateway = await startSidecarGateway(sidecar, 256);
  closeBeforeCleanup(t, () => gateway.close());
  sidecar.run();
  await until('the first token', 10_000, () => sidecar.account('main')!.gatewayToken() !== undefined);
  // And its proof, so a test counting the calls that reach the broker counts only its own.
  await until('the first proof', 10_000, () => Boolean(sidecar.account('main')!.snapshot().state.lastProof));
  return { ...sim, sim, dir, sidecar, gateway, cred, logs, base: `${gateway.url}/main` };
}

/**
 * The simulator as a process of its own, as the broker is: its record of when each call arrived is then not
 * delayed by the gateway's own work in this process (an in-process simulator timestamps after the event loop).
 */
export async function simulatorProcess(t: Parameters<typeof tempDir>[0], cred: ReturnType<typeof markerCredential>) {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'credentials.yaml'), JSON.stringify([cred]));
  const port = await freePort();
  const child = spawnForTest(
    t,
    process.execPath,
    [CLI, 'simulator', '--port', String(port), '--credentials', join(dir, 'credentials.yaml'), '--spacing', '1s'],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const url = `http://127.0.0.1:${port}`;
  const json = async <T>(path: string) => (await (await request(`${url}/_sim/${path}`)).body.json()) as T;
  await until('the simulator', 20_000, () =>
    json('stats').then(
      () => true,
      () => false,
    ),
  );
  return {
    url,
    child,
    stats: () => json<{ quotaExceeded: number; tokenRequests: number }>('stats'),
    /** Every request the broker saw: when, where, and what came of it. */
    requests: () => json<Array<{ at: number; endpoint: string; outcome: string; status: number }>>('requests'),
    /** The most calls of `endpoint` (or that `endpoint` accepts) that arrived within any one second. */
    busiestSecond: async (endpoint: string | ((r: { endpoint: string; outcome: string; at: number }) => boolean), from = 0) => {
      const times = (await json<Array<{ at: number; endpoint: string; outcome: string }>>('requests'))
        .filter((r) => (typeof endpoint === 'string' ? r.endpoint === endpoint : endpoint(r)) && r.at >= from)
        .map((r) => r.at)
        .sort((a, b) => a - b);
      let busiest = 0;
      for (let i = 0, j = 0; i < times.length; i++) {
        while (times[i]! - times[j]! >= 1_000) j++;
        busiest = Math.max(busiest, i - j + 1);
      }
      return busiest;
    },
  };
}

export async function call(base: string, client: Client, token = 'local') {
  const r = await request(`${base}${PRICE}`, {
    headers: {
      authorization: `Bearer ${token}`,
      appkey: client.appKey,
      appsecret: client.appSecret,
      tr_id: 'FHKST01010100',
      custtype: 'P',
      'content-type': 'application/json',
    },
  });
  return { status: r.statusCode, body: (await r.body.json()) as Record<string, unknown>, headers: r.headers };
}

/** A sidecar as a process of its own (`start`), optionally under an open-files limit; its log kept for the test. */
export async function sidecarProcess(t: Parameters<typeof tempDir>[0], configPath: string, options: { openFiles?: number; waitFor?: string } = {}) {
  const command = options.openFiles === undefined ? process.execPath : 'bash';
  const args =
    options.openFiles === undefined
      ? [CLI, 'start', '--config', configPath]
      : ['-c', `ulimit -n ${options.openFiles} && exec "${process.execPath}" "${CLI}" start --config "${configPath}"`];
  const child = spawnForTest(t, command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  await until(
    () => `the sidecar; log:\n${log}`,
    30_000,
    () => log.includes(options.waitFor ?? 'gateway serving'),
  );
  return { child, log: () => log };
}

/** Resident memory of a process, from /proc (MiB). */
export function residentMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) / 1024;
}

/** A program of test/hostile/ as a process of its own; `stop()` ends it and returns what it saw. */
export function hostileProcess(t: Parameters<typeof tempDir>[0], script: string, args: string[]) {
  const child = spawnForTest(t, process.execPath, [join(HOSTILE, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  return {
    child,
    /** Waits until the program has printed `text` (a line it writes when it has got going). */
    said: (text: string, timeoutMs = 30_000) => until(`${script} to say ${text}`, timeoutMs, () => out.includes(text), 20),
    stop: async <T = Record<string, unknown>>(): Promise<T> => {
      const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await done;
      return JSON.parse(out.trim().split('\n').pop() || '{}') as T;
    },
  };
}

const HOSTILE = join(__dirname, '..', '..', 'test', 'hostile');

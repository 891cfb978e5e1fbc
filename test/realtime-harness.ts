/**
 * Driving the simulated brokers' WebSockets from tests: a simulator on loopback with its WebSocket URL, the
 * credentials a client needs (approval key, Kiwoom token), a raw WebSocket client that keeps every message, and
 * the real-time replicas (test/replicas/*_ws*.py, kiwoom_ws.py) as processes whose JSON events can be awaited.
 * Every wait is for an event with a generous deadline that only guards against a hang.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import WebSocket from 'ws';
import { systemClock, type Clock } from '../src/core/clock';
import { BrokerSimulator, type SimulatorCredential, type SimulatorOptions } from '../src/simulator';
import { spawnForTest, until } from './helpers';
import { REPLICAS } from './replicas';

type TestContext = { after(fn: () => void | Promise<void>): void };

/** How long any awaited event may take before the test fails as hung (a busy CI host is slow, never this slow). */
export const HANG_MS = 30_000;

interface RealtimeHarness {
  simulator: BrokerSimulator;
  /** http://127.0.0.1:port, the REST base. */
  url: string;
  /** ws://127.0.0.1:port, the WebSocket base (KIS `ops`; Kiwoom's path is added by the client). */
  wsUrl: string;
}

/** A simulator on loopback, on the system clock unless given one, closed when the test ends. */
export async function startRealtimeSimulator(
  t: TestContext,
  credentials: SimulatorCredential[],
  options: Partial<Omit<SimulatorOptions, 'clock' | 'credentials'>> & { clock?: Clock } = {},
): Promise<RealtimeHarness> {
  const simulator = new BrokerSimulator({ ...options, clock: options.clock ?? systemClock, credentials });
  const url = await simulator.listen(0, '127.0.0.1');
  t.after(() => simulator.close());
  return { simulator, url, wsUrl: url.replace(/^http/, 'ws') };
}

async function postJson(url: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return (await response.json()) as Record<string, unknown>;
}

/** An approval key from the simulator's /oauth2/Approval, as kis_auth.py's auth_ws() asks for it. */
export async function approvalKey(url: string, credential: SimulatorCredential): Promise<string> {
  const body = await postJson(`${url}/oauth2/Approval`, { grant_type: 'client_credentials', appkey: credential.appKey, secretkey: credential.appSecret });
  if (typeof body['approval_key'] !== 'string') throw new Error(`no approval key: ${String(body['error_code'])}`);
  return body['approval_key'];
}

/** A Kiwoom REST token (au10001), which its WebSocket LOGIN takes. */
export async function kiwoomToken(url: string, credential: SimulatorCredential): Promise<string> {
  const body = await postJson(`${url}/oauth2/token`, { grant_type: 'client_credentials', appkey: credential.appKey, secretkey: credential.appSecret });
  if (typeof body['token'] !== 'string') throw new Error(`no Kiwoom token: return_code ${String(body['return_code'])}`);
  return body['token'];
}

/** A KIS register ('1') or unregister ('2') message, as the official data_fetch builds it. */
export function kisRequest(key: string, trId: string, trKey: string, trType: '1' | '2' = '1'): string {
  return JSON.stringify({
    header: { approval_key: key, custtype: 'P', tr_type: trType, 'content-type': 'utf-8' },
    body: { input: { tr_id: trId, tr_key: trKey } },
  });
}

/** A raw WebSocket client that keeps every text message it receives, for protocol-level assertions. */
export class WsProbe {
  readonly messages: string[] = [];
  /** The close code the client saw (1006 when the socket was cut without a close frame); undefined while open. */
  closeCode: number | undefined;
  private cursor = 0;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => this.messages.push(data.toString('utf8')));
    ws.on('close', (code) => (this.closeCode = code));
  }

  static async open(t: TestContext, url: string): Promise<WsProbe> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    t.after(() => ws.terminate());
    return new WsProbe(ws);
  }

  send(text: string): void {
    this.ws.send(text);
  }

  pong(text: string): void {
    this.ws.pong(text);
  }

  close(): void {
    this.ws.close();
  }

  /** The next message after the last one taken that matches, waiting for it; messages before it are skipped. */
  async next(what: string, matches: (message: string) => boolean = () => true): Promise<string> {
    let found: string | undefined;
    await until(
      `${what} (messages so far: ${this.messages.length}, closed: ${String(this.closeCode)})`,
      HANG_MS,
      () => {
        while (this.cursor < this.messages.length) {
          const message = this.messages[this.cursor++]!;
          if (matches(message)) {
            found = message;
            return true;
          }
        }
        return false;
      },
      10,
    );
    return found!;
  }

  /** The next JSON message after the last one taken, parsed. */
  async nextJson(what: string, matches: (message: any) => boolean = () => true): Promise<any> {
    return JSON.parse(await this.next(what, (m) => m.startsWith('{') && matches(JSON.parse(m)))) as unknown;
  }

  async closed(what: string): Promise<number> {
    await until(`${what} to be closed`, HANG_MS, () => this.closeCode !== undefined, 10);
    return this.closeCode!;
  }
}

/** A data frame `{0|1}|TR_ID|NNN|payload`, split. */
export function splitFrame(frame: string): { encrypted: boolean; trId: string; count: number; payload: string } {
  const [flag, trId, count, ...rest] = frame.split('|');
  return { encrypted: flag === '1', trId: trId!, count: Number(count), payload: rest.join('|') };
}

/** Python with the real-time replicas' modules (websockets, Cryptodome, yaml): required in CI, skipped elsewhere. */
export function realtimeReplicaPython(): string | undefined {
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import websockets, Cryptodome, yaml'], { encoding: 'utf8' });
  if (probe.status === 0) return '/usr/bin/python3';
  if (process.env.CI) throw new Error('the real-time replicas need python3-websockets, python3-pycryptodome and python3-yaml (apt-get install)');
  return undefined;
}

/** A replica running as its own process, printing one JSON event per line; its events are kept as they come. */
export class ReplicaProcess {
  readonly events: any[] = [];
  private stderrText = '';
  private exitCode: number | null | undefined;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    let pending = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) if (line.trim() !== '') this.events.push(JSON.parse(line));
    });
    child.stderr!.on('data', (chunk: Buffer) => (this.stderrText = (this.stderrText + chunk.toString('utf8')).slice(-4000)));
    child.on('exit', (code) => (this.exitCode = code));
  }

  /** Starts test/replicas/`script` with its own HOME, on Debian's Python, killed when the test ends. */
  static start(t: TestContext, python: string, script: string, args: string[], env: Record<string, string>): ReplicaProcess {
    const child = spawnForTest(t, python, [join(REPLICAS, script), ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new ReplicaProcess(script, child);
  }

  of(event: string, matches: (e: any) => boolean = () => true): any[] {
    return this.events.filter((e) => e.event === event && matches(e));
  }

  /** Waits until `count` events of a kind (matching) have come, and returns them. */
  async waitFor(event: string, count: number, matches: (e: any) => boolean = () => true): Promise<any[]> {
    await until(
      () =>
        `${this.name}: ${count} "${event}" events (got ${this.of(event, matches).length}; exit ${String(this.exitCode)}; stderr: ${this.stderrText.slice(-600)})`,
      HANG_MS,
      () => this.of(event, matches).length >= count,
      20,
    );
    return this.of(event, matches);
  }

  /** SIGTERM, and its exit awaited. */
  async stop(): Promise<void> {
    if (this.exitCode !== undefined) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    await exited;
  }
}

/**
 * Checks that consecutive records of one stream carry consecutive numbers in their growing field (the day's
 * cumulative volume, n × VOLUME_STEP): returns a description of the first gap or repeat, or undefined.
 */
export function firstGap(volumes: number[], step: number, recordsPerEntry: number[] = volumes.map(() => 1)): string | undefined {
  for (let i = 1; i < volumes.length; i++) {
    const expected = volumes[i - 1]! + step * recordsPerEntry[i]!;
    if (volumes[i] !== expected) return `volume ${volumes[i]} after ${volumes[i - 1]} (expected ${expected}) at entry ${i}`;
  }
  return undefined;
}

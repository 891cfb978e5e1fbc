/**
 * The real-time endpoint under test: the simulator (its WebSockets on loopback), a sidecar on it with its gateway
 * and its real-time endpoint on free ports, clients holding only local credentials, and what they need to connect
 * (a local approval key from the gateway's Approval, a Kiwoom local token). The simulator's control answers are
 * what the broker would have seen.
 */
import { join } from 'node:path';
import { startSidecarGateway, startSidecarRealtime } from '../src/wiring';
import { systemClock } from '../src/core/clock';
import type { RunningRealtime } from '../src/realtime/start';
import type { Sidecar } from '../src/sidecar';
import type { SimulatorCredential, SimulatorOptions } from '../src/simulator';
import { clientEntries, type Client } from './gateway-harness';
import { closeBeforeCleanup, configText, LogCapture, parseTestConfig, tempDir, testSidecar, until } from './helpers';
import { startRealtimeSimulator } from './realtime-harness';

type TestContext = Parameters<typeof tempDir>[0];

interface EndpointOptions {
  /** Lines under `realtime:` beyond enabled and port. */
  realtime?: string;
  /** The simulator's options (its realtime: frame rate, pings). */
  simulator?: Partial<Omit<SimulatorOptions, 'clock' | 'credentials'>>;
  /** Lines under the account beyond its credentials. */
  account?: string;
  /** More keys the simulator knows (a direct client beside the sidecar's, on a key of its own). */
  otherCredentials?: SimulatorCredential[];
  /** More top-level sections of the config (slack:, say). */
  top?: string;
  /** Runs once the simulator listens; returns more lines for the account (a websocketUrl through a hop, say). */
  beforeStart?: (sim: { url: string; wsUrl: string }) => Promise<string>;
}

/** One account `main` of the credential's broker, its gateway and real-time endpoint serving `clients`. */
export async function realtimeEndpoint(t: TestContext, credential: SimulatorCredential, clients: Client[], options: EndpointOptions = {}) {
  const sim = await startRealtimeSimulator(t, [credential, ...(options.otherCredentials ?? [])], {
    spacingMs: 1_000,
    approvalSpacingMs: 1_000,
    ...options.simulator,
  });
  const dir = tempDir(t, 'bts-rte-');
  const realtime = [
    'realtime:',
    '  enabled: true',
    '  port: 0',
    ...(options.realtime ?? '')
      .split('\n')
      .filter(Boolean)
      .map((l) => `  ${l}`),
  ].join('\n');
  const top = `gateway:\n  enabled: true\n  port: 0\n  clients:\n${clientEntries(clients)}\n${realtime}\n${options.top ?? ''}`;
  const extra = ['renewal: { spacing: 1s }', options.account ?? '', (await options.beforeStart?.(sim)) ?? ''].filter(Boolean).join('\n');
  const config = parseTestConfig(configText(join(dir, 'state'), sim.url, [{ name: 'main', credential, extra }], top), dir);
  const logs = new LogCapture();
  const sidecar: Sidecar = testSidecar(config, systemClock as never, { logger: logs.logger, secrets: logs.secrets });
  await sidecar.open();
  closeBeforeCleanup(t, () => sidecar.close());
  const gateway = await startSidecarGateway(sidecar, 256);
  closeBeforeCleanup(t, () => gateway.close());
  const endpoint: RunningRealtime = await startSidecarRealtime(sidecar, gateway.credentials);
  closeBeforeCleanup(t, () => endpoint.close());
  sidecar.run();
  await until('the first token', 10_000, () => sidecar.account('main')!.gatewayToken() !== undefined);
  return { sim, simulator: sim.simulator, dir, sidecar, gateway, endpoint, logs, credential, base: `${gateway.url}/main`, ws: `${endpoint.url}/main` };
}

async function postJson(url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** The client's approval key from the gateway's Approval (its own, local one). */
export async function localApprovalKey(base: string, client: Client): Promise<string> {
  const answer = await postJson(`${base}/oauth2/Approval`, { grant_type: 'client_credentials', appkey: client.appKey, secretkey: client.appSecret });
  if (typeof answer.body['approval_key'] !== 'string') throw new Error(`no approval key: ${answer.status}`);
  return answer.body['approval_key'];
}

/** A Kiwoom client's local token from the gateway (au10001 answered locally). */
export async function localKiwoomToken(base: string, client: Client): Promise<string> {
  const answer = await postJson(`${base}/oauth2/token`, { grant_type: 'client_credentials', appkey: client.appKey, secretkey: client.appSecret });
  if (typeof answer.body['token'] !== 'string') throw new Error(`no local token: ${answer.status}`);
  return answer.body['token'];
}

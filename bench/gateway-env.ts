/**
 * The gateway measurement's processes, each of its own as in production: the broker simulator with its
 * per-second quota raised out of the way, a sidecar with one KIS real account pointed at it and the gateway on
 * for one client, and the bare proxy (bench/bare-proxy.ts). And the three ways to the same price call: straight
 * to the simulator, through the gateway, through the bare proxy, each with the headers its caller sends.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { sha256 } from '../src/core/wire';
import { newLocalCredentials } from '../src/gateway/clients';
import { generateCredential, type SimulatorCredential } from '../src/simulator';
import type { SimulatorStats } from '../src/simulator/types';
import { configText } from '../test/helpers';
import { CLI, withServer } from './env';
import { FatalError, childEnv, freePort, httpGet, startChild, stopChild, tempDir, until200, waitFor, type Child } from './lib';

/** KIS inquire-price: the cheapest business call, the one the sidecar proves its tokens with. */
const PRICE = '/uapi/domestic-stock/v1/quotations/inquire-price?FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930';
const PRICE_TR_ID = 'FHKST01010100';
const ACCOUNT = 'main';
/** Far above what this machine can send: the simulator's quota, and the gateway's budget when it is off. */
export const UNLIMITED = 1_000_000;

export const GATEWAY_TARGETS = ['direct', 'gateway', 'bare-proxy'] as const;
export type GatewayTarget = (typeof GATEWAY_TARGETS)[number];

/** One way to the price call. */
export interface PriceCall {
  url: string;
  /** `Name: value`, as wrk's -H takes them. */
  headers: string[];
  /** The same with every token, key and secret replaced by a placeholder, for the report. */
  shown: string[];
}

/** What the simulator counted that the measurement checks (SimulatorStats, over HTTP). */
type SimulatorCounts = Pick<SimulatorStats, 'proofsRejected' | 'quotaExceeded' | 'authRejected' | 'badRequests'>;

/** The gateway's budget: off (UNLIMITED calls a second) or the broker's published limit, the default. */
type Budget = 'off' | 'default';

/** The headers a KIS client sends with a price call (kis_auth.py's, less the ones that change nothing). */
const priceHeaders = (token: string, appKey: string, appSecret: string): string[] => [
  'content-type: application/json; charset=utf-8',
  `authorization: Bearer ${token}`,
  `appkey: ${appKey}`,
  `appsecret: ${appSecret}`,
  `tr_id: ${PRICE_TR_ID}`,
  'custtype: P',
];

const asRecord = (headers: string[]): Record<string, string> =>
  Object.fromEntries(headers.map((h) => [h.slice(0, h.indexOf(':')), h.slice(h.indexOf(':') + 1).trim()]));

/** One price call on a fresh connection: its status and the KIS rt_cd, for the checks before measuring. */
export async function callOnce(call: PriceCall): Promise<{ status: number; rtCd: string | undefined }> {
  const answer = await httpGet(call.url, 10_000, asRecord(call.headers));
  let rtCd: string | undefined;
  try {
    rtCd = (JSON.parse(answer.body.toString('utf8')) as { rt_cd?: string }).rt_cd;
  } catch {
    // not JSON: rtCd stays undefined, which the caller reports
  }
  return { status: answer.status, rtCd };
}

export class GatewayEnv {
  private readonly dir = tempDir('gateway');
  private readonly credential: SimulatorCredential = generateCredential('kis', 'bench-gateway', 'real');
  private readonly client = newLocalCredentials();
  private simulator?: Child;
  private sidecar?: Child;
  private bare?: Child;
  private constructor(
    private readonly simulatorPort: number,
    private readonly serverPort: number,
    private readonly gatewayPort: number,
    private readonly barePort: number,
  ) {}

  static async create(): Promise<GatewayEnv> {
    return new GatewayEnv(await freePort(), await freePort(), await freePort(), await freePort());
  }

  get simulatorUrl(): string {
    return `http://127.0.0.1:${this.simulatorPort}`;
  }

  private get serverUrl(): string {
    return `http://127.0.0.1:${this.serverPort}`;
  }

  private get credentialsFile(): string {
    return join(this.dir, 'credentials.json');
  }

  private configFile(budget: Budget): string {
    return join(this.dir, `config-budget-${budget}.yaml`);
  }

  private simulatorArgs(): string[] {
    return [join(__dirname, 'simulator-server.js'), this.credentialsFile, String(this.simulatorPort), String(UNLIMITED)];
  }

  private bareArgs(): string[] {
    return [join(__dirname, 'bare-proxy.js'), this.simulatorUrl, String(this.barePort)];
  }

  /** The command lines, as a reader would type them (temp paths are shortened by the report). */
  commands(): { simulator: string; sidecarOff: string; sidecarDefault: string; bare: string } {
    const node = (args: string[]) => `node ${args.map((a) => a.replace(/^.*\/dist\//, 'dist/')).join(' ')}`;
    return {
      simulator: node(this.simulatorArgs()),
      sidecarOff: node([CLI, 'start', '--config', this.configFile('off')]),
      sidecarDefault: node([CLI, 'start', '--config', this.configFile('default')]),
      bare: node(this.bareArgs()),
    };
  }

  /** The `gateway:` section of the sidecar's config: one client with local credentials, stored as a digest. */
  private gatewayYaml(budget: Budget): string {
    return [
      'gateway:',
      '  enabled: true',
      `  port: ${this.gatewayPort}`,
      // Above the published 18 is allowed only because baseUrl is the simulator, not KIS's own host.
      ...(budget === 'off' ? [`  callsPerSecond: { ${ACCOUNT}: ${UNLIMITED} }`] : []),
      '  clients:',
      `    - { name: bench, accounts: [${ACCOUNT}], appKey: "${this.client.appKey}", appSecretSha256: "${sha256(this.client.appSecret).toString('hex')}" }`,
      '',
    ].join('\n');
  }

  async startSimulator(): Promise<void> {
    writeFileSync(this.credentialsFile, JSON.stringify([this.credential]), { mode: 0o600 });
    const child = startChild(process.execPath, this.simulatorArgs(), childEnv());
    this.simulator = child;
    await until200('the simulator', `${this.simulatorUrl}/_sim/stats`, child);
  }

  async startBareProxy(): Promise<void> {
    const child = startChild(process.execPath, this.bareArgs(), childEnv());
    this.bare = child;
    // Any answer from the simulator through it (401 here: no credentials) says it is up.
    await waitFor('the bare proxy', 20_000, async () => {
      if (!child.running()) throw new FatalError(`the bare proxy exited: ${child.output()}`);
      return (await httpGet(`http://127.0.0.1:${this.barePort}${PRICE}`, 5_000)).status > 0;
    });
  }

  /** Starts the sidecar with this budget (stopping the one running): same state dir, so its token is kept. */
  async startSidecar(budget: Budget): Promise<void> {
    if (this.sidecar) await stopChild(this.sidecar);
    const stateDir = join(this.dir, 'state');
    const sinks = `- { format: json, path: "${this.tokenFile}" }`;
    const text = configText(stateDir, this.simulatorUrl, [{ name: ACCOUNT, credential: this.credential, sinks }], this.gatewayYaml(budget));
    writeFileSync(this.configFile(budget), withServer(text, this.serverPort), { mode: 0o600 });
    const child = startChild(process.execPath, [CLI, 'start', '--config', this.configFile(budget)], childEnv());
    this.sidecar = child;
    await until200('the sidecar', `${this.serverUrl}/readyz`, child);
  }

  private get tokenFile(): string {
    return join(this.dir, 'tokens', `${ACCOUNT}.json`);
  }

  get sidecarRunning(): boolean {
    return this.sidecar?.running() ?? false;
  }

  /** The process that answers a target's calls: the simulator for direct calls, else the proxy in front of it. */
  pidOf(target: GatewayTarget): number {
    const child = { direct: this.simulator, gateway: this.sidecar, 'bare-proxy': this.bare }[target];
    if (!child) throw new Error(`${target} is not running`);
    return child.pid;
  }

  /** The three ways to the price call. The real token is the sidecar's, read from its token file, as a bot reads it. */
  async calls(): Promise<Record<GatewayTarget, PriceCall>> {
    const real = (JSON.parse(readFileSync(this.tokenFile, 'utf8')) as { access_token: string }).access_token;
    const local = await this.localToken();
    const direct = priceHeaders(real, this.credential.appKey, this.credential.appSecret);
    const shownReal = priceHeaders('$TOKEN', '$APPKEY', '$APPSECRET');
    return {
      direct: { url: `${this.simulatorUrl}${PRICE}`, headers: direct, shown: shownReal },
      gateway: {
        url: `http://127.0.0.1:${this.gatewayPort}/${ACCOUNT}${PRICE}`,
        headers: priceHeaders(local, this.client.appKey, this.client.appSecret),
        shown: priceHeaders('$LOCAL_TOKEN', '$LOCAL_APPKEY', '$LOCAL_APPSECRET'),
      },
      'bare-proxy': { url: `http://127.0.0.1:${this.barePort}${PRICE}`, headers: direct, shown: shownReal },
    };
  }

  /** The client's local token, from the gateway's tokenP (answered by the gateway; nothing reaches the broker). */
  private async localToken(): Promise<string> {
    const answer = await request(`http://127.0.0.1:${this.gatewayPort}/${ACCOUNT}/oauth2/tokenP`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', appkey: this.client.appKey, appsecret: this.client.appSecret }),
    });
    const body = (await answer.body.json()) as { access_token?: string };
    if (answer.statusCode !== 200 || !body.access_token) throw new Error(`the gateway's tokenP answered ${answer.statusCode}`);
    return body.access_token;
  }

  /** The simulator's counts (what the broker would have seen). */
  async simulatorStats(): Promise<SimulatorCounts> {
    return JSON.parse((await httpGet(`${this.simulatorUrl}/_sim/stats`)).body.toString('utf8')) as SimulatorCounts;
  }

  /** When each price call reached the simulator (epoch ms, its clock), of the last 10,000 requests it logged. */
  async priceCallTimes(): Promise<number[]> {
    const log = JSON.parse((await httpGet(`${this.simulatorUrl}/_sim/requests`)).body.toString('utf8')) as Array<{ at: number; endpoint: string }>;
    return log.filter((r) => r.endpoint === 'kis.price').map((r) => r.at);
  }

  /** The sidecar's own count of budget slots granted (calls sent, proofs included). */
  async budgetGranted(): Promise<number> {
    const text = (await httpGet(`${this.serverUrl}/metrics`)).body.toString('utf8');
    const line = new RegExp(`^broker_token_gateway_budget_granted_total\\{[^}]*account="${ACCOUNT}"[^}]*\\} (\\S+)$`, 'm').exec(text);
    if (!line) throw new Error('the sidecar exports no broker_token_gateway_budget_granted_total for the account');
    return Number(line[1]);
  }

  async stop(): Promise<void> {
    for (const child of [this.bare, this.sidecar, this.simulator]) if (child) await stopChild(child);
  }
}

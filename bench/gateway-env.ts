/**
 * The gateway measurement's processes, each of its own as in production: the broker simulator with its
 * per-second quota raised out of the way; two sidecars with one KIS real account pointed at it and the gateway on
 * for one client, one counting the call budget in memory (a file store), the other in Redis (`store: { type:
 * redis }`, against a redis-server started here without persistence); and the bare proxy (bench/bare-proxy.ts).
 * And the four ways to the same price call: straight to the simulator, through either gateway, through the bare
 * proxy, each with the headers its caller sends.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
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

export const GATEWAY_TARGETS = ['direct', 'gateway', 'gateway-redis', 'bare-proxy'] as const;
export type GatewayTarget = (typeof GATEWAY_TARGETS)[number];

/** Where a sidecar counts its call budget: in its own memory (a file store), or in Redis (a Redis store). */
export const BUDGET_STORES = ['memory', 'redis'] as const;
export type BudgetStore = (typeof BUDGET_STORES)[number];
export const gatewayTargetOf: Record<BudgetStore, GatewayTarget> = { memory: 'gateway', redis: 'gateway-redis' };

/** redis-server as the tests start it: loopback only, nothing saved (no RDB snapshot, no append-only file). */
const redisArgs = (port: number): string[] => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];

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

/** One sidecar of the measurement: its ports, and its process while it runs. */
interface SidecarSlot {
  serverPort: number;
  gatewayPort: number;
  child?: Child;
}

/** Whether redis-server answers PING on `port` (one RESP inline command on a fresh connection). */
function redisPong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2_000, () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
    socket.once('error', () => done(false));
  });
}

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
  private bare?: Child;
  private redis?: Child;
  /** Why there is no Redis-counted sidecar in this run; undefined once redis-server answers. */
  private redisMissing: string | undefined = 'redis-server was not started';
  /** `redis-server --version`'s version, once started. */
  redisVersion: string | undefined;
  private constructor(
    private readonly simulatorPort: number,
    private readonly barePort: number,
    private readonly redisPort: number,
    private readonly sidecars: Record<BudgetStore, SidecarSlot>,
  ) {}

  static async create(): Promise<GatewayEnv> {
    const slot = async (): Promise<SidecarSlot> => ({ serverPort: await freePort(), gatewayPort: await freePort() });
    return new GatewayEnv(await freePort(), await freePort(), await freePort(), { memory: await slot(), redis: await slot() });
  }

  get simulatorUrl(): string {
    return `http://127.0.0.1:${this.simulatorPort}`;
  }

  private serverUrl(store: BudgetStore): string {
    return `http://127.0.0.1:${this.sidecars[store].serverPort}`;
  }

  private get credentialsFile(): string {
    return join(this.dir, 'credentials.json');
  }

  private configFile(store: BudgetStore, budget: Budget): string {
    return join(this.dir, `config-${store}-budget-${budget}.yaml`);
  }

  private simulatorArgs(): string[] {
    return [join(__dirname, 'simulator-server.js'), this.credentialsFile, String(this.simulatorPort), String(UNLIMITED)];
  }

  private bareArgs(): string[] {
    return [join(__dirname, 'bare-proxy.js'), this.simulatorUrl, String(this.barePort)];
  }

  /** The command lines, as a reader would type them (temp paths are shortened by the report). */
  commands(): GatewayCommands {
    const node = (args: string[]) => `node ${args.map((a) => a.replace(/^.*\/dist\//, 'dist/')).join(' ')}`;
    const sidecar = (store: BudgetStore, budget: Budget) => node([CLI, 'start', '--config', this.configFile(store, budget)]);
    return {
      simulator: node(this.simulatorArgs()),
      redis: `redis-server ${redisArgs(this.redisPort)
        .map((a) => (a === '' ? "''" : a))
        .join(' ')}`,
      sidecarOff: { memory: sidecar('memory', 'off'), redis: sidecar('redis', 'off') },
      sidecarDefault: { memory: sidecar('memory', 'default'), redis: sidecar('redis', 'default') },
      bare: node(this.bareArgs()),
    };
  }

  /** The `gateway:` section of the sidecar's config: one client with local credentials, stored as a digest. */
  private gatewayYaml(store: BudgetStore, budget: Budget): string {
    return [
      'gateway:',
      '  enabled: true',
      `  port: ${this.sidecars[store].gatewayPort}`,
      // Above the published 18 is allowed only because baseUrl is the simulator, not KIS's own host.
      ...(budget === 'off' ? [`  callsPerSecond: { ${ACCOUNT}: ${UNLIMITED} }`] : []),
      '  clients:',
      `    - { name: bench, accounts: [${ACCOUNT}], appKey: "${this.client.appKey}", appSecretSha256: "${sha256(this.client.appSecret).toString('hex')}" }`,
      // The store is where the budget is counted: Redis for the second sidecar, the state files (and memory) for the first.
      ...(store === 'redis' ? [`store: { type: redis, url: "redis://127.0.0.1:${this.redisPort}/0" }`] : []),
      '',
    ].join('\n');
  }

  async startSimulator(): Promise<void> {
    writeFileSync(this.credentialsFile, JSON.stringify([this.credential]), { mode: 0o600 });
    const child = startChild(process.execPath, this.simulatorArgs(), childEnv());
    this.simulator = child;
    await until200('the simulator', `${this.simulatorUrl}/_sim/stats`, child);
  }

  /** redis-server on a loopback port of its own, without persistence; when it is not installed, the reason is kept instead. */
  async startRedis(): Promise<void> {
    const version = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
    if (version.status !== 0) {
      this.redisMissing = 'redis-server is not installed; on Debian or Ubuntu: apt-get install -y redis-server';
      return;
    }
    this.redisVersion = /v=(\S+)/.exec(version.stdout)?.[1];
    const child = startChild('redis-server', redisArgs(this.redisPort));
    this.redis = child;
    await waitFor('redis-server', 20_000, async () => {
      if (!child.running()) throw new FatalError(`redis-server exited: ${child.output()}`);
      return redisPong(this.redisPort);
    });
    this.redisMissing = undefined;
  }

  /** Why the Redis-counted sidecar is not measured in this run, or undefined when it is. */
  get redisAbsence(): string | undefined {
    return this.redisMissing;
  }

  /** The stores this run measures: memory always, Redis when redis-server runs. */
  get stores(): BudgetStore[] {
    return BUDGET_STORES.filter((store) => store === 'memory' || this.redisMissing === undefined);
  }

  /** The targets this run measures, in GATEWAY_TARGETS' order. */
  get targets(): GatewayTarget[] {
    return GATEWAY_TARGETS.filter((t) => t !== 'gateway-redis' || this.redisMissing === undefined);
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

  /**
   * Starts the sidecar counting in `store` with this budget (stopping the one running there): its own state dir,
   * kept across restarts, so its token is kept. The simulator hands the second sidecar the first one's token (KIS's
   * same-token answer within 6 hours), so nothing beyond one issuance reaches it.
   */
  async startSidecar(store: BudgetStore, budget: Budget): Promise<void> {
    await this.stopSidecar(store);
    const stateDir = join(this.dir, `state-${store}`);
    const sinks = `- { format: json, path: "${this.tokenFile(store)}" }`;
    const text = configText(stateDir, this.simulatorUrl, [{ name: ACCOUNT, credential: this.credential, sinks }], this.gatewayYaml(store, budget));
    writeFileSync(this.configFile(store, budget), withServer(text, this.sidecars[store].serverPort), { mode: 0o600 });
    const child = startChild(process.execPath, [CLI, 'start', '--config', this.configFile(store, budget)], childEnv());
    this.sidecars[store].child = child;
    await until200(`the sidecar (budget in ${store})`, `${this.serverUrl(store)}/readyz`, child);
  }

  async stopSidecar(store: BudgetStore): Promise<void> {
    const child = this.sidecars[store].child;
    if (child) await stopChild(child);
    this.sidecars[store].child = undefined;
  }

  private tokenFile(store: BudgetStore): string {
    return join(this.dir, `tokens-${store}`, `${ACCOUNT}.json`);
  }

  /** Whether every sidecar started is still running. */
  get sidecarsRunning(): boolean {
    return BUDGET_STORES.every((store) => this.sidecars[store].child?.running() ?? true);
  }

  /** The process that answers a target's calls: the simulator for direct calls, else the proxy in front of it. */
  pidOf(target: GatewayTarget): number {
    const child = { direct: this.simulator, gateway: this.sidecars.memory.child, 'gateway-redis': this.sidecars.redis.child, 'bare-proxy': this.bare }[target];
    if (!child) throw new Error(`${target} is not running`);
    return child.pid;
  }

  /** redis-server's process, when it runs. */
  get redisPid(): number | undefined {
    return this.redis?.pid;
  }

  /** The ways to the price call of the targets this run measures. The real token is read from the memory sidecar's token file, as a bot reads it. */
  async calls(): Promise<Partial<Record<GatewayTarget, PriceCall>>> {
    const real = (JSON.parse(readFileSync(this.tokenFile('memory'), 'utf8')) as { access_token: string }).access_token;
    const direct = priceHeaders(real, this.credential.appKey, this.credential.appSecret);
    const shownReal = priceHeaders('$TOKEN', '$APPKEY', '$APPSECRET');
    const calls: Partial<Record<GatewayTarget, PriceCall>> = {
      direct: { url: `${this.simulatorUrl}${PRICE}`, headers: direct, shown: shownReal },
      'bare-proxy': { url: `http://127.0.0.1:${this.barePort}${PRICE}`, headers: direct, shown: shownReal },
    };
    for (const store of this.stores) calls[gatewayTargetOf[store]] = await this.gatewayCall(store);
    return calls;
  }

  /** The price call through the gateway of the sidecar counting in `store`, with the client's local token from that gateway. */
  async gatewayCall(store: BudgetStore): Promise<PriceCall> {
    const port = this.sidecars[store].gatewayPort;
    return {
      url: `http://127.0.0.1:${port}/${ACCOUNT}${PRICE}`,
      headers: priceHeaders(await this.localToken(port), this.client.appKey, this.client.appSecret),
      shown: priceHeaders('$LOCAL_TOKEN', '$LOCAL_APPKEY', '$LOCAL_APPSECRET'),
    };
  }

  /** The client's local token, from the gateway's tokenP (answered by the gateway; nothing reaches the broker). */
  private async localToken(gatewayPort: number): Promise<string> {
    const answer = await request(`http://127.0.0.1:${gatewayPort}/${ACCOUNT}/oauth2/tokenP`, {
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
  async budgetGranted(store: BudgetStore): Promise<number> {
    const text = (await httpGet(`${this.serverUrl(store)}/metrics`)).body.toString('utf8');
    const line = new RegExp(`^broker_token_gateway_budget_granted_total\\{[^}]*account="${ACCOUNT}"[^}]*\\} (\\S+)$`, 'm').exec(text);
    if (!line) throw new Error('the sidecar exports no broker_token_gateway_budget_granted_total for the account');
    return Number(line[1]);
  }

  /** Where the sidecar counting in `store` says its budget is counted (broker_token_gateway_budget_mode). */
  async budgetMode(store: BudgetStore): Promise<string | undefined> {
    const text = (await httpGet(`${this.serverUrl(store)}/metrics`)).body.toString('utf8');
    return /^broker_token_gateway_budget_mode\{[^}]*mode="([^"]+)"[^}]*\} 1$/m.exec(text)?.[1];
  }

  async stop(): Promise<void> {
    for (const child of [this.bare, this.sidecars.redis.child, this.sidecars.memory.child, this.redis, this.simulator]) if (child) await stopChild(child);
  }
}

export interface GatewayCommands {
  simulator: string;
  redis: string;
  sidecarOff: Record<BudgetStore, string>;
  sidecarDefault: Record<BudgetStore, string>;
  bare: string;
}

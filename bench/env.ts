/**
 * One benchmark environment: a broker simulator in this process (real clock, 60 s spacing), a temp dir with
 * the config, state and token files, and the sidecar started from it as a child process, as a user runs it.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../src/core/clock';
import { BrokerSimulator, generateCredential, type SimulatorCredential } from '../src/simulator';
import { configText, type AccountSpec } from '../test/helpers';
import { FatalError, childEnv, freePort, httpGet, onCleanup, sleep, startChild, tempDir, waitFor, type Child } from './lib';

export const CLI = join(__dirname, '..', 'src', 'cli.js');

/** After start-up work is over: the simulator has seen one proof per account, then this much longer. */
export const SETTLE_MS = 3_000;

interface EnvOptions {
  label: string;
  accounts: number;
  /** The sinks list (YAML) of each account, given the env's dir; a json sink per account by default. */
  sinks?: (dir: string) => string;
}

/** A config from the tests' `configText` with the sidecar's HTTP server on 127.0.0.1:`port`, logging warnings only. */
export function withServer(text: string, port: number): string {
  const served = text.replace('server: { enabled: false }', `server: { host: 127.0.0.1, port: ${port} }\nlog: { level: warn }`);
  if (served === text) throw new Error('configText no longer writes "server: { enabled: false }"; the bench cannot enable the server');
  return served;
}

export class BenchEnv {
  readonly dir: string;
  readonly configPath: string;
  readonly stateDir: string;
  readonly names: string[];
  /** Set once a sidecar has run here and written its state. */
  started = false;

  private constructor(
    readonly options: EnvOptions,
    readonly simulator: BrokerSimulator,
    readonly simulatorUrl: string,
    readonly port: number,
    dir: string,
    credentials: SimulatorCredential[],
  ) {
    this.dir = dir;
    this.stateDir = join(dir, 'state');
    this.configPath = join(dir, 'config.yaml');
    this.names = credentials.map((_, i) => `acct-${String(i).padStart(4, '0')}`);
    const sinks = options.sinks?.(dir) ?? `- { format: json, path: "${join(dir, 'tokens', '{account}.json')}" }`;
    const accounts: AccountSpec[] = credentials.map((credential, i) => ({ name: this.names[i]!, credential, sinks }));
    const text = withServer(configText(this.stateDir, simulatorUrl, accounts), port);
    mkdirSync(dir, { recursive: true });
    writeFileSync(this.configPath, text);
  }

  static async create(options: EnvOptions): Promise<BenchEnv> {
    const dir = tempDir(options.label);
    const credentials = Array.from({ length: options.accounts }, (_, i) => generateCredential('kis', `bench-${options.label}-${i}`, 'real'));
    const simulator = new BrokerSimulator({ clock: systemClock, credentials, spacingMs: 60_000 });
    const url = await simulator.listen(0, '127.0.0.1');
    onCleanup(() => simulator.close());
    return new BenchEnv(options, simulator, url, await freePort(), dir, credentials);
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get accounts(): number {
    return this.options.accounts;
  }

  /** The exact command a reader would type for this sidecar. */
  command(): string {
    return `node dist/src/cli.js start --config ${this.configPath}`;
  }

  startSidecar(): Child {
    this.started = true;
    return startChild(process.execPath, [CLI, 'start', '--config', this.configPath], childEnv());
  }

  async waitReady(child: Child, timeoutMs: number): Promise<void> {
    await waitFor(`${this.options.label}: /readyz 200`, timeoutMs, async () => {
      if (!child.running()) throw new FatalError(`the sidecar (${this.options.label}) exited: ${child.output()}`);
      return (await httpGet(`${this.base}/readyz`, 5_000)).status === 200;
    });
  }

  /** Ready, then one proof per account seen by the simulator, then SETTLE_MS: start-up work is over. */
  async waitSteady(child: Child, timeoutMs: number): Promise<void> {
    await this.waitReady(child, timeoutMs);
    await waitFor(`${this.options.label}: one proof per account`, timeoutMs, () => {
      if (!child.running()) throw new FatalError(`the sidecar (${this.options.label}) exited: ${child.output()}`);
      return this.simulator.stats().proofs >= this.accounts;
    });
    await sleep(SETTLE_MS);
    if (!child.running()) throw new Error(`the sidecar (${this.options.label}) exited: ${child.output()}`);
  }

  /** Ready from a previous run's state: no request to the broker for `quietMs`, then SETTLE_MS. */
  async waitQuiet(child: Child, timeoutMs: number, quietMs = 3_000): Promise<void> {
    await this.waitReady(child, timeoutMs);
    let last = -1;
    let since = Date.now();
    await waitFor(`${this.options.label}: no broker request for ${quietMs} ms`, timeoutMs, () => {
      if (!child.running()) throw new FatalError(`the sidecar (${this.options.label}) exited: ${child.output()}`);
      const seen = this.simulator.requestLog().length;
      if (seen !== last) {
        last = seen;
        since = Date.now();
      }
      return Date.now() - since >= quietMs;
    });
    await sleep(SETTLE_MS);
  }

  hasState(): boolean {
    return this.started && existsSync(this.stateDir);
  }
}

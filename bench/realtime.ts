/**
 * The real-time measurement: the sidecar's real-time endpoint side by side with a bare `ws` relay (bench/realtime-
 * relay.ts) in the same run, each in a process of its own in front of the simulator (its own process too), each
 * holding a session of its own key. The clients (bench/realtime-probe.ts, one process) time each record against a
 * direct session of a third key: the delay a hop adds per frame, one scenario at a time, alternating the two
 * targets, then the frames per second each fans out to 10 and 50 clients, and the resident memory each holds per
 * client.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { sha256 } from '../src/core/wire';
import { newLocalCredentials } from '../src/gateway/clients';
import { generateCredential, type SimulatorCredential } from '../src/simulator';
import { configText } from '../test/helpers';
import { CLI, withServer } from './env';
import { FatalError, childEnv, freePort, median, progress, startChild, stopChild, tempDir, until200, waitFor, type Child } from './lib';

export const REALTIME_TARGETS = ['sidecar', 'relay'] as const;
export type RealtimeTarget = (typeof REALTIME_TARGETS)[number];

const ACCOUNT = 'main';
const TR_ID = 'H0STCNT0';
/** Ten streams, as ten stocks a bot follows. */
const CODES = Array.from({ length: 10 }, (_, i) => String(100_000 + i));
export const WARMUP_MS = 1_000;
export const WINDOW_MS = 5_000;
/** Runs of each scenario for each target, alternating; the report gives the medians. */
export const ROUNDS = 3;

export interface Scenario {
  name: 'delay' | 'fanout-10' | 'fanout-50';
  clients: number;
  /** Frames a second per stream at the simulator (ten streams, one record each). */
  framesPerSecond: number;
}

/** Delay at an everyday rate (100 frames a second in all); fan-out at five times that, to 10 and 50 clients. */
export const SCENARIOS: Scenario[] = [
  { name: 'delay', clients: 10, framesPerSecond: 10 },
  { name: 'fanout-10', clients: 10, framesPerSecond: 50 },
  { name: 'fanout-50', clients: 50, framesPerSecond: 50 },
];

export interface ProbeResult {
  /** Records delivered to the clients within the window (each client's count, summed), and at the reference. */
  frames: number;
  upstreamFrames: number;
  seconds: number;
  /** Added delay per frame, ms. */
  p50: number;
  p99: number;
  max: number;
  /** Client connections closed during the run (the sidecar closes a client past its queue bound). */
  closed: number;
  /** Resident memory of the target process during the window, and right before the clients connected, bytes. */
  rss: number;
  rssBefore: number;
}

export interface RealtimeResult {
  /** Per scenario and target: the median of the rounds, figure by figure. */
  runs: Record<Scenario['name'], Record<RealtimeTarget, ProbeResult>>;
  /** Resident memory of each target with no client, after start-up, bytes. */
  idleRss: Record<RealtimeTarget, number>;
  /** Per target: the median over the 50-client rounds of (resident memory with the clients − right before) / clients. */
  perClient: Record<RealtimeTarget, number>;
  commands: { simulator: string; sidecar: string; relay: string; probe: string };
}

/** Figure by figure, the median of the rounds (closed connections: their sum). */
function medianOf(rounds: ProbeResult[]): ProbeResult {
  const m = (pick: (r: ProbeResult) => number) => median(rounds.map(pick));
  return {
    frames: m((r) => r.frames),
    upstreamFrames: m((r) => r.upstreamFrames),
    seconds: m((r) => r.seconds),
    p50: m((r) => r.p50),
    p99: m((r) => r.p99),
    max: m((r) => r.max),
    closed: rounds.reduce((n, r) => n + r.closed, 0),
    rss: m((r) => r.rss),
    rssBefore: m((r) => r.rssBefore),
  };
}

function rssOf(pid: number): number {
  const line = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return line ? Number(line[1]) * 1024 : NaN;
}

export async function postJson(url: string, body: unknown): Promise<Record<string, unknown>> {
  const answer = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return (await answer.body.json()) as Record<string, unknown>;
}

export async function approvalKey(url: string, appKey: string, secret: string): Promise<string> {
  const body = await postJson(`${url}/oauth2/Approval`, { grant_type: 'client_credentials', appkey: appKey, secretkey: secret });
  if (typeof body['approval_key'] !== 'string') throw new FatalError(`no approval key from ${url}`);
  return body['approval_key'];
}

/** The gateway (one client, `bench`, on account main) and the real-time endpoint, as the sidecar's config has them. */
export function endpointSection(gatewayPort: number, realtimePort: number, client: { appKey: string; appSecret: string }): string {
  return [
    'gateway:',
    '  enabled: true',
    `  port: ${gatewayPort}`,
    '  clients:',
    `    - { name: bench, accounts: [${ACCOUNT}], appKey: "${client.appKey}", appSecretSha256: "${sha256(client.appSecret).toString('hex')}" }`,
    'realtime:',
    '  enabled: true',
    `  port: ${realtimePort}`,
    '  maxClients: 128',
    '',
  ].join('\n');
}

export async function measureRealtime(): Promise<RealtimeResult> {
  const dir = tempDir('realtime');
  const key = (tag: string): SimulatorCredential => generateCredential('kis', tag, 'real');
  const [sidecarKey, relayKey, referenceKey] = [key('bench-rt-sidecar'), key('bench-rt-relay'), key('bench-rt-reference')];
  const client = newLocalCredentials();
  const [simPort, serverPort, gatewayPort, realtimePort, relayPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const simUrl = `http://127.0.0.1:${simPort}`;
  const simWs = `ws://127.0.0.1:${simPort}`;
  const children: Child[] = [];
  try {
    const credentialsFile = join(dir, 'credentials.json');
    writeFileSync(credentialsFile, JSON.stringify([sidecarKey, relayKey, referenceKey]), { mode: 0o600 });
    const simArgs = [join(__dirname, 'simulator-server.js'), credentialsFile, String(simPort), '1000000'];
    const simulator = startChild(process.execPath, simArgs, childEnv());
    children.push(simulator);
    await until200('the simulator', `${simUrl}/_sim/stats`, simulator);

    const configPath = join(dir, 'config.yaml');
    const top = endpointSection(gatewayPort, realtimePort, client);
    const sinks = `- { format: json, path: "${join(dir, 'tokens', 'main.json')}" }`;
    writeFileSync(configPath, withServer(configText(join(dir, 'state'), simUrl, [{ name: ACCOUNT, credential: sidecarKey, sinks }], top), serverPort), {
      mode: 0o600,
    });
    const sidecarArgs = [CLI, 'start', '--config', configPath];
    const sidecar = startChild(process.execPath, sidecarArgs, childEnv());
    children.push(sidecar);
    await until200('the sidecar', `http://127.0.0.1:${serverPort}/readyz`, sidecar);

    const relayArgs = [join(__dirname, 'realtime-relay.js'), simWs, String(relayPort), TR_ID, CODES.join(',')];
    const relay = startChild(process.execPath, relayArgs, {
      ...childEnv(),
      RELAY_APPROVAL_KEY: await approvalKey(simUrl, relayKey.appKey, relayKey.appSecret),
    });
    children.push(relay);
    await waitFor('the relay', 20_000, () => relay.output().includes('relay listening'));

    const localKey = await approvalKey(`http://127.0.0.1:${gatewayPort}/${ACCOUNT}`, client.appKey, client.appSecret);
    const referenceApproval = await approvalKey(simUrl, referenceKey.appKey, referenceKey.appSecret);
    const pidOf: Record<RealtimeTarget, number> = { sidecar: sidecar.pid, relay: relay.pid };
    const idleRss = { sidecar: rssOf(sidecar.pid), relay: rssOf(relay.pid) };
    const runs = {} as RealtimeResult['runs'];
    const perClient: Record<RealtimeTarget, number> = { sidecar: NaN, relay: NaN };
    const probeArgs = (target: RealtimeTarget, scenario: Scenario) =>
      JSON.stringify({
        simulatorWs: simWs,
        target: target === 'sidecar' ? `ws://127.0.0.1:${realtimePort}/${ACCOUNT}/tryitout` : `ws://127.0.0.1:${relayPort}`,
        clients: scenario.clients,
        trId: TR_ID,
        codes: CODES,
        register: target === 'sidecar',
        warmupMs: WARMUP_MS,
        windowMs: WINDOW_MS,
      });
    async function probeOnce(target: RealtimeTarget, scenario: Scenario, round: number): Promise<ProbeResult> {
      // The clients of the run before have left: a moment for the target to let their sockets go.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const rssBefore = rssOf(pidOf[target]);
      progress(`realtime: ${scenario.name}, ${scenario.clients} clients at ${scenario.framesPerSecond * CODES.length} frames/s, ${target}, round ${round + 1}`);
      const probe = startChild(process.execPath, [join(__dirname, 'realtime-probe.js'), probeArgs(target, scenario)], {
        ...childEnv(),
        REFERENCE_APPROVAL_KEY: referenceApproval,
        TARGET_APPROVAL_KEY: localKey,
      });
      await waitFor(`the probe's window (${target})`, 60_000, () => {
        if (!probe.running() && !probe.output().includes('"measuring"')) throw new FatalError(`the probe exited: ${probe.output()}`);
        return probe.output().includes('"measuring"');
      });
      await new Promise((resolve) => setTimeout(resolve, WINDOW_MS / 2));
      const rss = rssOf(pidOf[target]);
      const { code } = await probe.exited;
      const last = probe.output().trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !last.startsWith('{"frames"')) throw new FatalError(`the probe failed (${String(code)}): ${probe.output().slice(-500)}`);
      return { ...(JSON.parse(last) as Omit<ProbeResult, 'rss' | 'rssBefore'>), rss, rssBefore };
    }
    for (const scenario of SCENARIOS) {
      await postJson(`${simUrl}/_sim/realtime/rate`, { framesPerSecond: scenario.framesPerSecond, recordsPerFrame: 1 });
      const rounds: Record<RealtimeTarget, ProbeResult[]> = { sidecar: [], relay: [] };
      for (let round = 0; round < ROUNDS; round++) {
        // The relay first in one round, the sidecar first in the next: neither always runs on a warmer machine.
        const order = round % 2 === 0 ? REALTIME_TARGETS : [...REALTIME_TARGETS].reverse();
        for (const target of order) rounds[target].push(await probeOnce(target, scenario, round));
      }
      runs[scenario.name] = { sidecar: medianOf(rounds.sidecar), relay: medianOf(rounds.relay) };
      if (scenario.name === 'fanout-50') {
        for (const target of REALTIME_TARGETS) perClient[target] = median(rounds[target].map((r) => (r.rss - r.rssBefore) / scenario.clients));
      }
    }
    const node = (args: string[]) => `node ${args.map((a) => a.replace(/^.*\/dist\//, 'dist/')).join(' ')}`;
    return {
      runs,
      idleRss,
      perClient,
      commands: {
        simulator: node(simArgs),
        sidecar: node(sidecarArgs),
        relay: `RELAY_APPROVAL_KEY=$KEY ${node(relayArgs)}`,
        probe: "REFERENCE_APPROVAL_KEY=$KEY TARGET_APPROVAL_KEY=$LOCAL_KEY node dist/bench/realtime-probe.js '{...}'",
      },
    };
  } finally {
    for (const child of children.reverse()) await stopChild(child);
  }
}

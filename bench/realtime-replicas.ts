/**
 * The delay Redis adds to the real-time session shared by replicas (issue 25), in one run: two sidecar replicas on
 * one redis-server and one key, the holder running the session at the simulator, the other receiving its frames
 * through Redis. The same probe as § 7 (bench/realtime-probe.ts) times each record against a direct session of a
 * second key, at clients of the holder (the path of one replica alone) and at clients of the other replica (the
 * path through Redis), alternating, so the two figures come from the same machine in the same minutes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { newLocalCredentials } from '../src/gateway/clients';
import { generateCredential } from '../src/simulator';
import { configText } from '../test/helpers';
import { CLI, withServer } from './env';
import { FatalError, childEnv, freePort, median, progress, startChild, stopChild, tempDir, until200, waitFor, type Child } from './lib';
import { approvalKey, endpointSection, postJson, ROUNDS, SCENARIOS, WARMUP_MS, WINDOW_MS, type ProbeResult } from './realtime';

const REPLICA_PATHS = ['holder', 'relayed'] as const;
type ReplicaPath = (typeof REPLICA_PATHS)[number];

export interface ReplicaDelayResult {
  clients: number;
  framesPerSecond: number;
  /** Per path, the medians of the rounds: added delay p50 and p99 (ms), frames received. */
  paths: Record<ReplicaPath, { p50: number; p99: number; frames: number; closed: number }>;
}

const CODES = Array.from({ length: 10 }, (_, i) => String(100_000 + i));

async function isHolder(serverPort: number): Promise<boolean> {
  const text = await (await request(`http://127.0.0.1:${serverPort}/metrics`)).body.text();
  return /^broker_token_realtime_lease_holder\{[^}]*\} 1$/m.test(text);
}

export async function measureRealtimeReplicas(): Promise<ReplicaDelayResult> {
  const scenario = SCENARIOS[0]!;
  const dir = tempDir('realtime-replicas');
  const [sharedKey, referenceKey] = [generateCredential('kis', 'bench-rt-shared', 'real'), generateCredential('kis', 'bench-rt-ref2', 'real')];
  const client = newLocalCredentials();
  const [simPort, redisPort] = [await freePort(), await freePort()];
  const simUrl = `http://127.0.0.1:${simPort}`;
  const simWs = `ws://127.0.0.1:${simPort}`;
  const children: Child[] = [];
  try {
    const credentialsFile = join(dir, 'credentials.json');
    writeFileSync(credentialsFile, JSON.stringify([sharedKey, referenceKey]), { mode: 0o600 });
    const simulator = startChild(process.execPath, [join(__dirname, 'simulator-server.js'), credentialsFile, String(simPort), '1000000'], childEnv());
    children.push(simulator);
    await until200('the simulator', `${simUrl}/_sim/stats`, simulator);
    const redis = startChild('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
    children.push(redis);
    await waitFor('redis-server', 10_000, () => redis.output().includes('Ready to accept connections'));

    const replicas: Array<{ child: Child; serverPort: number; gatewayPort: number; realtimePort: number }> = [];
    for (let i = 0; i < 2; i++) {
      const [serverPort, gatewayPort, realtimePort] = [await freePort(), await freePort(), await freePort()];
      const top = `store: { type: redis, url: "redis://127.0.0.1:${redisPort}/0" }\n${endpointSection(gatewayPort, realtimePort, client)}`;
      const configPath = join(dir, `config-${i}.yaml`);
      const sinks = `- { format: json, path: "${join(dir, `tokens-${i}`, 'main.json')}" }`;
      writeFileSync(configPath, withServer(configText(join(dir, `state-${i}`), simUrl, [{ name: 'main', credential: sharedKey, sinks }], top), serverPort), {
        mode: 0o600,
      });
      const child = startChild(process.execPath, [CLI, 'start', '--config', configPath], childEnv());
      children.push(child);
      await until200(`replica ${i}`, `http://127.0.0.1:${serverPort}/readyz`, child);
      replicas.push({ child, serverPort, gatewayPort, realtimePort });
    }
    let holderIndex = -1;
    await waitFor('a holder', 20_000, async () => {
      for (const [i, r] of replicas.entries()) if (await isHolder(r.serverPort)) holderIndex = i;
      return holderIndex >= 0;
    });
    const pathOf: Record<ReplicaPath, (typeof replicas)[number]> = { holder: replicas[holderIndex]!, relayed: replicas[1 - holderIndex]! };
    const referenceApproval = await approvalKey(simUrl, referenceKey.appKey, referenceKey.appSecret);
    await postJson(`${simUrl}/_sim/realtime/rate`, { framesPerSecond: scenario.framesPerSecond, recordsPerFrame: 1 });
    const rounds: Record<ReplicaPath, ProbeResult[]> = { holder: [], relayed: [] };
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? REPLICA_PATHS : [...REPLICA_PATHS].reverse();
      for (const path of order) {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        progress(
          `realtime replicas: ${scenario.clients} clients at ${scenario.framesPerSecond * CODES.length} frames/s on the ${path} replica, round ${round + 1}`,
        );
        const target = pathOf[path];
        const probe = startChild(
          process.execPath,
          [
            join(__dirname, 'realtime-probe.js'),
            JSON.stringify({
              simulatorWs: simWs,
              target: `ws://127.0.0.1:${target.realtimePort}/main/tryitout`,
              clients: scenario.clients,
              trId: 'H0STCNT0',
              codes: CODES,
              register: true,
              warmupMs: WARMUP_MS,
              windowMs: WINDOW_MS,
            }),
          ],
          {
            ...childEnv(),
            REFERENCE_APPROVAL_KEY: referenceApproval,
            TARGET_APPROVAL_KEY: await approvalKey(`http://127.0.0.1:${target.gatewayPort}/main`, client.appKey, client.appSecret),
          },
        );
        const { code } = await probe.exited;
        const last = probe.output().trim().split('\n').at(-1) ?? '';
        if (code !== 0 || !last.startsWith('{"frames"')) throw new FatalError(`the probe failed (${String(code)}): ${probe.output().slice(-500)}`);
        rounds[path].push({ ...(JSON.parse(last) as Omit<ProbeResult, 'rss' | 'rssBefore'>), rss: 0, rssBefore: 0 });
      }
    }
    const of = (path: ReplicaPath) => ({
      p50: median(rounds[path].map((r) => r.p50)),
      p99: median(rounds[path].map((r) => r.p99)),
      frames: median(rounds[path].map((r) => r.frames)),
      closed: rounds[path].reduce((n, r) => n + r.closed, 0),
    });
    return { clients: scenario.clients, framesPerSecond: scenario.framesPerSecond * CODES.length, paths: { holder: of('holder'), relayed: of('relayed') } };
  } finally {
    for (const child of children.reverse()) await stopChild(child);
  }
}

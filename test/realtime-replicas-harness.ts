/**
 * Sidecar replicas as real processes on one redis-server, for the real-time replicas' tests (KIS and Kiwoom): each
 * with its gateway (the clients' local credentials) and its real-time endpoint, and who holds an app key's lease.
 */
import type { TestContext } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { VOLUME_STEP, type SimulatorCredential } from '../src/simulator';
import { clientEntries, type Client } from './gateway-harness';
import { CLI, configText, freePort, spawnForTest, tempDir, until } from './helpers';
import { firstGap, HANG_MS } from './realtime-harness';
import type { RedisServer } from './redis-harness';

const PREFIX = 'broker-token-sidecar:';

export interface ReplicaProcess {
  index: number;
  child: ChildProcess;
  /** The gateway's base for the account `main`. */
  gateway: string;
  /** ws://127.0.0.1:port/main, the real-time endpoint's base for the account. */
  ws: string;
}

/** A replica (`start`) on the Redis store, serving `main` on `credential`; resolves once its gateway answers. */
export async function startReplica(
  t: TestContext,
  spec: { index: number; redis: RedisServer; simUrl: string; credential: SimulatorCredential; clients: Client[]; ready: (gateway: string) => Promise<boolean> },
): Promise<ReplicaProcess> {
  const { index } = spec;
  const dir = tempDir(t, 'bts-rtrep-');
  const [gatewayPort, realtimePort] = [await freePort(), await freePort()];
  const top = [
    `store:\n  type: redis\n  url: ${spec.redis.url}`,
    `gateway:\n  enabled: true\n  port: ${gatewayPort}\n  clients:\n${clientEntries(spec.clients)}`,
    `realtime:\n  enabled: true\n  port: ${realtimePort}\n  client: { pingInterval: 2s }`,
  ].join('\n');
  writeFileSync(
    join(dir, 'config.yaml'),
    configText(join(dir, 'state'), spec.simUrl, [{ name: 'main', credential: spec.credential, extra: 'renewal: { spacing: 1s }' }], top),
  );
  const child = spawnForTest(t, process.execPath, [CLI, 'start', '--config', join(dir, 'config.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  if (process.env.BTS_DEBUG) {
    child.stdout!.on('data', (d: Buffer) => process.stderr.write(`[r${index} ${child.pid}] ${d.toString()}`));
    child.stderr!.on('data', (d: Buffer) => process.stderr.write(`[r${index} ${child.pid}] ${d.toString()}`));
  } else {
    child.stdout!.resume();
    child.stderr!.resume();
  }
  const gateway = `http://127.0.0.1:${gatewayPort}/main`;
  await until(`replica ${index}'s gateway`, HANG_MS, () => spec.ready(gateway), 200);
  return { index, child, gateway, ws: `ws://127.0.0.1:${realtimePort}/main` };
}

/** The pid of the replica holding the app key's lease (its value is `host:pid:random fence`); NaN when none does. */
export async function holderPid(redis: RedisServer, appKey: string): Promise<number> {
  return Number((await redis.client.get(`${PREFIX}realtime:${digest(appKey)}:lease`))?.split(':')[1] ?? NaN);
}

/**
 * SIGKILLs the replica holding the app key's lease (one of `replicas`) and waits for another to take the lease:
 * the victim, and how long after the kill the new holder took it (ms).
 */
export async function killHolder<R extends ReplicaProcess>(
  redis: RedisServer,
  appKey: string,
  replicas: R[],
  what: string,
  before: () => void = () => undefined,
): Promise<{ victim: R; newHolderMs: number; killedAt: number }> {
  const pid = await holderPid(redis, appKey);
  const victim = replicas.find((r) => r.child.pid === pid);
  if (!victim) throw new Error(`the holder (pid ${pid}) is none of the replicas`);
  before();
  victim.child.kill('SIGKILL');
  const killedAt = Date.now();
  await until(
    `a new holder after ${what}`,
    HANG_MS,
    async () => {
      const now = await holderPid(redis, appKey);
      return Number.isFinite(now) && now !== pid;
    },
    20,
  );
  return { victim, newHolderMs: Date.now() - killedAt, killedAt };
}

/** The app key's digest, as the sidecar names its keys in Redis (budget/keys.ts). */
function digest(appKey: string): string {
  return createHash('sha256').update(appKey, 'utf8').digest('hex').slice(0, 16);
}

/** A raw client's socket to a replica's endpoint, open, terminated when the test ends. */
export async function openSocket(t: TestContext, url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject));
  t.after(() => ws.terminate());
  return ws;
}

/** The streams of a client (per stream the volumes it saw, in order) with a gap, each named. */
export function streamGaps(name: string, volumes: ReadonlyMap<string, number[]>): string[] {
  const found: string[] = [];
  for (const [stream, seen] of volumes) {
    const gap = firstGap(seen, VOLUME_STEP);
    if (gap) found.push(`${name} ${stream}: ${gap}`);
  }
  return found;
}

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import Redis from 'ioredis';
import { freePort } from './helpers';

/** A real redis-server on a free loopback port, without persistence, that a test can stop and start again. */
export interface RedisServer {
  url: string;
  port: number;
  client: Redis;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export function redisAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0;
}

export async function startRedis(t: { after(fn: () => Promise<void> | void): void }): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined); // refused until redis-server listens: connect() reports it
    for (let i = 0; i < 100; i++) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode} (port ${port} taken?)`);
      try {
        await probe.connect();
        await probe.ping();
        probe.disconnect();
        return;
      } catch {
        probe.disconnect();
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new Error('redis-server did not start');
  };
  const stop = async () => {
    // Killed by stop() before: its exitCode stays null (signalCode is set), and no second 'exit' will come.
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };
  await start();
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: (n) => Math.min(n * 100, 1000) });
  // Tests stop Redis on purpose; the commands they send meanwhile fail on their own, the reconnects need no log.
  client.on('error', () => undefined);
  t.after(async () => {
    client.disconnect();
    await stop();
  });
  return { url: `redis://127.0.0.1:${port}/0`, port, client, stop, start };
}

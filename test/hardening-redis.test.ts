import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../src/core/clock';
import {
  CLI,
  LogCapture,
  MINUTE,
  recordReliability,
  T0,
  closeBeforeCleanup,
  configText,
  exited,
  freePort,
  markerCredential,
  parseTestConfig,
  runAccountUntil,
  spawnForTest,
  startSimulator,
  tempDir,
  testSidecar,
  until,
  waitFor,
} from './helpers';
import { redisAvailable, startRedis } from './redis-harness';

/**
 * Issue 15, item 3: a replica whose Redis is down (refused, or a port that accepts and never answers) when it
 * starts. The README's promise: it serves the last good token from its local copy, issues nothing, and says so,
 * once; it joins the shared store again when Redis returns, and stops on SIGTERM meanwhile.
 */

// The sidecar's own stop bound (runUntilSignalled): past it the process exits 1 instead of 0.
const STOP_BOUND_MS = 15_000;
const OUTAGE = /shared state store unreachable/;
const BACK = /shared state store reachable again/;

function requireRedis(t: { skip(m: string): void }): boolean {
  if (redisAvailable()) return true;
  if (process.env.CI) throw new Error('redis-server is required in CI');
  t.skip('redis-server not installed');
  return false;
}

type Replica = ChildProcess & { output: () => string; startedAt: number };

function spawnReplica(t: { after(fn: () => void): void }, config: string): Replica {
  const startedAt = Date.now();
  const child = spawnForTest(t, process.execPath, [CLI, 'start', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] }) as Replica;
  const chunks: string[] = [];
  child.stdout!.on('data', (d: Buffer) => chunks.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => chunks.push(d.toString()));
  child.output = () => chunks.join('');
  child.startedAt = startedAt;
  return child;
}

const linesMatching = (text: string, pattern: RegExp) => text.split('\n').filter((line) => pattern.test(line));
const stackLines = (text: string) => text.split('\n').filter((line) => /^\s+at /.test(line));

/** How long Node takes to load the CLI and exit, on this machine now: the part of start-up that is not ours. */
async function bareStartMs(t: { after(fn: () => void): void }): Promise<number> {
  const startedAt = Date.now();
  await exited(spawnForTest(t, process.execPath, [CLI, '--version'], { stdio: 'ignore' }));
  return Date.now() - startedAt;
}

async function readyz(port: number): Promise<number | undefined> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(500) })).status;
  } catch {
    return undefined;
  }
}

/** Polls /readyz from the process's spawn until the first 200; returns the ms since the spawn. */
async function firstReadyAfterSpawn(replica: Replica, port: number, ms: number): Promise<number> {
  await waitFor(
    () => `/readyz 200 (log so far:\n${replica.output()})`,
    ms,
    async () => ((await readyz(port)) === 200 ? true : undefined),
    20,
  );
  return Date.now() - replica.startedAt;
}

async function sigtermExit(replica: Replica): Promise<{ code: number | null; ms: number }> {
  const sentAt = Date.now();
  replica.kill('SIGTERM');
  const code = await Promise.race([exited(replica), new Promise<'hung'>((r) => setTimeout(() => r('hung'), STOP_BOUND_MS + 5_000))]);
  assert.notEqual(code, 'hung', `SIGTERM ignored; log:\n${replica.output()}`);
  return { code: code as number | null, ms: Date.now() - sentAt };
}

const tokenIn = (path: string): string | undefined => {
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { access_token: string }).access_token;
  } catch {
    return undefined;
  }
};

describe('a replica started while its Redis is down', () => {
  for (const kind of ['refused', 'blackhole'] as const) {
    test(
      `Redis ${kind === 'refused' ? 'stopped (connection refused)' : 'a port that accepts and never answers'}: ready from the local copy within a second, no issuance, no stack trace, one outage line; SIGTERM honoured`,
      { timeout: 120_000 },
      async (t) => {
        if (!requireRedis(t)) return;
        const redis = await startRedis(t);
        const cred = markerCredential('kis', `down-${kind}`);
        const { simulator, url } = await startSimulator(t, [cred], { clock: systemClock as never });
        const dir = tempDir(t);
        const tokenFile = join(dir, 'token.json');
        const port = await freePort();
        const configFor = (redisUrl: string, storeExtra = '') =>
          configText(
            join(dir, 'state'),
            url,
            [{ name: 'main', credential: cred, sinks: `- { format: json, path: ${tokenFile} }` }],
            `store:\n  type: redis\n  url: ${redisUrl}\n${storeExtra}`,
          ).replace('server: { enabled: false }', `server: { host: 127.0.0.1, port: ${port} }`);
        const config = join(dir, 'config.yaml');

        // A first life with Redis up: one issuance, the token in the file and in the local copy.
        writeFileSync(config, configFor(redis.url));
        const first = spawnReplica(t, config);
        await until('the first token', 20_000, () => tokenIn(tokenFile) !== undefined);
        const token = tokenIn(tokenFile)!;
        assert.equal((await sigtermExit(first)).code, 0);
        assert.equal(simulator.stats().tokenRequests, 1);

        // Redis goes away, and so does the token file (the replica must repair it from its local copy).
        if (kind === 'refused') {
          await redis.stop();
        } else {
          const sockets = new Set<Socket>();
          const blackhole = createServer((socket) => {
            sockets.add(socket);
            socket.on('error', () => undefined);
            socket.on('close', () => sockets.delete(socket));
          });
          await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
          t.after(() => {
            for (const socket of sockets) socket.destroy();
            blackhole.close();
          });
          // A silent Redis is an outage once it has not answered within the connect timeout (5 s by default).
          writeFileSync(config, configFor(`redis://127.0.0.1:${(blackhole.address() as { port: number }).port}/0`, '  connectTimeout: 1s\n'));
        }
        rmSync(tokenFile);

        // The 1 s is the sidecar's own start-up: from the command's start to serving, as it logs it (startupMs).
        // Node's own start and module loading (0.7 to 1.2 s on this machine, more when it is busy) come before
        // and are shown beside it; before the fix, neither ever ended.
        const bare = await bareStartMs(t);
        const replica = spawnReplica(t, config);
        const readyAfterMs = await firstReadyAfterSpawn(replica, port, 15_000);
        const startupMs = Number(/startupMs"?:\s*(\d+)/.exec(replica.output())?.[1]);
        t.diagnostic(`/readyz 200 ${readyAfterMs} ms after the spawn, of which ${startupMs} ms the sidecar's own start-up; a bare CLI start took ${bare} ms`);
        assert.ok(
          startupMs < 1_000,
          `the sidecar's own start-up took ${startupMs} ms (ready ${readyAfterMs} ms after the spawn; a bare CLI start takes ${bare} ms)`,
        );
        recordReliability({
          kind: 'fault',
          category: 'redis',
          fault: kind === 'refused' ? 'Redis down (connection refused) when a replica starts' : 'Redis accepts and never answers when a replica starts',
          reason: '(store_up 0)',
          alert: 'shared state store unreachable',
          issuances: 0,
          outcome: `ready from the local copy ${startupMs} ms after the command started (${readyAfterMs} ms after the spawn, Node's own start included); file repaired; one outage line, no stack trace`,
        });
        assert.equal(tokenIn(tokenFile), token, 'the token file repaired from the local copy');
        const status = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as { accounts: Array<{ usable: boolean; tokenId: string | null }> };
        assert.equal(status.accounts[0]!.usable, true);
        const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        assert.match(metrics, /broker_token_store_up\{store="redis"\} 0/);

        // Several reconnect attempts later: still one outage line, no stack, nothing issued.
        await until('the outage line', 10_000, () => OUTAGE.test(replica.output()));
        await new Promise((r) => setTimeout(r, 3_000));
        const log = replica.output();
        assert.deepEqual(stackLines(log), [], `no stack trace in the log:\n${log}`);
        assert.equal(linesMatching(log, OUTAGE).length, 1, `one outage line:\n${log}`);
        assert.equal(linesMatching(log, BACK).length, 0);
        assert.equal(simulator.stats().tokenRequests, 1, 'nothing issued while Redis is away');

        if (kind === 'refused') {
          // Redis returns (empty: no persistence): one 'back' line, and the replica offers its state back.
          await redis.start();
          await until(
            'the shared state offered back',
            15_000,
            async () => (await redis.client.get('broker-token-sidecar:state:main').catch(() => null)) !== null,
          );
          const shared = JSON.parse((await redis.client.get('broker-token-sidecar:state:main'))!) as { token: { accessToken: string } };
          assert.equal(shared.token.accessToken, token);
          await until('one back line', 5_000, () => linesMatching(replica.output(), BACK).length === 1);
          assert.match(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(), /broker_token_store_up\{store="redis"\} 1/);
          // And away again, to stop the replica while it cannot reach Redis.
          await redis.stop();
          await until('the second outage line', 10_000, () => linesMatching(replica.output(), OUTAGE).length === 2);
        }

        const stopped = await sigtermExit(replica);
        assert.equal(stopped.code, 0, `a clean stop, not the stop bound's exit; log:\n${replica.output()}`);
        t.diagnostic(`exited ${stopped.ms} ms after SIGTERM, Redis down`);
        assert.ok(stopped.ms < STOP_BOUND_MS, `stopped ${stopped.ms} ms after SIGTERM`);
        const final = replica.output();
        assert.deepEqual(stackLines(final), [], `no stack trace in the log:\n${final}`);
        assert.equal(linesMatching(final, BACK).length, kind === 'refused' ? 1 : 0, final);
        assert.equal(simulator.stats().tokenRequests, 1);
        assert.equal(tokenIn(tokenFile), token);
        assert.ok(existsSync(tokenFile));
      },
    );
  }

  test('no valid token in the local copy and Redis down: not ready, issues nothing, and says it waits for the store', { timeout: 60_000 }, async (t) => {
    const cred = markerCredential('kis', 'down-empty');
    const { simulator, url } = await startSimulator(t, [cred], { clock: systemClock as never });
    const dir = tempDir(t);
    const port = await freePort();
    const refused = await freePort(); // nothing listens there
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      configText(
        join(dir, 'state'),
        url,
        [{ name: 'main', credential: cred, sinks: `- { format: json, path: ${join(dir, 'token.json')} }` }],
        `store:\n  type: redis\n  url: redis://127.0.0.1:${refused}/0\n`,
      ).replace('server: { enabled: false }', `server: { host: 127.0.0.1, port: ${port} }`),
    );
    const replica = spawnReplica(t, config);
    await until('the HTTP server', 15_000, async () => (await readyz(port)) !== undefined, 20);
    await new Promise((r) => setTimeout(r, 2_000));
    assert.equal(await readyz(port), 503);
    const status = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as { accounts: Array<{ ready: boolean; waitingFor: string }> };
    assert.equal(status.accounts[0]!.ready, false);
    assert.equal(status.accounts[0]!.waitingFor, 'store_unavailable');
    assert.equal(simulator.stats().tokenRequests, 0);
    const stopped = await sigtermExit(replica);
    assert.equal(stopped.code, 0);
    const log = replica.output();
    assert.deepEqual(stackLines(log), [], log);
    assert.equal(linesMatching(log, OUTAGE).length, 1, log);
  });
});

describe('a Redis entry is checked like a broker answer', () => {
  test('a shared state whose token expires in 2100, announced by a "peer": set aside with its reason, the replica keeps its token and its files', async (t) => {
    if (!requireRedis(t)) return;
    const redis = await startRedis(t);
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'redistrust');
    const { simulator, url, clock } = await startSimulator(t, [cred]);
    const log = new LogCapture();
    const text = configText(join(dir, 'state'), url, [{ name: 'main', credential: cred }], `store:\n  type: redis\n  url: ${redis.url}\n`);
    const sidecar = testSidecar(parseTestConfig(text, dir), clock, { logger: log.logger });
    await sidecar.open();
    closeBeforeCleanup(t, () => sidecar.close());
    await until('the store', 5_000, () => sidecar.store.health().up);
    await runAccountUntil(sidecar, 'main', clock, T0 + MINUTE);
    const good = sidecar.views()[0]!.snapshot.state.token!;
    // Someone with access to Redis writes a newer revision whose token "lives" until 2100, and announces it.
    const key = 'broker-token-sidecar:state:main';
    const shared = JSON.parse((await redis.client.get(key))!) as { revision: number; token: { expiresAt: number } };
    shared.revision += 1;
    shared.token.expiresAt = Date.UTC(2100, 0, 1);
    await redis.client.set(key, JSON.stringify(shared));
    await redis.client.publish('broker-token-sidecar:changed', 'main');
    await until(
      'the entry set aside',
      5_000,
      () => /the shared state of main \(revision \d+\) was set aside: the token's expiry lies beyond maxLifetime/.test(log.text()),
      20,
    );
    await runAccountUntil(sidecar, 'main', clock, T0 + 2 * MINUTE);
    await sidecar.sinks.idle();
    assert.equal(sidecar.views()[0]!.snapshot.state.token!.expiresAt, good.expiresAt, "the believed expiry is the broker's");
    assert.ok(!readFileSync(join(dir, 'sinks', 'main.json'), 'utf8').includes('2100-'), 'the year 2100 reached no file');
    assert.equal(simulator.stats().tokenRequests, 1);
  });
});

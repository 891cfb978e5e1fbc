import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ScaledClock, TEST_CLOCK_ENV, systemClock } from '../src/core/clock';
import type { Sidecar } from '../src/sidecar';
import {
  CLI,
  HOUR,
  tier,
  MINUTE,
  SECOND,
  T0,
  configText,
  markerCredential,
  parseTestConfig,
  recordReliability,
  runAccountUntil,
  startSimulator,
  tempDir,
  testSidecar,
  freePort,
  spawnForTest,
  until,
  closeBeforeCleanup,
  LogCapture,
  exited,
  waitFor,
} from './helpers';
import { redisAvailable, startRedis, type RedisServer } from './redis-harness';
import { createServer, type Socket } from 'node:net';

function requireRedis(t: { skip(m: string): void }): boolean {
  if (redisAvailable()) return true;
  if (process.env.CI) throw new Error('redis-server is required in CI');
  t.skip('redis-server not installed');
  return false;
}

function replicaConfig(dir: string, simulatorUrl: string, redis: RedisServer, cred: ReturnType<typeof markerCredential>, extra = '', store = '') {
  return configText(
    join(dir, 'state'),
    simulatorUrl,
    [{ name: 'main', credential: cred, extra, sinks: `- { format: json, path: ${join(dir, 'token.json')} }` }],
    `store:\n  type: redis\n  url: ${redis.url}\n${store}`,
  );
}

const tokenIn = (dir: string): string | undefined => {
  try {
    return (JSON.parse(readFileSync(join(dir, 'token.json'), 'utf8')) as { access_token: string }).access_token;
  } catch {
    return undefined;
  }
};

describe('one token shared by replicas through Redis (in-process)', () => {
  test('two replicas: one issuance, the other takes it up; Redis losing its data costs no issuance', async (t) => {
    if (!requireRedis(t)) return;
    const redis = await startRedis(t);
    const cred = markerCredential('kis', 'shared');
    const { simulator, url, clock } = await startSimulator(t, [cred]);
    const replicas: Array<{ dir: string; sidecar: Sidecar }> = [];
    for (let i = 0; i < 2; i++) {
      const dir = tempDir(t);
      const sidecar = testSidecar(parseTestConfig(replicaConfig(dir, url, redis, cred), dir), clock);
      await sidecar.open();
      closeBeforeCleanup(t, () => sidecar.close());
      replicas.push({ dir, sidecar });
    }
    await until('the store', 5_000, () => replicas.every((r) => r.sidecar.store.health().up));
    // Both decide to issue at the same moment; the lease lets one through.
    await Promise.all(replicas.map((r) => runAccountUntil(r.sidecar, 'main', clock, T0 + 10 * SECOND)));
    await until('both files', 2_000, () => replicas.every((r) => tokenIn(r.dir) !== undefined));
    assert.equal(simulator.stats().tokenRequests, 1);
    assert.equal(tokenIn(replicas[0]!.dir), tokenIn(replicas[1]!.dir));
    // Redis loses everything (a restart without persistence): the replicas offer their state back.
    await redis.client.flushall();
    await runAccountUntil(replicas[1]!.sidecar, 'main', clock, T0 + MINUTE);
    const shared = JSON.parse((await redis.client.get('broker-token-sidecar:state:main'))!) as { token: { accessToken: string } };
    assert.equal(shared.token.accessToken, tokenIn(replicas[0]!.dir));
    // A day of renewals, both replicas ticking: still one request per renewal.
    for (let hour = 1; hour <= 24; hour++) {
      for (const r of replicas) await runAccountUntil(r.sidecar, 'main', clock, T0 + hour * HOUR);
    }
    await until('both files', 2_000, () => tokenIn(replicas[0]!.dir) === tokenIn(replicas[1]!.dir));
    assert.equal(simulator.stats().issued, 2);
    assert.equal(simulator.stats().tokenRequests, 2);
    assert.equal(simulator.stats().rateLimited, 0);
  });
});

function spawnReplica(t: { after(fn: () => void): void }, config: string, env: NodeJS.ProcessEnv = process.env): ChildProcess & { log: string[] } {
  const child = spawnForTest(t, process.execPath, [CLI, 'start', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'], env }) as ChildProcess & {
    log: string[];
  };
  child.log = [];
  child.stderr!.on('data', (d: Buffer) => child.log.push(d.toString()));
  return child;
}

describe('replicas as processes', () => {
  test(
    'five replicas, one Redis, one simulator, a simulated day: one issuance per renewal; every replica has the new token at once, not at its next tick',
    { timeout: 300_000 },
    async (t) => {
      if (!requireRedis(t)) return;
      const redis = await startRedis(t);
      const cred = markerCredential('kis', 'five');
      // The simulated day passes in 20 s of real time (4,320x) in npm test, in a minute (1,440x) in npm run
      // reliability, in the simulator and the five processes alike.
      const spec = `${T0},${Date.now()},${tier(4320, 1440)}`;
      const clock = ScaledClock.parse(spec);
      const { simulator, url } = await startSimulator(t, [cred], { clock: clock as never });
      const dirs: string[] = [];
      for (let i = 0; i < 5; i++) {
        const dir = tempDir(t);
        dirs.push(dir);
        writeFileSync(join(dir, 'config.yaml'), replicaConfig(dir, url, redis, cred, 'renewal: { retry: { jitter: 0 } }'));
        spawnReplica(t, join(dir, 'config.yaml'), { ...process.env, [TEST_CLOCK_ENV]: spec });
      }
      await until('the first token everywhere', 20_000, () => dirs.every((d) => tokenIn(d) !== undefined));
      const first = tokenIn(dirs[0]!)!;
      assert.ok(dirs.every((d) => tokenIn(d) === first));
      // The renewal, 22 h 55 min into the day.
      await until('the renewal', 120_000, () => simulator.stats().issued === 2);
      const renewedAt = Date.now();
      const renewed = await (async () => {
        await until('a replica with the new token', 5_000, () => dirs.some((d) => tokenIn(d) !== undefined && tokenIn(d) !== first), 20);
        return dirs.map(tokenIn).find((x) => x !== first)!;
      })();
      const spread = await until('every replica with the new token', 5_000, () => dirs.every((d) => tokenIn(d) === renewed), 20);
      const lagMs = Date.now() - renewedAt;
      // Let the rest of the day pass: nobody asks again.
      await until('the end of the simulated day', 60_000, () => clock.now() >= T0 + 24 * HOUR + 30 * MINUTE);
      const stats = simulator.stats();
      recordReliability({
        kind: 'replicas',
        replicas: 5,
        tokenRequests: stats.tokenRequests,
        issued: stats.issued,
        rateLimited: stats.rateLimited,
        propagationMs: lagMs,
      });
      assert.equal(stats.tokenRequests, 2, 'one request at start, one at the renewal');
      assert.equal(stats.issued, 2);
      assert.equal(stats.sameToken, 0);
      assert.equal(stats.rateLimited, 0);
      // Announced on the channel, taken up at once: well under a tick of any replica's own loop (minutes), whatever the
      // host's load adds (1.4 s seen beside two other test files); the figure itself goes to docs/reliability.md.
      assert.ok(lagMs < 5_000 && spread < 5_000, `the new token reached every replica ${lagMs} ms after its issuance`);
    },
  );

  test('the lease holder killed mid-issuance: exactly one more request once its lease lapses, no EGW00133', { timeout: 120_000 }, async (t) => {
    if (!requireRedis(t)) return;
    const redis = await startRedis(t);
    const cred = markerCredential('kis', 'failover');
    const { simulator, url } = await startSimulator(t, [cred], { clock: systemClock as never, spacingMs: SECOND });
    simulator.injectFault({ endpoint: 'kis.token', kind: 'hang' });
    const replicas: Array<ChildProcess & { log: string[] }> = [];
    const dirs: string[] = [];
    for (let i = 0; i < 3; i++) {
      const dir = tempDir(t);
      dirs.push(dir);
      writeFileSync(join(dir, 'config.yaml'), replicaConfig(dir, url, redis, cred, 'renewal: { spacing: 1s }\nhttp: { timeout: 2s }', '  lockTtl: 4s\n'));
      replicas.push(spawnReplica(t, join(dir, 'config.yaml')));
    }
    await until('the first (hanging) request', 20_000, () => simulator.stats().tokenRequests === 1);
    const holder = (await redis.client.get('broker-token-sidecar:lock:main'))!;
    const pid = Number(holder.split(':')[1]);
    const victim = replicas.find((r) => r.pid === pid)!;
    assert.ok(victim, `the lease holder ${holder} is one of the replicas`);
    victim.kill('SIGKILL');
    const killedAt = Date.now();
    await until('a token in the other replicas', 30_000, () => dirs.filter((_, i) => replicas[i] !== victim).every((d) => tokenIn(d) !== undefined));
    const requests = simulator.requestLog().filter((r) => r.endpoint === 'kis.token');
    recordReliability({
      kind: 'failover',
      tokenRequests: requests.length,
      secondRequestAfterKillMs: requests[1] ? requests[1].at - killedAt : null,
      rateLimited: simulator.stats().rateLimited,
    });
    assert.equal(requests.length, 2);
    assert.equal(simulator.stats().rateLimited, 0);
    // Not before the lease lapsed (4 s after it was taken) nor inside the spacing after the unanswered request
    // (its 2 s timeout plus 1 s).
    assert.ok(requests[1]!.at - requests[0]!.at >= 3 * SECOND, `${requests[1]!.at - requests[0]!.at} ms between the two requests`);
  });

  test('Redis stopped for a while: replicas keep valid files, report it, issue nothing; they converge when it returns', { timeout: 120_000 }, async (t) => {
    if (!requireRedis(t)) return;
    const redis = await startRedis(t);
    const cred = markerCredential('kis', 'outage');
    const { simulator, url } = await startSimulator(t, [cred], { clock: systemClock as never, spacingMs: SECOND });
    const dirs: string[] = [];
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const dir = tempDir(t);
      dirs.push(dir);
      const port = await freePort();
      ports.push(port);
      writeFileSync(
        join(dir, 'config.yaml'),
        replicaConfig(dir, url, redis, cred, 'renewal: { spacing: 1s }').replace('server: { enabled: false }', `server: { host: 127.0.0.1, port: ${port} }`),
      );
      spawnReplica(t, join(dir, 'config.yaml'));
    }
    await until('a token everywhere', 20_000, () => dirs.every((d) => tokenIn(d) !== undefined));
    const token = tokenIn(dirs[0]!)!;
    const storeUp = async (port: number) => /broker_token_store_up\{store="redis"\} 1/.test(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
    await redis.stop();
    await until('every replica to report the store down', 10_000, async () => (await Promise.all(ports.map(storeUp))).every((up) => !up));
    // A forced renewal on a replica without Redis is refused: it never issues blind.
    const forced = await fetch(`http://127.0.0.1:${ports[0]}/readyz`);
    assert.equal(forced.status, 200, 'still ready: the files hold a valid token');
    await new Promise((r) => setTimeout(r, 3_000));
    assert.ok(dirs.every((d) => tokenIn(d) === token && existsSync(join(d, 'token.json'))));
    const requestsDuringOutage = simulator.stats().tokenRequests;
    await redis.start(); // empty: no persistence
    await until('every replica to report the store up', 20_000, async () => (await Promise.all(ports.map(storeUp))).every(Boolean));
    await until('the shared state offered back', 10_000, async () => (await redis.client.get('broker-token-sidecar:state:main')) !== null);
    const shared = JSON.parse((await redis.client.get('broker-token-sidecar:state:main'))!) as { token: { accessToken: string } };
    assert.equal(shared.token.accessToken, token);
    assert.ok(dirs.every((d) => tokenIn(d) === token));
    assert.equal(simulator.stats().tokenRequests, requestsDuringOutage);
    assert.equal(simulator.stats().issued, 1);
  });
});

/**
 * Issue 15, item 3: a replica whose Redis is down (refused, or a port that accepts and never answers) when it
 * starts. The README's promise: it serves the last good token from its local copy, issues nothing, and says so,
 * once; it joins the shared store again when Redis returns, and stops on SIGTERM meanwhile.
 */

// The sidecar's own stop bound (runUntilSignalled): past it the process exits 1 instead of 0.
const STOP_BOUND_MS = 15_000;
const OUTAGE = /shared state store unreachable/;
const BACK = /shared state store reachable again/;

type Replica = ChildProcess & { output: () => string; startedAt: number };

/** A replica whose whole output (stdout and stderr) is kept, and when it was spawned. */
function spawnWatchedReplica(t: { after(fn: () => void): void }, config: string): Replica {
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

const tokenAt = (path: string): string | undefined => {
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
        const first = spawnWatchedReplica(t, config);
        await until('the first token', 20_000, () => tokenAt(tokenFile) !== undefined);
        const token = tokenAt(tokenFile)!;
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
        const replica = spawnWatchedReplica(t, config);
        const readyAfterMs = await firstReadyAfterSpawn(replica, port, 15_000);
        const startupMs = Number(/startupMs"?:\s*(\d+)/.exec(replica.output())?.[1]);
        t.diagnostic(`/readyz 200 ${readyAfterMs} ms after the spawn, of which ${startupMs} ms the sidecar's own start-up; a bare CLI start took ${bare} ms`);
        // A second on an idle machine; a busy one slows the start-up's own work as it slows a bare start, so the bound
        // grows with that start measured now (2.3 s beside two other test files), never with the wait for Redis.
        const boundMs = Math.max(1_000, bare);
        assert.ok(
          startupMs < boundMs,
          `the sidecar's own start-up took ${startupMs} ms, bound ${boundMs} ms (ready ${readyAfterMs} ms after the spawn; a bare CLI start takes ${bare} ms)`,
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
        assert.equal(tokenAt(tokenFile), token, 'the token file repaired from the local copy');
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
        assert.equal(tokenAt(tokenFile), token);
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
    const replica = spawnWatchedReplica(t, config);
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

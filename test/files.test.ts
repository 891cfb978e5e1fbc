import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock } from '../src/core/clock';
import { nodeFileSystem, type FileSystem } from '../src/core/atomic-file';
import { appKeyId } from '../src/store/account-state';
import { localDateStamp } from '../src/core/time';
import {
  CLI,
  HOUR,
  MINUTE,
  SECOND,
  T0,
  LogCapture,
  closeBeforeCleanup,
  configText,
  exited,
  freePort,
  markerCredential,
  parseExposition,
  parseTestConfig,
  recordReliability,
  runAccountUntil,
  sampleValue,
  spawnForTest,
  startSimulator,
  tempDir,
  testSidecar,
  until,
  tier,
  serveSidecar,
  realPathOf,
} from './helpers';

/**
 * Issue 15, files and trust: what a neighbour process with a shell can do to the files the sidecar reads (a FIFO
 * raced onto a token file, a FIFO or /dev/zero as a secret file, a symlinked directory), what a careless hand
 * can leave in the state, and what must hold after close(). Each test here failed on the code before the fix.
 */

// Seconds of racing: 10 in npm test, 60 in npm run reliability (BTS_LONG=1).
const RACE_MS = tier(10_000, 60_000);

/** A hostile neighbour: renames fresh FIFOs onto each target as fast as it can, for `ms`; prints how many. */
const FIFO_RACER = `
import os, sys, time
end = time.time() + float(sys.argv[1]) / 1000
targets = sys.argv[2:]
n = 0
while time.time() < end:
    for target in targets:
        tmp = "%s.fifo-%d" % (target, n)
        os.mkfifo(tmp)
        os.replace(tmp, target)
        n += 1
    # A breath between rounds: the race still lands thousands of times, without starving a two-core machine.
    time.sleep(0.0005)
print(n)
`;

function watchOutput(child: ChildProcess) {
  const out = { stdout: '', stderr: '' };
  child.stdout?.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out.stderr += d.toString()));
  return out;
}

function runCli(args: string[], timeoutMs = 15_000): Promise<{ status: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = watchOutput(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return exited(child).then((status) => {
    clearTimeout(timer);
    return { status, ...out, ms: Date.now() - started };
  });
}

function mkfifo(path: string): void {
  const made = spawnSync('mkfifo', [path]);
  assert.equal(made.status, 0, `mkfifo ${path}`);
}

/** A sidecar process on the simulator, with its app secret in a file, a JSON sink and a kis-auth sink on KST. */
async function startSidecarProcess(t: any) {
  const dir = tempDir(t);
  const cred = markerCredential('kis', 'hardfile');
  const { simulator, url } = await startSimulator(t, [cred], { clock: systemClock as never, spacingMs: 2 * SECOND });
  const port = await freePort();
  const secretFile = join(dir, 'secret');
  fs.writeFileSync(secretFile, `${cred.appSecret}\n`, { mode: 0o600 });
  const config = join(dir, 'config.yaml');
  fs.writeFileSync(
    config,
    [
      `stateDir: ${join(dir, 'state')}`,
      `server: { enabled: true, host: 127.0.0.1, port: ${port} }`,
      `log: { format: json }`,
      `accounts:`,
      `  - name: main`,
      `    provider: kis`,
      `    env: real`,
      `    appKey: "${cred.appKey}"`,
      `    appSecretFile: ${secretFile}`,
      `    baseUrl: ${url}`,
      `    renewal: { spacing: 2s }`,
      `    http: { timeout: 2s }`,
      `    sinks:`,
      `      - { format: json, path: ${join(dir, 'tokens', 'main.json')} }`,
      `      - { format: kis-auth, dir: ${join(dir, 'KIS')}, readerTimeZones: [Asia/Seoul] }`,
      ``,
    ].join('\n'),
  );
  const child = spawnForTest(t, process.execPath, [CLI, 'start', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = watchOutput(child);
  const base = `http://127.0.0.1:${port}`;
  await until(
    () => `the sidecar to be ready; its log:\n${out.stdout}${out.stderr}`,
    20_000,
    async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200,
  );
  const jsonFile = join(dir, 'tokens', 'main.json');
  const kisFile = join(dir, 'KIS', `KIS${localDateStamp(Date.now(), 'Asia/Seoul')}`);
  const token = (JSON.parse(fs.readFileSync(jsonFile, 'utf8')) as { access_token: string }).access_token;
  return { dir, cred, simulator, child, out, base, secretFile, jsonFile, kisFile, token };
}

/** The file at `path` is a regular file holding `token` (judged without ever opening a FIFO). */
function holds(path: string, token: string): boolean {
  const info = fs.lstatSync(path, { throwIfNoEntry: false });
  return info?.isFile() === true && fs.readFileSync(path, 'utf8').includes(token);
}

async function metric(base: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  return sampleValue(parseExposition(await (await fetch(`${base}/metrics`)).text()), name, labels);
}

describe('files a neighbour can swap', () => {
  test(`a FIFO raced onto both sink files for ${RACE_MS / 1000} s: the sidecar answers throughout, repairs within a second after, and stops on SIGTERM`, async (t) => {
    const s = await startSidecarProcess(t);
    const racer = spawnForTest(t, '/usr/bin/python3', ['-c', FIFO_RACER, String(RACE_MS), s.jsonFile, s.kisFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    const racerOut = watchOutput(racer);
    // Throughout the race: /healthz answers 200, and quickly.
    let probes = 0;
    let slowest = 0;
    while (racer.exitCode === null) {
      const started = Date.now();
      const health = await fetch(`${s.base}/healthz`, { signal: AbortSignal.timeout(5_000) });
      slowest = Math.max(slowest, Date.now() - started);
      assert.equal(health.status, 200, await health.text());
      probes++;
      await new Promise((r) => setTimeout(r, 200));
    }
    await exited(racer);
    assert.equal(racer.exitCode, 0, racerOut.stderr);
    const swaps = Number(racerOut.stdout.trim());
    const raceEnded = Date.now();
    // The race leaves a FIFO at each path: both are replaced by the token file within a second.
    await until('both files repaired', 1_000, () => holds(s.jsonFile, s.token) && holds(s.kisFile, s.token), 20);
    const repairMs = Date.now() - raceEnded;
    const repairs = await metric(s.base, 'broker_token_sink_repairs_total', { sink: 'json', reason: 'special_file' });
    assert.ok(repairs > 0, 'the FIFOs were counted as special_file repairs');
    assert.equal(s.simulator.stats().tokenRequests, 1, 'no issuance');
    const stopping = Date.now();
    s.child.kill('SIGTERM');
    const code = await exited(s.child);
    const stopMs = Date.now() - stopping;
    assert.equal(code, 0, s.out.stderr);
    assert.ok(stopMs < 15_000, `stopped in ${stopMs} ms`);
    recordReliability({
      kind: 'fault',
      category: 'hostile',
      fault: `a FIFO renamed onto both sink files, ${swaps} times in ${RACE_MS / 1000} s`,
      reason: 'special_file (repairs)',
      alert: 'none',
      issuances: 0,
      outcome: `/healthz 200 throughout (${probes} probes, slowest ${slowest} ms); files repaired ${repairMs} ms after the race; SIGTERM stopped it in ${stopMs} ms`,
    });
  });

  test('a secret file that is a FIFO, or a link to /dev/zero: start is refused at once with the key named; neither blocks nor fills memory', async (t) => {
    const s = await startSidecarProcess(t);
    s.child.kill('SIGTERM');
    await exited(s.child);
    const config = join(s.dir, 'config.yaml');
    for (const [what, plant] of [
      ['a FIFO', () => mkfifo(s.secretFile)],
      ['a link to /dev/zero', () => fs.symlinkSync('/dev/zero', s.secretFile)],
    ] as const) {
      fs.rmSync(s.secretFile, { force: true });
      plant();
      const run = await runCli(['start', '--config', config]);
      assert.equal(run.status, 2, `${what}: ${run.stderr}`);
      assert.match(run.stderr, /appSecretFile: cannot read \S+ \(not a regular file[;)]/, what);
      assert.ok(run.ms < 5_000, `${what}: refused in ${run.ms} ms`);
    }
  });

  test('a secret file swapped for a FIFO or /dev/zero before a reload: the reload is refused, the running sidecar goes on answering and keeps its token', async (t) => {
    const s = await startSidecarProcess(t);
    for (const [what, plant] of [
      ['a FIFO', (path: string) => mkfifo(path)],
      ['a link to /dev/zero', (path: string) => fs.symlinkSync('/dev/zero', path)],
    ] as const) {
      const planted = `${s.secretFile}.new`;
      plant(planted);
      fs.renameSync(planted, s.secretFile);
      const refusals = () => (s.out.stdout + s.out.stderr).split('configuration reload failed; the running configuration is kept').length - 1;
      const before = refusals();
      s.child.kill('SIGHUP');
      await until(
        () => `${what}: the reload to be refused; the log:\n${s.out.stdout}${s.out.stderr}`,
        5_000,
        () => refusals() > before,
        20,
      );
      for (let i = 0; i < 5; i++) {
        const health = await fetch(`${s.base}/healthz`, { signal: AbortSignal.timeout(1_000) });
        assert.equal(health.status, 200);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(holds(s.jsonFile, s.token), `${what}: the token stays`);
      const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${s.child.pid}/status`, 'utf8'))![1]) * 1024;
      assert.ok(rss < 300 * 1024 * 1024, `${what}: RSS ${rss} bytes`);
    }
    assert.ok(!s.out.stdout.includes(s.cred.appSecret) && !s.out.stderr.includes(s.cred.appSecret));
    assert.equal(s.simulator.stats().tokenRequests, 1, 'no issuance');
    recordReliability({
      kind: 'fault',
      category: 'hostile',
      fault: 'appSecretFile swapped for a FIFO, then a link to /dev/zero, then SIGHUP',
      reason: '(config.reload_failed)',
      alert: 'none',
      issuances: 0,
      outcome: 'reload refused at once ("not a regular file"); the running sidecar answered throughout and kept its token',
    });
  });
});

describe('the sink directory and the sink loop', () => {
  async function inProcess(t: any, sinks: (dir: string) => string, options: { fs?: FileSystem; watch?: boolean; sinkStuckAfterMs?: number } = {}) {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'hardsink');
    const { simulator, url, clock } = await startSimulator(t, [cred]);
    const log = new LogCapture();
    const config = parseTestConfig(configText(join(dir, 'state'), url, [{ name: 'main', credential: cred, sinks: sinks(dir) }]), dir);
    const sidecar = testSidecar(config, clock, { ...options, logger: log.logger });
    return { dir, cred, simulator, clock, sidecar, log };
  }

  test('a sink directory that is a symlink is refused unless followSymlinks', async (t) => {
    const { dir, sidecar } = await inProcess(t, (d) => `- { format: json, path: ${join(d, 'linked', 'main.json')} }`);
    fs.mkdirSync(join(dir, 'elsewhere'));
    fs.symlinkSync(join(dir, 'elsewhere'), join(dir, 'linked'));
    await assert.rejects(sidecar.open(), /symlink: .*linked is a symbolic link; refusing to go through it \(set followSymlinks to allow\)/);
    assert.deepEqual(fs.readdirSync(join(dir, 'elsewhere')), [], 'nothing written through the link');
    const allowed = await inProcess(t, (d) => `- { format: json, path: ${join(d, 'linked', 'main.json')}, followSymlinks: true }`);
    fs.mkdirSync(join(allowed.dir, 'elsewhere'));
    fs.symlinkSync(join(allowed.dir, 'elsewhere'), join(allowed.dir, 'linked'));
    await allowed.sidecar.open();
    closeBeforeCleanup(t, () => allowed.sidecar.close());
  });

  /** Every entry under `dir` with its content (links as links, never followed): what a victim folder must keep. */
  function treeOf(dir: string): Record<string, string> {
    const tree: Record<string, string> = {};
    for (const name of fs.readdirSync(dir, { recursive: true }) as string[]) {
      const info = fs.lstatSync(join(dir, name));
      tree[name] = info.isFile() ? fs.readFileSync(join(dir, name), 'utf8') : info.isSymbolicLink() ? `-> ${fs.readlinkSync(join(dir, name))}` : 'dir';
    }
    return tree;
  }

  /** A kis-auth and a JSON sink under <dir>/sinks, and a victim folder holding a foreign daily file. */
  const SINKS_UNDER_ONE_PARENT = (d: string) =>
    `- { format: kis-auth, dir: ${join(d, 'sinks', 'kisauth')}, keepDays: 1 }\n- { format: json, path: ${join(d, 'sinks', 'tokens', 'main.json')} }`;
  function victimFolder(dir: string): string {
    const victim = join(dir, 'victim');
    fs.mkdirSync(join(victim, 'kisauth'), { recursive: true });
    fs.writeFileSync(join(victim, 'kisauth', 'KIS20200101'), 'a foreign file\n');
    return victim;
  }

  test('a parent of the sinks swapped for a symlink at run time: a write, a repair and the clean-up touch nothing through it; reported; repaired once it goes', async (t) => {
    const h = await inProcess(t, SINKS_UNDER_ONE_PARENT);
    await h.sidecar.open();
    closeBeforeCleanup(t, () => h.sidecar.close());
    await runAccountUntil(h.sidecar, 'main', h.clock, T0 + MINUTE);
    await h.sidecar.sinks.idle();
    const victim = victimFolder(h.dir);
    const victimBefore = treeOf(victim);
    const failures: Array<{ sink: string; reason: string; message: string }> = [];
    h.sidecar.bus.on('sink.write_failed', (failure) => failures.push(failure));

    // sinks/ → victim/, as a neighbour with write access to <dir> can do at any moment.
    const sinks = join(h.dir, 'sinks');
    fs.renameSync(sinks, join(h.dir, 'sinks-moved'));
    fs.symlinkSync(victim, sinks);
    // A write (a new token, two days on, so that the daily clean-up is due with it), then a repair by the sweep.
    h.clock.set(T0 + 2 * 24 * HOUR);
    assert.equal((await h.sidecar.renew('main', true))?.result, 'issued');
    await h.sidecar.sinks.idle();
    h.clock.set(T0 + 2 * 24 * HOUR + 5 * SECOND);
    await h.sidecar.sinks.tick();
    await h.sidecar.sinks.checkAll();

    assert.deepEqual(treeOf(victim), victimBefore, 'nothing created, written or deleted inside the victim folder');
    assert.equal(fs.readFileSync(join(victim, 'kisauth', 'KIS20200101'), 'utf8'), 'a foreign file\n');
    assert.deepEqual([...new Set(failures.map((f) => `${f.sink}: ${f.reason}`))].sort(), ['json: symlink', 'kis-auth: symlink']);
    for (const failure of failures) assert.ok(failure.message.startsWith(`${sinks} is a symbolic link on the way to `), failure.message);
    const view = h.sidecar.views()[0]!;
    assert.equal(view.ready, false);
    assert.deepEqual(
      view.sinks.map((sink) => [sink.name, sink.healthy, sink.lastError?.reason]),
      [
        ['kis-auth', false, 'symlink'],
        ['json', false, 'symlink'],
      ],
    );
    // The link gone and the directory back: repaired from the state at the next retry, with no issuance.
    const issued = h.simulator.stats().issued;
    fs.unlinkSync(sinks);
    fs.renameSync(join(h.dir, 'sinks-moved'), sinks);
    h.clock.set(T0 + 2 * 24 * HOUR + 2 * MINUTE);
    await h.sidecar.sinks.tick();
    const token = h.sidecar.views()[0]!.snapshot.state.token!.accessToken;
    assert.ok(holds(join(sinks, 'tokens', 'main.json'), token));
    assert.ok(h.sidecar.views()[0]!.ready);
    assert.equal(h.simulator.stats().issued, issued);
  });

  test('a parent of the sinks that is a symlink at start: a start-up error naming it; nothing written in the victim folder', async (t) => {
    const h = await inProcess(t, SINKS_UNDER_ONE_PARENT);
    const victim = victimFolder(h.dir);
    const victimBefore = treeOf(victim);
    fs.symlinkSync(victim, join(h.dir, 'sinks'));
    await assert.rejects(h.sidecar.open(), (error: Error) => {
      const named = `${join(h.dir, 'sinks')} is a symbolic link on the way to `;
      assert.match(error.message, /sink kis-auth .*: symlink: /);
      assert.match(error.message, /sink json .*: symlink: /);
      assert.equal(error.message.split(named).length - 1, 2, error.message);
      return true;
    });
    assert.deepEqual(treeOf(victim), victimBefore);
    assert.equal(h.simulator.stats().tokenRequests, 0);
  });

  test('a sink whose operation never ends shows as stuck in /healthz, /status and the metrics; the other sink goes on; close() is bounded', async (t) => {
    let hang = false;
    const hanging: FileSystem = {
      ...nodeFileSystem,
      open: ((path: fs.PathLike, ...rest: unknown[]) =>
        hang && realPathOf(path).includes('stuck')
          ? new Promise(() => undefined)
          : (fsp.open as (...a: unknown[]) => unknown)(path, ...rest)) as FileSystem['open'],
    };
    const h = await inProcess(
      t,
      (d) => `- { format: json, name: stuck, path: ${join(d, 'stuck', 'a.json')} }\n- { format: json, name: fine, path: ${join(d, 'fine', 'b.json')} }`,
      {
        fs: hanging,
        sinkStuckAfterMs: 300,
      },
    );
    await h.sidecar.open();
    await runAccountUntil(h.sidecar, 'main', h.clock, T0 + MINUTE);
    await h.sidecar.sinks.idle();
    const base = await serveSidecar(t, h.sidecar);
    hang = true;
    fs.rmSync(join(h.dir, 'fine', 'b.json'));
    void h.sidecar.sinks.checkAll();
    await until('the other sink repaired', 2_000, () => fs.existsSync(join(h.dir, 'fine', 'b.json')), 20);
    await until('the stuck sink to show', 3_000, async () => (await fetch(`${base}/healthz`)).status === 503, 50);
    assert.deepEqual(await (await fetch(`${base}/healthz`)).json(), { status: 'stuck', stuckLoops: [], stuckSinks: ['main/stuck'] });
    const status = (await (await fetch(`${base}/status`)).json()) as { accounts: Array<{ sinks: Array<{ name: string; stuckSince: string | null }> }> };
    assert.notEqual(status.accounts[0]!.sinks.find((sink) => sink.name === 'stuck')!.stuckSince, null);
    assert.equal(status.accounts[0]!.sinks.find((sink) => sink.name === 'fine')!.stuckSince, null);
    const exposition = parseExposition(await (await fetch(`${base}/metrics`)).text());
    assert.equal(sampleValue(exposition, 'broker_token_sink_stuck', { sink: 'stuck' }), 1);
    assert.equal(sampleValue(exposition, 'broker_token_sink_stuck', { sink: 'fine' }), 0);
    const closing = Date.now();
    await h.sidecar.close();
    assert.ok(Date.now() - closing < 7_000, `close() took ${Date.now() - closing} ms`);
  });

  test('a file event ends the backoff: the obstacle removed, the file is written within a second, not after the backoff', async (t) => {
    const h = await inProcess(t, (d) => `- { format: json, path: ${join(d, 'tokens', 'main.json')} }`, { watch: true });
    await h.sidecar.open();
    closeBeforeCleanup(t, () => h.sidecar.close());
    await runAccountUntil(h.sidecar, 'main', h.clock, T0 + MINUTE);
    await h.sidecar.sinks.idle();
    const path = join(h.dir, 'tokens', 'main.json');
    const token = h.sidecar.views()[0]!.snapshot.state.token!.accessToken;
    // A directory planted at the path: the file cannot be written; failures back off up to a minute.
    fs.rmSync(path);
    fs.mkdirSync(path);
    for (let s = 1; s <= 120; s++) {
      h.clock.set(T0 + MINUTE + s * SECOND);
      await h.sidecar.sinks.tick();
    }
    const sink = h.sidecar.views()[0]!.sinks[0]!;
    assert.ok(sink.consecutiveFailures >= 5, `${sink.consecutiveFailures} failures`);
    // The clock stands still from here: only the file event can bring the retry forward.
    const removed = Date.now();
    fs.rmdirSync(path);
    // Written, and the sink seen healthy again (a moment after the write, on a loaded host).
    await until('the file written after the obstacle went', 1_500, () => holds(path, token), 20);
    const ms = Date.now() - removed;
    await until('the sink healthy again', 1_500, () => h.sidecar.views()[0]!.sinks[0]!.healthy, 20);
    recordReliability({
      kind: 'fault',
      category: 'disk',
      fault: 'a directory planted at a sink path, removed after 2 minutes of backoff',
      reason: 'not_regular_file',
      alert: 'token file missing and not repaired, after 30 s',
      issuances: 0,
      outcome: `written ${ms} ms after the directory went (a file event ends the backoff; at most 4 retries a second)`,
    });
  });
});

describe('what enters from disk is checked like a broker answer', () => {
  async function firstRun(t: any) {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'trust');
    const other = markerCredential('kis', 'trust2');
    const { simulator, url, clock } = await startSimulator(t, [cred, other]);
    const text = (c = cred) => configText(join(dir, 'state'), url, [{ name: 'main', credential: c }]);
    const first = testSidecar(parseTestConfig(text(), dir), clock);
    await first.open();
    await runAccountUntil(first, 'main', clock, T0 + MINUTE);
    await first.close();
    const statePath = join(dir, 'state', 'accounts', 'main.json');
    return { dir, cred, other, simulator, clock, text, statePath };
  }

  async function restart(t: any, h: Awaited<ReturnType<typeof firstRun>>, cred = h.cred) {
    const log = new LogCapture();
    const sidecar = testSidecar(parseTestConfig(h.text(cred), h.dir), h.clock, { logger: log.logger });
    await sidecar.open();
    closeBeforeCleanup(t, () => sidecar.close());
    return { sidecar, log };
  }

  test('a stored token with an expiry in 2100 is set aside, with the reason logged; it reaches no file', async (t) => {
    const h = await firstRun(t);
    const state = JSON.parse(fs.readFileSync(h.statePath, 'utf8')) as { token: { expiresAt: number; accessToken: string } };
    const planted = state.token.accessToken;
    state.token.expiresAt = Date.UTC(2100, 0, 1);
    fs.writeFileSync(h.statePath, JSON.stringify(state));
    h.clock.set(T0 + 2 * MINUTE);
    const { sidecar, log } = await restart(t, h);
    assert.match(log.text(), /the stored state of main was set aside: the token's expiry lies beyond maxLifetime \(24h\) from now/);
    const json = fs.readFileSync(join(h.dir, 'sinks', 'main.json'), 'utf8');
    assert.ok(!json.includes('2100-'), 'the year 2100 reached no file');
    // With no believable state, the token in the file is adopted only if its own expiry is believable (it is).
    assert.equal(sidecar.views()[0]!.snapshot.state.token?.accessToken, planted);
    assert.ok(sidecar.views()[0]!.snapshot.state.token!.expiresAt < T0 + 25 * HOUR);
  });

  test('a stored token whose jti names another app key is set aside, and a state of another app key is no longer dropped silently', async (t) => {
    const h = await firstRun(t);
    const state = JSON.parse(fs.readFileSync(h.statePath, 'utf8')) as { appKeyId: string };
    // The state claims the other key's id, but holds a token the broker gave to the first key.
    state.appKeyId = appKeyId(h.other.appKey);
    fs.writeFileSync(h.statePath, JSON.stringify(state));
    fs.rmSync(join(h.dir, 'sinks'), { recursive: true });
    const { sidecar, log } = await restart(t, h, h.other);
    assert.match(log.text(), /the stored state of main was set aside: the token names another app key/);
    await sidecar.close();
    // Back to the first key, with the state now the other key's: said, not silent.
    fs.writeFileSync(h.statePath, JSON.stringify({ ...state, token: null }));
    const again = await restart(t, h, h.cred);
    assert.match(again.log.text(), /set aside: it belongs to another app key \(the configured one changed\)/);
    assert.equal(h.simulator.stats().tokenRequests, 1, 'set aside costs no issuance by itself');
  });
});

describe('nothing writes after close()', () => {
  test('a closed sidecar writes nothing: files deleted afterwards stay deleted, no directory comes back', async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'closed');
    const { url, clock } = await startSimulator(t, [cred]);
    const text = configText(join(dir, 'state'), url, [
      {
        name: 'main',
        credential: cred,
        sinks: `- { format: json, path: ${join(dir, 'sinks', 'main.json')} }\n- { format: kis-auth, dir: ${join(dir, 'KIS')} }`,
      },
    ]);
    const sidecar = testSidecar(parseTestConfig(text, dir), clock, { watch: true });
    await sidecar.open();
    sidecar.run();
    await until('the token files', 5_000, () => fs.existsSync(join(dir, 'sinks', 'main.json')), 20);
    await sidecar.close();
    fs.rmSync(join(dir, 'sinks'), { recursive: true });
    fs.rmSync(join(dir, 'KIS'), { recursive: true });
    fs.rmSync(join(dir, 'state'), { recursive: true });
    clock.set(T0 + 2 * HOUR);
    await new Promise((r) => setTimeout(r, 1_000));
    assert.deepEqual(fs.readdirSync(dir).sort(), [], 'nothing written after close()');
  });
});

describe('the suite holds itself to it', () => {
  test('a test file whose temporary directory is written into after its test ended fails, naming the directory', async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'late-writer.test.js');
    // A test that leaves something running which writes into its temporary directory after the clean-up.
    fs.writeFileSync(
      file,
      [
        `const { test } = require('node:test');`,
        `const { mkdirSync, writeFileSync } = require('node:fs');`,
        `const { join } = require('node:path');`,
        `const { tempDir } = require(${JSON.stringify(join(__dirname, 'helpers.js'))});`,
        `test('leaves a writer behind', (t) => {`,
        `  const dir = tempDir(t, 'bts-late-');`,
        `  setTimeout(() => { mkdirSync(join(dir, 'state'), { recursive: true }); writeFileSync(join(dir, 'state', 'alerts.json'), '{}'); }, 300);`,
        `});`,
        `setTimeout(() => undefined, 600);`,
      ].join('\n'),
    );
    const child = spawnForTest(t, process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = watchOutput(child);
    const code = await exited(child);
    assert.equal(code, 1, out.stdout + out.stderr);
    assert.match(out.stderr, /written after the test that owned them ended \(something was still running\): \S+bts-late-/);
  });
});

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../src/core/clock';
import { StateDirectoryLock } from '../src/store/lock';
import { CLI, SECOND, configText, exited, freePort, markerCredential, recordReliability, spawnForTest, startSimulator, tempDir, until } from './helpers';

/** Output of a child process, collected as it arrives. */
function watchOutput(child: ChildProcess) {
  const out = { stdout: '', stderr: '' };
  child.stdout?.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out.stderr += d.toString()));
  return out;
}

/** Runs the CLI without blocking this process (the simulator it talks to lives here). */
function runCli(args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 30_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = watchOutput(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return exited(child).then((status) => {
    clearTimeout(timer);
    return { status, ...out };
  });
}

function which(binary: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${binary}`], { encoding: 'utf8' }).stdout.trim();
  return found || undefined;
}

describe('the CLI', () => {
  test('help names every command', () => {
    const help = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0);
    for (const command of ['start', 'demo', 'simulator', 'check-config', 'status', 'renew', 'revoke', 'once'])
      assert.match(help.stdout, new RegExp(`\\n  ${command} `));
  });

  test('every documented exit code of a usage error is 2, with a message that names what was wrong', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['status', '--jsonn'], /unknown option '--jsonn'[\s\S]*Did you mean --json\?/],
      [['renew', '--config', '/nonexistent.yaml'], /required option '-a, --account <name>' not specified/],
      [['revoke'], /required option '-a, --account <name>' not specified/],
      [['demo', '--port', 'abc'], /^--port: "abc" is not a port number \(0 to 65535\)$/m],
      [['simulator', '--port', '99999'], /^--port: "99999" is not a port number/m],
      [['once', '--config', '/nonexistent.yaml', '--max-wait', 'soon'], /cannot read the config file|"soon" is not a duration/],
      [['start'], /no config file: pass --config <file> or set BROKER_TOKEN_SIDECAR_CONFIG/],
    ];
    for (const [args, message] of cases) {
      const run = await runCli(args, { ...process.env, BROKER_TOKEN_SIDECAR_CONFIG: '' });
      assert.equal(run.status, 2, `${args.join(' ')}: exit ${run.status}\n${run.stderr}`);
      assert.match(run.stderr, message, args.join(' '));
    }
    for (const args of [['--help'], ['--version'], ['renew', '--help']]) assert.equal((await runCli(args)).status, 0, args.join(' '));
  });

  test('demo --dir: a folder holding a foreign file is refused and left intact; a second demo beside a running one stops before touching anything', async (t) => {
    const dir = tempDir(t);
    mkdirSync(join(dir, 'mine'));
    writeFileSync(join(dir, 'mine', 'notes.txt'), 'precious');
    const refused = await runCli(['demo', '--dir', join(dir, 'mine'), '--port', '0']);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /is not empty and was not made by the demo: nothing in it is deleted/);
    assert.deepEqual(readdirSync(join(dir, 'mine')), ['notes.txt']);
    assert.equal(readFileSync(join(dir, 'mine', 'notes.txt'), 'utf8'), 'precious');

    const first = spawnForTest(t, process.execPath, [CLI, 'demo', '--dir', join(dir, 'demo'), '--port', '0'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = watchOutput(first);
    await until('the first demo to be ready', 30_000, () => out.stdout.includes('the demo is ready'), 20);
    // It shows the real-time endpoint at work: two clients on one app key, one session at the broker.
    assert.match(out.stdout, /real-time: two clients on one app key .*\n.*each received 3 and 3 frames \(3 byte for byte the same\); the broker saw 1 session/);
    const base = /status\s+(http:\/\/\S+)\/status/.exec(out.stdout)![1]!;
    const port = new URL(base).port;
    const config = readFileSync(join(dir, 'demo', 'config.yaml'), 'utf8');
    // The same folder: refused, as a demo runs there. Another folder on the same port: refused, the port is taken.
    const sameDir = await runCli(['demo', '--dir', join(dir, 'demo'), '--port', '0']);
    assert.equal(sameDir.status, 3);
    assert.match(sameDir.stderr, new RegExp(`a demo is already running in .*demo \\(pid ${first.pid} `));
    const samePort = await runCli(['demo', '--dir', join(dir, 'other'), '--port', port]);
    assert.equal(samePort.status, 3);
    assert.match(samePort.stderr, new RegExp(`port ${port} on 127.0.0.1 is in use`));
    assert.equal(existsSync(join(dir, 'other')), false, 'nothing was created for the refused demo');
    assert.equal(readFileSync(join(dir, 'demo', 'config.yaml'), 'utf8'), config, "the first demo's config is untouched");
    assert.equal((await fetch(`${base}/readyz`)).status, 200, 'the first demo keeps serving');
    // Its admin endpoint is on, with the token it printed.
    const adminToken = /admin token\s+(\S+)/.exec(out.stdout)![1]!;
    const renew = await fetch(`${base}/renew/kis-demo`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}` } });
    assert.equal(renew.status, 200);
    assert.match(out.stdout, /kis_auth\.py names\s+its file by the date on its own clock/);
    first.kill('SIGTERM');
    assert.equal(await exited(first), 0);
    // Stopped, it can start again in its own folder, which it empties (its marker says it made it).
    const again = spawnForTest(t, process.execPath, [CLI, 'demo', '--dir', join(dir, 'demo'), '--port', '0'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const againOut = watchOutput(again);
    await until('the demo to start again', 15_000, () => againOut.stdout.includes('the demo is ready'), 20);
    again.kill('SIGTERM');
    assert.equal(await exited(again), 0);
  });

  test('demo: token files within seconds, HTTP answers, promtool finds nothing wrong in /metrics, SIGTERM exits 0', async (t) => {
    const dir = tempDir(t);
    const child = spawnForTest(t, process.execPath, [CLI, 'demo', '--dir', join(dir, 'demo'), '--port', '0'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = watchOutput(child);
    await until('the demo to be ready', 15_000, () => out.stdout.includes('the demo is ready'), 20);
    const metricsUrl = /metrics\s+(http:\/\/\S+\/metrics)/.exec(out.stdout)![1]!;
    const base = metricsUrl.replace(/\/metrics$/, '');
    for (const file of ['KIS/config', 'tokens/kis-demo.json', 'tokens/kis-demo.approval-key', 'data/.token']) {
      assert.ok(existsSync(join(dir, 'demo', file)), file);
    }
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    const metrics = await (await fetch(metricsUrl)).text();
    const promtool = which('promtool');
    if (promtool) {
      const check = spawnSync(promtool, ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
      assert.equal(check.status, 0, check.stdout + check.stderr);
      assert.equal((check.stdout + check.stderr).trim(), '', 'promtool check metrics reports nothing');
    } else if (process.env.CI) {
      assert.fail('promtool is required in CI');
    }
    // `status` reads the same files offline and agrees.
    const status = spawnSync(process.execPath, [CLI, 'status', '--config', join(dir, 'demo', 'config.yaml'), '--json'], { encoding: 'utf8' });
    assert.equal(status.status, 0, status.stderr);
    const report = JSON.parse(status.stdout) as { sidecar: string | null; accounts: Array<{ usable: boolean }> };
    assert.match(report.sidecar ?? '', /^pid \d+/);
    assert.deepEqual(
      report.accounts.map((a) => a.usable),
      [true, true],
    );
    child.kill('SIGTERM');
    assert.equal(await exited(child), 0);
    assert.match(out.stderr, /stopped/);
  });

  test("a second sidecar on the same state directory refuses to start; a SIGKILLed one's lock is taken over at once", async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'lock');
    const { url } = await startSimulator(t, [cred], { clock: systemClock as never });
    const config = join(dir, 'config.yaml');
    writeFileSync(config, configText(join(dir, 'state'), url, [{ name: 'main', credential: cred }]));
    const first = spawnForTest(t, process.execPath, [CLI, 'start', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    const firstOut = watchOutput(first);
    await until('the first sidecar', 10_000, () => firstOut.stderr.includes('token file written'), 20);
    const second = await runCli(['start', '--config', config]);
    assert.equal(second.status, 3);
    assert.match(second.stderr, new RegExp(`state directory .* is in use by pid ${first.pid} on `));
    first.kill('SIGKILL');
    await exited(first);
    const third = spawnForTest(t, process.execPath, [CLI, 'start', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    const thirdOut = watchOutput(third);
    // The restarted sidecar holds the lock (status names it) and issued nothing: the token on disk is valid.
    await until(
      'the restarted sidecar',
      10_000,
      () => {
        const status = spawnSync(process.execPath, [CLI, 'status', '--config', config, '--json'], { encoding: 'utf8' });
        return status.stdout.includes(`"sidecar": "pid ${third.pid} `) || third.exitCode !== null;
      },
      20,
    );
    assert.equal(third.exitCode, null, thirdOut.stderr);
    assert.doesNotMatch(thirdOut.stderr, /requesting a token/);
    third.kill('SIGTERM');
    assert.equal(await exited(third), 0);
  });
});

describe('once, and a kill between recording the attempt and the answer', () => {
  async function setup(t: any, spacing: string) {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'once');
    const { simulator, url } = await startSimulator(t, [cred], { clock: systemClock as never, spacingMs: 2 * SECOND });
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      configText(join(dir, 'state'), url, [{ name: 'main', credential: cred, extra: `renewal: { spacing: ${spacing} }\nhttp: { timeout: 2s }` }]),
    );
    return { dir, cred, simulator, config };
  }

  test('once: writes the files and exits 0; run again, it issues nothing', async (t) => {
    const { dir, simulator, config } = await setup(t, '2s');
    const first = await runCli(['once', '--config', config]);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /^main: token valid until \S+\+09:00 \((?:24h|23h59m5\ds) left\), 1 file\(s\) written\n$/);
    assert.ok(existsSync(join(dir, 'sinks', 'main.json')));
    const again = await runCli(['once', '--config', config]);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(simulator.stats().tokenRequests, 1);
  });

  test('once: says what it waits for, and how long, while it waits', async (t) => {
    const { simulator, config } = await setup(t, '2s');
    simulator.injectFault({ endpoint: 'kis.token', kind: 'status', status: 502, body: 'bad gateway', count: 1 });
    writeFileSync(config, readFileSync(config, 'utf8').replace('renewal: { spacing: 2s }', 'renewal: { spacing: 2s, retry: { initialDelay: 2s, jitter: 0 } }'));
    const run = await runCli(['once', '--config', config, '--max-wait', '10s']);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /^main: waiting [12]s \(backoff\), until \S+\+09:00$/m);
    assert.equal(simulator.stats().tokenRequests, 2);
  });

  test("once beside a running sidecar on the same state: issues nothing, exits 0 when that sidecar's token is valid in every file", async (t) => {
    const { dir, simulator, config } = await setup(t, '2s');
    const sidecar = spawnForTest(t, process.execPath, [CLI, 'start', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = watchOutput(sidecar);
    // A cron job beside it, once it holds the state directory: waits for its files if it must, then succeeds.
    await until('the sidecar to hold the state directory', 10_000, async () => (await StateDirectoryLock.holder(join(dir, 'state'))) !== undefined, 20);
    const run = await runCli(['once', '--config', config, '--max-wait', '20s']);
    assert.equal(run.status, 0, run.stderr + out.stderr);
    assert.match(run.stdout, new RegExp(`^main: token valid until \\S+\\+09:00 \\(\\S+ left\\), kept by the running sidecar \\(pid ${sidecar.pid} `));
    assert.ok(existsSync(join(dir, 'sinks', 'main.json')));
    assert.equal(simulator.stats().tokenRequests, 1, 'only the running sidecar asked');
    // Commands that would change its state say where to go instead, and exit 1.
    const renew = await runCli(['renew', '--config', config, '--account', 'main', '--force']);
    assert.equal(renew.status, 1);
    assert.match(
      renew.stderr,
      /a sidecar is running on .*; it renews on its own; to ask it now, turn its HTTP server on \(server\.enabled\) with an admin token \(server\.adminTokenFile, 16 characters or more\) and restart it, then POST http:\/\/127\.0\.0\.1:9464\/renew\/main\?force=true/,
    );
    const revoke = await runCli(['revoke', '--config', config, '--account', 'main']);
    assert.equal(revoke.status, 1);
    assert.match(revoke.stderr, /stop it first/);
    // The sidecar gone wrong (its file replaced by a directory it cannot repair): once waits, then says why, exit 1.
    const sinkFile = join(dir, 'sinks', 'main.json');
    const { rmSync } = await import('node:fs');
    rmSync(sinkFile);
    mkdirSync(sinkFile);
    const failed = await runCli(['once', '--config', config, '--max-wait', '3s']);
    assert.equal(failed.status, 1);
    assert.match(failed.stderr, /waiting for the running sidecar \(pid \d+ .*\): main: a token file is not current/);
    assert.match(failed.stderr, /has not made every file current within 3s: main: a token file is not current/);
    sidecar.kill('SIGTERM');
    await exited(sidecar);
  });

  test('a storm of 1,000 SIGHUPs: the reloads coalesce (one a second at most, not one per signal) and the sidecar serves throughout', async (t) => {
    const { config } = await setup(t, '2s');
    const port = await freePort();
    writeFileSync(
      config,
      readFileSync(config, 'utf8').replace('server: { enabled: false }', `server: { host: 127.0.0.1, port: ${port} }\nlog: { format: json, level: debug }`),
    );
    const sidecar = spawnForTest(t, process.execPath, [CLI, 'start', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = watchOutput(sidecar);
    const base = `http://127.0.0.1:${port}`;
    await until(
      () => `the sidecar ready: ${out.stderr}`,
      20_000,
      async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200,
    );
    const logged = (message: string) =>
      `${out.stdout}${out.stderr}`
        .split('\n')
        .filter((line) => line.includes(`"msg":"${message}`))
        .map((line) => JSON.parse(line) as { changed?: string[]; requests?: number });
    // One signal a millisecond or so: each is delivered on its own (the kernel merges a signal sent while the same
    // one is still pending, so a tight loop of kill() would reach the process as a few), as a storm does.
    const stormStarted = Date.now();
    let served = 0;
    for (let i = 0; i < 1_000; i++) {
      sidecar.kill('SIGHUP');
      if (i % 100 === 0 && (await fetch(`${base}/healthz`)).status === 200) served++;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const stormMs = Date.now() - stormStarted;
    assert.equal(served, 10, '/healthz answered throughout the storm');
    // Then a change of the file, which reloads through the same runner after every signal has been handled (a file
    // event is half a second behind them): the reload that applies it is the last one the storm can cause.
    writeFileSync(config, readFileSync(config, 'utf8').replace('renewal: { spacing: 2s }', 'renewal: { spacing: 3s }'));
    await until('the reload that applies the change', 15_000, () => logged('configuration reloaded').some((reload) => reload.changed?.includes('main')));
    const reloads = logged('configuration reloaded').length;
    // What reached the process: the requests each reload covered, the file change among them.
    const handled = logged('configuration reload done').reduce((sum, reload) => sum + reload.requests!, 0) - 1;
    t.diagnostic(`${reloads} reloads for 1,000 SIGHUPs sent in ${stormMs} ms (${handled} reached the process) and one file change`);
    // One a second during the storm, the first at once, and one for what was queued at its end (the file change).
    assert.ok(reloads <= Math.ceil(stormMs / 1_000) + 2, `${reloads} reloads in a ${stormMs} ms storm`);
    assert.equal(sidecar.exitCode, null);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    sidecar.kill('SIGTERM');
    assert.equal(await exited(sidecar), 0, out.stderr);
  });

  test('once: exits 1 with the reason when it cannot get a token', async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'oncebad');
    const { url } = await startSimulator(t, [cred], { clock: systemClock as never });
    const config = join(dir, 'config.yaml');
    writeFileSync(config, configText(join(dir, 'state'), url, [{ name: 'main', credential: { ...cred, appSecret: `Q${cred.appSecret.slice(1)}` } }]));
    const result = await runCli(['once', '--config', config]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /main: no usable token \(missing; auth_rejected; last failure auth_rejected: KIS tokenP: HTTP 403 EGW00105/);
    assert.ok(!result.stderr.includes(cred.appSecret.slice(1)), 'no secret in the error');
  });

  test('killed while its token request is in flight, restarted at once: no second request within the spacing', async (t) => {
    const { simulator, config, dir } = await setup(t, '2s');
    simulator.injectFault({ endpoint: 'kis.token', kind: 'hang' });
    const victim = spawnForTest(t, process.execPath, [CLI, 'once', '--config', config], { stdio: 'ignore' });
    await until('the first request', 10_000, () => simulator.stats().tokenRequests === 1, 20);
    victim.kill('SIGKILL');
    await exited(victim);
    const state = JSON.parse(readFileSync(join(dir, 'state', 'accounts', 'main.json'), 'utf8')) as { lastAttempt: { at: number; outcome: string } };
    assert.equal(state.lastAttempt.outcome, 'pending', 'the attempt was on disk before the request went out');
    const restarted = await runCli(['once', '--config', config, '--max-wait', '10s']);
    const requests = simulator.requestLog().filter((r) => r.endpoint === 'kis.token');
    const stateNow = readFileSync(join(dir, 'state', 'accounts', 'main.json'), 'utf8');
    assert.equal(
      restarted.status,
      0,
      `${restarted.stderr}\nrequests at ${JSON.stringify(requests.map((r) => r.at))}; state ${stateNow.match(/"lastAttempt":\{[^}]*\}/)?.[0]}`,
    );
    assert.equal(requests.length, 2);
    // The first request never ended: it could have reached the broker until its 2 s timeout, counted from the
    // attempt on disk (the request is cut then). The second waits for that and the 2 s spacing, so the broker
    // sees the two at least its spacing apart however long the first took to leave.
    const sinceAttempt = requests[1]!.at - state.lastAttempt.at;
    assert.ok(sinceAttempt >= 4 * SECOND, `second request ${sinceAttempt} ms after the recorded attempt`);
    const gap = requests[1]!.at - requests[0]!.at;
    assert.ok(gap >= 2 * SECOND, `second request ${gap} ms after the first`);
    assert.equal(simulator.stats().rateLimited, 0);
  });
});

test('a host in UTC and a host in KST compute the same expiry instant, file name and valid-date from the same answer', () => {
  const script = `
    const { parseKisTokenAnswer } = require(${JSON.stringify(join(__dirname, '..', 'src', 'providers', 'kis.js'))});
    const { parseKiwoomTokenAnswer } = require(${JSON.stringify(join(__dirname, '..', 'src', 'providers', 'kiwoom.js'))});
    const { sinkPaths, renderSink } = require(${JSON.stringify(join(__dirname, '..', 'src', 'sinks', 'formats.js'))});
    const now = Date.UTC(2026, 10, 20, 16, 30); // 01:30 KST on the 21st, still the 20th in UTC
    const kis = parseKisTokenAnswer({ status: 200, text: '', json: { access_token: 'eyJ' + 'a'.repeat(300), access_token_token_expired: '2026-11-22 01:00:00', token_type: 'Bearer', expires_in: 86400 } }, now, 86400000);
    const kiwoom = parseKiwoomTokenAnswer({ status: 200, text: '', json: { expires_dt: '20261122010000', token_type: 'bearer', token: 'k'.repeat(86), return_code: 0 } }, now, 86400000);
    const sink = { format: 'kis-auth', dir: '/k', readerTimeZones: ['Asia/Seoul', 'UTC'], writeAheadMs: 600000, validDateTimeZone: 'Asia/Seoul', keepDays: 7, access: {}, name: 'kis-auth' };
    const view = { accessToken: kis.accessToken, tokenType: 'Bearer', expiresAt: kis.expiresAt, issuedAt: now, raw: {}, approvalKey: undefined };
    process.stdout.write(JSON.stringify([kis.expiresAt, kiwoom.expiresAt, sinkPaths(sink, now), renderSink(sink, view).split('\\n')[1], new Date(now).getDate()]));`;
  const run = (tz: string) =>
    JSON.parse(spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, TZ: tz } }).stdout) as unknown[];
  const utc = run('UTC');
  const kst = run('Asia/Seoul');
  assert.notEqual(utc[4], kst[4], 'the two processes really are in different zones');
  assert.deepEqual(utc.slice(0, 4), kst.slice(0, 4));
  assert.deepEqual(utc.slice(0, 4), [
    Date.UTC(2026, 10, 21, 16, 0, 0),
    Date.UTC(2026, 10, 21, 16, 0, 0),
    ['/k/KIS20261121', '/k/KIS20261120'],
    'valid-date: 2026-11-22 01:00:00',
  ]);
  recordReliability({
    kind: 'fault',
    category: 'clock',
    fault: 'host time zone UTC versus Asia/Seoul',
    reason: '(none)',
    alert: 'none',
    issuances: 0,
    outcome:
      'the same expiry instant, daily file names (the KST and the UTC date) and valid-date computed in both zones (at 01:30 KST, when the two dates differ)',
  });
});

test('status exits 1 when a token is unusable, and changes nothing on disk', (t) => {
  const dir = tempDir(t);
  const cred = markerCredential('kis', 'status');
  const config = join(dir, 'config.yaml');
  writeFileSync(config, configText(join(dir, 'state'), 'http://127.0.0.1:9', [{ name: 'main', credential: cred }]));
  const result = spawnSync(process.execPath, [CLI, 'status', '--config', config], { encoding: 'utf8' });
  assert.equal(result.status, 1);
  assert.match(result.stdout, /BAD main \(kis, real\): missing - not usable\n {4}token: {9}none/);
  assert.equal(existsSync(join(dir, 'state')), false);
  assert.ok(statSync(config).isFile());
});

test('status and renew read without the credentials they do not need: unset ${VAR}s and an absent secret file are no obstacle; a path that needs them is', (t) => {
  const dir = tempDir(t);
  const config = join(dir, 'config.yaml');
  const text = (sinks: string) =>
    `stateDir: ./state\nserver: { enabled: false }\naccounts:\n  - name: main\n    provider: kis\n    appKey: \${STATUS_TEST_UNSET_KEY}\n    appSecretFile: /run/secrets/not-on-this-host\n    sinks:\n${sinks}`;
  writeFileSync(config, text(`      - { format: kis-auth, dir: ./KIS/config }\n`));
  const env = { PATH: process.env.PATH };
  const status = spawnSync(process.execPath, [CLI, 'status', '--config', config], { encoding: 'utf8', env });
  assert.equal(status.status, 1, status.stderr);
  assert.match(status.stdout, /no sidecar running on this state directory/);
  assert.match(status.stdout, /main \(kis, real\): missing - not usable/);
  // check-config, which validates, still names both.
  const check = spawnSync(process.execPath, [CLI, 'check-config', '--config', config], { encoding: 'utf8', env });
  assert.equal(check.status, 2);
  assert.match(check.stderr, /accounts\[0\]\.appKey: environment variable STATUS_TEST_UNSET_KEY is not set/);
  assert.match(check.stderr, /accounts\[0\]\.appSecretFile: cannot read \/run\/secrets\/not-on-this-host \(ENOENT\)/);
  // A file named after the app key cannot be found without it: said, with exit 2.
  writeFileSync(config, text(`      - { format: json, path: "./t/token_{appKeyPrefix}_{env}.json" }\n`));
  const needsKey = spawnSync(process.execPath, [CLI, 'status', '--config', config], { encoding: 'utf8', env });
  assert.equal(needsKey.status, 2);
  assert.match(needsKey.stderr, /accounts\[0\]\.sinks\[0\]\.path: \{appKeyPrefix\} needs the app key/);
  assert.equal(existsSync(join(dir, 'state')), false, 'nothing written');
});

test('gateway add-client before the config is complete: no secret read, no ${VAR} needed; the entry lands in gateway.clientsFile', (t) => {
  const dir = tempDir(t);
  const config = join(dir, 'sidecar.yaml');
  writeFileSync(
    config,
    `stateDir: ./state\ngateway:\n  enabled: true\n  port: 9555\n  clientsFile: ./gateway-clients.yaml\naccounts:\n  - name: main\n    provider: kis\n    appKey: \${ADD_CLIENT_UNSET_KEY}\n    appSecretFile: ./secrets/absent\n    sinks: []\n`,
  );
  const env = { PATH: process.env.PATH };
  // Before: the config names a clients file that does not exist yet, and says how to make it.
  const before = spawnSync(process.execPath, [CLI, 'check-config', '--config', config], { encoding: 'utf8', env });
  assert.match(before.stderr, /gateway\.clientsFile: cannot read \S+gateway-clients\.yaml \(ENOENT.*gateway add-client` makes it/);
  const add = (name: string) =>
    spawnSync(process.execPath, [CLI, 'gateway', 'add-client', '--config', config, '--name', name, '--account', 'main', '--dir', join(dir, name)], {
      encoding: 'utf8',
      env,
    });
  const first = add('bot');
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stdout, /added bot to \S+gateway-clients\.yaml/);
  const local = readFileSync(join(dir, 'bot', 'bot.gateway.yaml'), 'utf8');
  assert.match(local, /main: "http:\/\/127\.0\.0\.1:9555\/main"/);
  assert.equal(add('second').status, 0);
  const again = add('bot');
  assert.equal(again.status, 2);
  assert.match(again.stderr, /--name bot: the config already has a client of that name/);
  // With the credentials given, the config is now complete: both clients, from the file.
  const secret = `${'s'.repeat(180)}\n`;
  mkdirSync(join(dir, 'secrets'));
  writeFileSync(join(dir, 'secrets', 'absent'), secret);
  const check = spawnSync(process.execPath, [CLI, 'check-config', '--config', config], {
    encoding: 'utf8',
    env: { ...env, ADD_CLIENT_UNSET_KEY: 'P'.repeat(36) },
  });
  assert.equal(check.status, 0, check.stderr);
  assert.equal((readFileSync(join(dir, 'gateway-clients.yaml'), 'utf8').match(/^- \{ name: /gm) ?? []).length, 2);
  assert.equal(statSync(join(dir, 'gateway-clients.yaml')).mode & 0o777, 0o600);
});

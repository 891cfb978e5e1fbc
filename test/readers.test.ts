import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ScaledClock, TEST_CLOCK_ENV, systemClock, type Clock } from '../src/core/clock';
import { createSidecar } from '../src/wiring';
import { KST_ZONE, formatWallClock, parseDateTimeIn } from '../src/core/time';
import { tokenId } from '../src/store/account-state';
import { BrokerSimulator, generateCredential, type SimulatorCredential } from '../src/simulator';
import {
  CLI,
  LogCapture,
  configText,
  exited,
  freePort,
  markerCredential,
  parseTestConfig,
  recordReliability,
  spawnForTest,
  startSimulator,
  tempDir,
  until,
  closeBeforeCleanup,
} from './helpers';

type TestContext = { after(fn: () => void | Promise<void>): void };
import {
  canMountReadOnly,
  describeOutcome,
  replicaTools,
  runReplica,
  writeCredentialFiles,
  writeKisDevlp,
  type ReplicaOutcome,
  type ReplicaTools,
} from './replicas';

/**
 * Every reader, every clock. The sidecar runs as a process on a host clock in UTC (a container) or in Asia/Seoul,
 * through the hours where the two dates differ; at each instant the programs users run beside it (replicas that do
 * what kis_auth.py, python-kis and the JSON and Kiwoom token caches do, side effects included) start on a clock of
 * their own, UTC or Asia/Seoul, at that same instant. Each must get the sidecar's token and send the broker nothing.
 */

/** Simulated seconds per real second: the sidecar and the simulator share the clock; a phase lasts seconds. */
const SCALE = 120;
const HTS_ID = 'trader01';
const kst = (wallClock: string): number => parseDateTimeIn(wallClock, KST_ZONE)!;

interface Probe {
  at: string;
  label: string;
  /** Also a kis_auth.py bot that sees the token folder read-only, as through a `:ro` volume. */
  readOnly?: boolean;
  /**
   * The readers' clocks run this far ahead of the sidecar's (hosts' clocks differ by seconds): they start when the
   * sidecar's clock shows `at` minus this. At a midnight it means the bot looks for the new day's file before the
   * sidecar's own clock has reached that day.
   */
  aheadMs?: number;
  /**
   * Also the control: a bot in a zone on no list (Kiritimati, UTC+14, already on the next day), on the read-only
   * folder, before the next day's file is written.
   */
  control?: boolean;
}

interface Phase {
  /** Where the sidecar's clock starts (KST wall clock): a restart, with the state of the phase before. */
  start: string;
  probes: Probe[];
}

/**
 * A first start on a weekday morning (nothing on disk yet), then restarts through the day and over midnight KST. The
 * token issued at the first start lives through all of it. Each phase starts 24 to 40 simulated minutes (12 to 20 real
 * seconds) before its first reader: a sidecar on a machine busy with two CPU-bound processes and two other test files
 * was measured ready in 2.4 to 4.2 s, and 10 simulated minutes (5 s) was not always enough. A phase starts after the
 * last one's readers, so the clock never goes back across a restart.
 */
const PHASES: Phase[] = [
  { start: '2026-12-01 07:50:00', probes: [{ at: '2026-12-01 08:30:00', label: '08:30 KST, the UTC date still the day before', readOnly: true }] },
  {
    start: '2026-12-01 08:31:00',
    probes: [
      { at: '2026-12-01 09:00:00', label: '09:00 KST = 00:00:00 UTC, readers 5 minutes ahead', aheadMs: 5 * 60_000 },
      { at: '2026-12-01 09:00:30', label: 'just after 09:00 KST' },
    ],
  },
  { start: '2026-12-01 12:20:00', probes: [{ at: '2026-12-01 13:00:00', label: 'mid-day' }] },
  {
    start: '2026-12-01 23:00:00',
    probes: [
      { at: '2026-12-01 23:40:00', label: "before the next day's file is written (23:50 KST, writeAhead 10m)", readOnly: true, control: true },
      { at: '2026-12-01 23:59:30', label: 'just before 00:00 KST' },
      { at: '2026-12-02 00:00:00', label: "a bot imported at 00:00:00 KST, its clock 5 minutes ahead of the sidecar's", aheadMs: 5 * 60_000 },
      { at: '2026-12-02 00:00:30', label: 'just after 00:00 KST' },
    ],
  },
];

const READER_ZONES = ['UTC', 'Asia/Seoul'];

/** One clock for the simulator across the sidecar's restarts: each phase starts it again at a new instant. */
class PhaseClock implements Clock {
  private clock = new ScaledClock(0, Date.now(), SCALE);
  spec = '';
  start(instant: number): void {
    const realOrigin = Date.now();
    this.clock = new ScaledClock(instant, realOrigin, SCALE);
    this.spec = `${instant},${realOrigin},${SCALE}`;
  }
  now(): number {
    return this.clock.now();
  }
  monotonic(): number {
    return this.clock.monotonic();
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return this.clock.sleep(ms, signal);
  }
  /** Real milliseconds until this clock shows `instant` (negative once it has passed). */
  realMsUntil(instant: number): number {
    return (instant - this.clock.now()) / SCALE;
  }
}

interface World {
  tools: ReplicaTools;
  home: string;
  kis: SimulatorCredential;
  kiwoom: SimulatorCredential;
  kisFiles: { appKeyFile: string; secretFile: string };
  kiwoomFiles: { appKeyFile: string; secretFile: string };
  simulatorUrl: string;
}

/** Every consumer of the sidecar's files, started at `at` on a clock in `zone`. */
function startReaders(world: World, zone: string, at: number, readOnly: boolean): Array<Promise<[string, ReplicaOutcome]>> {
  const run = { tools: world.tools, home: world.home, timeZone: zone, at };
  const named = (name: string, outcome: Promise<ReplicaOutcome>) => outcome.then((o): [string, ReplicaOutcome] => [name, o]);
  const kisCreds = ['--appkey-file', world.kisFiles.appKeyFile, '--secret-file', world.kisFiles.secretFile];
  const kiwoomCreds = ['--appkey-file', world.kiwoomFiles.appKeyFile, '--secret-file', world.kiwoomFiles.secretFile];
  const base = ['--base', world.simulatorUrl];
  if (readOnly) {
    // The token folder mounted read-only into the bot, as a `:ro` volume: kis_auth.py's import must not need to write.
    return [named('kis_auth.py bot, token folder read-only', runReplica('kis_bot.py', [], { ...run, readOnly: join(world.home, 'KIS', 'config') }))];
  }
  return [
    named('kis_auth.py bot', runReplica('kis_bot.py', [], run)),
    named('python-kis', runReplica('pykis_bot.py', ['--id', HTS_ID, ...kisCreds], { ...run, env: { PYKIS_REPLICA_REAL_DOMAIN: world.simulatorUrl } })),
    named('KIS client JSON', runReplica('kis_client_json.py', [...base, ...kisCreds, '--mode', 'real'], run)),
    named('overseas cache', runReplica('overseas_cache.py', [...base, ...kisCreds, '--file', join(world.home, 'data', '.kis_token_cache.json')], run)),
    named('Kiwoom data/.token', runReplica('kiwoom_token.py', [...base, ...kiwoomCreds, '--file', join(world.home, 'data', '.token')], run)),
    named('kiwoom-client', runReplica('kiwoom_client.py', [...base, ...kiwoomCreds, '--file', join(world.home, 'data', 'kiwoom-token.json')], run)),
  ];
}

function sidecarConfig(dir: string, port: number, world: World): string {
  const h = world.home;
  return `stateDir: ${join(dir, 'state')}
log: { level: warn }
server: { host: 127.0.0.1, port: ${port} }
accounts:
  - name: kis
    provider: kis
    env: real
    appKey: "${world.kis.appKey}"
    appSecret: "${world.kis.appSecret}"
    baseUrl: ${world.simulatorUrl}
    sinks:
      - { format: kis-auth, dir: ${join(h, 'KIS', 'config')} }
      - { format: python-kis, dir: ${join(h, '.pykis', 'cache')}, htsId: ${HTS_ID} }
      - { format: json, path: "${join(h, 'KIS', 'tokens', 'token_{appKeyPrefix}_{env}.json')}", layout: kis-client }
      - { format: json, path: ${join(h, 'data', '.kis_token_cache.json')}, layout: overseas-cache }
  - name: kiwoom
    provider: kiwoom
    env: real
    appKey: "${world.kiwoom.appKey}"
    appSecret: "${world.kiwoom.appSecret}"
    baseUrl: ${world.simulatorUrl}
    sinks:
      - { format: json, path: ${join(h, 'data', '.token')}, layout: kiwoom-token }
      - { format: json, path: ${join(h, 'data', 'kiwoom-token.json')}, layout: raw }
`;
}

async function tokenIds(url: string): Promise<Record<string, string>> {
  const status = (await (await fetch(`${url}/status`)).json()) as { accounts: Array<{ account: string; tokenId: string | null }> };
  return Object.fromEntries(status.accounts.map((a) => [a.account, a.tokenId ?? 'none']));
}

const tools = replicaTools();

describe("every reader, every clock: replicas of the real clients read the sidecar's files and issue nothing", { concurrency: true }, () => {
  for (const sidecarZone of ['UTC', 'Asia/Seoul']) {
    test(`sidecar on a ${sidecarZone} clock`, async (t) => {
      if (!tools) return t.skip('python3 with PyYAML, or faketime, not installed');
      const readOnly = canMountReadOnly();
      if (!readOnly && process.env.CI) assert.fail('a read-only bind mount (unshare --user --mount) is needed in CI');
      const dir = tempDir(t);
      const home = join(dir, 'home');
      const kis = generateCredential('kis', `readers-${sidecarZone}`);
      const kiwoom = generateCredential('kiwoom', `readers-${sidecarZone}`);
      const clock = new PhaseClock();
      const simulator = new BrokerSimulator({ clock, credentials: [kis, kiwoom] });
      const simulatorUrl = await simulator.listen(0, '127.0.0.1');
      t.after(() => simulator.close());
      const world: World = {
        tools,
        home,
        kis,
        kiwoom,
        kisFiles: writeCredentialFiles(join(dir, 'secrets'), kis, 'kis'),
        kiwoomFiles: writeCredentialFiles(join(dir, 'secrets'), kiwoom, 'kiwoom'),
        simulatorUrl,
      };
      writeKisDevlp(home, kis, simulatorUrl);
      const port = await freePort();
      const configPath = join(dir, 'config.yaml');
      writeFileSync(configPath, sidecarConfig(dir, port, world));
      const sidecarUrl = `http://127.0.0.1:${port}`;
      let readerRuns = 0;

      for (const phase of PHASES) {
        clock.start(kst(phase.start));
        const sidecar = spawnForTest(t, process.execPath, [CLI, 'start', '--config', configPath], {
          env: { ...process.env, TZ: sidecarZone, [TEST_CLOCK_ENV]: clock.spec },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        sidecar.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
        await until(
          () => `the sidecar ready at ${phase.start} KST (${stderr.trim().split('\n').slice(-1)[0] ?? ''})`,
          20_000,
          async () => {
            if (sidecar.exitCode !== null) throw new Error(`the sidecar exited with ${sidecar.exitCode}: ${stderr}`);
            return (await fetch(`${sidecarUrl}/readyz`).catch(() => undefined))?.status === 200;
          },
          20,
        );

        const first = phase.probes[0]!;
        assert.ok(clock.realMsUntil(kst(first.at) - (first.aheadMs ?? 0)) > 0, `the sidecar was ready only after ${first.at} KST`);
        // Each probe's readers start when the sidecar's clock reaches the probe's instant, their own clocks set to
        // that instant; a probe does not wait for the one before to finish.
        const probes = await Promise.all(
          phase.probes.map(async (probe) => {
            const at = kst(probe.at);
            await new Promise((resolve) => setTimeout(resolve, clock.realMsUntil(at - (probe.aheadMs ?? 0))));
            // The control's import fails, as the real client's does on a read-only folder without its file: that shows
            // the mount really is read-only, and what readerTimeZones is for.
            const control = probe.control && readOnly ? startReaders(world, 'Pacific/Kiritimati', at, true)[0] : undefined;
            const byZone = await Promise.all(
              READER_ZONES.map((zone) =>
                Promise.all([...startReaders(world, zone, at, false), ...(probe.readOnly && readOnly ? startReaders(world, zone, at, true) : [])]),
              ),
            );
            return { probe, at, byZone, control: await control, expected: await tokenIds(sidecarUrl) };
          }),
        );
        for (const { probe, at, byZone, control, expected } of probes) {
          if (control) {
            await t.test(`${probe.label}: a bot on Pacific/Kiritimati (not a reader zone), folder read-only, fails at import`, () => {
              const [name, outcome] = control;
              assert.notEqual(outcome.status, 0, describeOutcome(name, outcome));
              assert.match(outcome.stderr, /OSError: \[Errno 30\] Read-only file system/);
            });
          }
          for (const [i, zone] of READER_ZONES.entries()) {
            const wall = formatWallClock(at, zone);
            await t.test(`${probe.label}: readers on ${zone} (their clock ${wall})`, () => {
              for (const [name, outcome] of byZone[i]!) {
                readerRuns += 1;
                const account = /kiwoom/i.test(name) ? 'kiwoom' : 'kis';
                const what = describeOutcome(name, outcome);
                assert.equal(outcome.status, 0, what);
                assert.ok(outcome.report?.token && tokenId(outcome.report.token) === expected[account], `${what}; the sidecar's token is ${expected[account]}`);
                assert.equal(outcome.report.tokenRequests, 0, what);
                if (name.startsWith('kis_auth.py')) {
                  assert.equal(outcome.report.createdAtImport, false, `${what}: its file did not exist when it was imported`);
                  const date = wall.slice(0, 10).replace(/-/g, '');
                  assert.equal(outcome.report.file, join(home, 'KIS', 'config', `KIS${date}`), `${what}: named after its own date`);
                }
              }
            });
          }
        }
        sidecar.kill('SIGTERM');
        assert.equal(await exited(sidecar), 0, stderr);
      }

      // Nobody but the sidecar ever asked the broker for a token: one issuance per app key, at the first start.
      assert.equal(simulator.stats(kis.appKey).tokenRequests, 1);
      assert.equal(simulator.stats(kiwoom.appKey).tokenRequests, 1);
      assert.ok(existsSync(join(home, 'KIS', 'config', 'kis_devlp.yaml')), "the user's own kis_devlp.yaml beside the token files is never touched");
      recordReliability({
        kind: 'readers',
        sidecarZone,
        readerZones: READER_ZONES,
        instants: PHASES.flatMap((p) => p.probes.map((probe) => probe.label)),
        readerRuns,
        readOnly,
        tokenRequests: simulator.stats(kis.appKey).tokenRequests + simulator.stats(kiwoom.appKey).tokenRequests,
      });
    });
  }
});

describe('a bot imported while its file is missing', () => {
  /** A sidecar in this process on the real clock, watching its files, with a kis_auth.py folder under `home`. */
  async function setup(t: TestContext) {
    const dir = tempDir(t);
    const home = join(dir, 'home');
    const cred = markerCredential('kis', 'missing');
    const { simulator, url } = await startSimulator(t, [cred], { clock: systemClock as never });
    const folder = writeKisDevlp(home, cred, url);
    const config = parseTestConfig(
      configText(join(dir, 'state'), url, [{ name: 'main', credential: cred, sinks: `- { format: kis-auth, dir: ${folder} }` }]),
      dir,
    );
    const open = async () => {
      const sidecar = createSidecar(config, { clock: systemClock, watch: true, logger: new LogCapture().logger });
      await sidecar.open();
      sidecar.run();
      closeBeforeCleanup(t, () => sidecar.close());
      await until('the token files', 10_000, () => sidecar.views()[0]!.ready, 20);
      return sidecar;
    };
    const dailyFiles = () =>
      readdirSync(folder)
        .filter((name) => /^KIS\d{8}$/.test(name))
        .map((name) => join(folder, name));
    return { home, folder, simulator, open, dailyFiles };
  }

  test('with the sidecar down and the folder read-only, the import fails and sends nothing; started again after the sidecar, the bot reads its token', async (t) => {
    if (!tools) return t.skip('python3 with PyYAML, or faketime, not installed');
    if (!canMountReadOnly()) return t.skip('no read-only bind mount here');
    const { home, folder, simulator, open, dailyFiles } = await setup(t);
    const first = await open();
    const token = first.views()[0]!.snapshot.state.token!.accessToken;
    await first.close();
    for (const file of dailyFiles()) unlinkSync(file); // deleted while the sidecar was down
    const bot = await runReplica('kis_bot.py', [], { tools, home, timeZone: 'UTC', readOnly: folder });
    assert.notEqual(bot.status, 0);
    assert.match(
      bot.stderr,
      /OSError: \[Errno 30\] Read-only file system/,
      'a read-only folder turns "no file" into a failed start, never into a token request',
    );
    assert.equal(simulator.stats().tokenRequests, 1);
    await open(); // restores every file from its state, with no issuance
    const again = await runReplica('kis_bot.py', [], { tools, home, timeZone: 'UTC', readOnly: folder });
    assert.equal(again.report?.token, token, describeOutcome('the bot started again', again));
    assert.equal(again.report.tokenRequests, 0);
    assert.equal(simulator.stats().tokenRequests, 1);
  });

  test('deleted while the sidecar runs: the sidecar puts every file back before a bot started at that moment imports', async (t) => {
    if (!tools) return t.skip('python3 with PyYAML, or faketime, not installed');
    const { home, simulator, open, dailyFiles } = await setup(t);
    const sidecar = await open();
    const token = sidecar.views()[0]!.snapshot.state.token!.accessToken;
    const repairs: number[] = [];
    sidecar.bus.on('sink.repaired', () => repairs.push(Date.now()));
    const rounds = 5;
    for (let round = 0; round < rounds; round++) {
      const files = dailyFiles();
      for (const file of files) unlinkSync(file);
      const deletedAt = Date.now();
      const bot = await runReplica('kis_bot.py', [], { tools, home, timeZone: round % 2 === 0 ? 'UTC' : 'Asia/Seoul' });
      const what = describeOutcome(`round ${round}`, bot);
      assert.equal(bot.report?.token, token, what);
      assert.deepEqual([bot.report.tokenRequests, bot.report.createdAtImport], [0, false], what);
      await until('every file back', 2_000, () => dailyFiles().length === files.length, 5);
      assert.ok(
        repairs.some((at) => at >= deletedAt),
        'the sidecar repaired the deleted files',
      );
    }
    assert.equal(simulator.stats().tokenRequests, 1);
  });
});

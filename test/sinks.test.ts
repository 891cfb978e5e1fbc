import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { ManualClock } from '../src/core/clock';
import { writeFileAtomic, nodeFileSystem, type FileSystem } from '../src/core/atomic-file';
import { formatWallClock } from '../src/core/time';
import { kisAuthStamps, nextKisAuthChange } from '../src/sinks/formats';
import { accountReport } from '../src/http/status';
import { readOfflineStatus } from '../src/cli/offline-status';
import { formatReport } from '../src/cli/output';
import type { KisAuthSinkConfig } from '../src/config/types';
import type { SidecarEvents } from '../src/core/events';
import type { Sidecar } from '../src/sidecar';
import { describeOutcome, replicaTools, runReplica, writeCredentialFiles, writeKisDevlp, type ReplicaOutcome, type ReplicaRun } from './replicas';
import {
  HOUR,
  MINUTE,
  SECOND,
  T0,
  configText,
  markerCredential,
  parseTestConfig,
  runAccountUntil,
  spawnForTest,
  startSimulator,
  tempDir,
  testSidecar,
  until,
  closeBeforeCleanup,
  opensForWriting,
  realPathOf,
} from './helpers';

function collect<K extends keyof SidecarEvents>(sidecar: Sidecar, event: K): Array<SidecarEvents[K]> {
  const seen: Array<SidecarEvents[K]> = [];
  sidecar.bus.on(event, (payload) => seen.push(payload));
  return seen;
}

async function sidecarWithSinks(
  t: any,
  sinks: (dir: string) => string,
  options: { clock?: ManualClock; watch?: boolean; fs?: FileSystem; extra?: string } = {},
) {
  const dir = tempDir(t);
  const cred = markerCredential('kis', 'sinks');
  const { simulator, url, clock } = await startSimulator(t, [cred], { clock: options.clock });
  const text = configText(join(dir, 'state'), url, [{ name: 'main', credential: cred, sinks: sinks(dir), extra: options.extra }]);
  const sidecar = testSidecar(parseTestConfig(text, dir), clock, { watch: options.watch ?? false, fs: options.fs });
  await sidecar.open();
  closeBeforeCleanup(t, () => sidecar.close());
  await runAccountUntil(sidecar, 'main', clock, clock.now() + MINUTE);
  await sidecar.sinks.idle();
  return { dir, sidecar, simulator, clock, cred, url, token: sidecar.views()[0]!.snapshot.state.token! };
}

describe('sink formats read back by their consumers (the replicas in test/replicas)', () => {
  const tools = replicaTools();

  test('kis-auth: exactly the two lines kis_auth.py writes; a bot importing kis_auth.py on KST gets the token and sends nothing', async (t) => {
    const { dir, sidecar, simulator, token, url, cred } = await sidecarWithSinks(t, (d) => `- { format: kis-auth, dir: ${join(d, 'home', 'KIS', 'config')} }`);
    const file = join(dir, 'home', 'KIS', 'config', 'KIS20261120');
    assert.equal(fs.readFileSync(file, 'utf8'), `token: ${token.accessToken}\nvalid-date: 2026-11-21 09:00:00\n`);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.statSync(join(dir, 'home', 'KIS', 'config')).mode & 0o777, 0o700);
    assert.equal(sidecar.views()[0]!.ready, true);
    if (!tools) return t.skip('python3 with PyYAML, or faketime, not installed');
    writeKisDevlp(join(dir, 'home'), cred, url);
    const bot = await runReplica('kis_bot.py', [], { tools, home: join(dir, 'home'), timeZone: 'Asia/Seoul', at: T0 + 5 * MINUTE });
    const what = describeOutcome('kis_auth.py bot', bot);
    assert.equal(bot.report?.token, token.accessToken, what);
    assert.deepEqual([bot.report.tokenRequests, bot.report.createdAtImport, bot.report.file], [0, false, file], what);
    assert.equal(simulator.stats().tokenRequests, 1);
  });

  test('kis-auth with valid-date in UTC, for readers that all run on UTC: the file of the UTC date holds a UTC wall clock', async (t) => {
    const { dir, token, url, cred, simulator } = await sidecarWithSinks(
      t,
      (d) => `- { format: kis-auth, dir: ${join(d, 'home', 'KIS', 'config')}, validDateTimeZone: UTC }`,
    );
    // 09:00 KST on the 20th is 00:00 UTC on the 20th; the token ends 00:00 UTC on the 21st.
    assert.equal(fs.readFileSync(join(dir, 'home', 'KIS', 'config', 'KIS20261120'), 'utf8'), `token: ${token.accessToken}\nvalid-date: 2026-11-21 00:00:00\n`);
    if (!tools) return t.skip('python3 with PyYAML, or faketime, not installed');
    writeKisDevlp(join(dir, 'home'), cred, url);
    const bot = await runReplica('kis_bot.py', [], { tools, home: join(dir, 'home'), timeZone: 'UTC', at: Date.UTC(2026, 10, 20, 23, 59, 0) });
    assert.equal(bot.report?.token, token.accessToken, describeOutcome('kis_auth.py bot on UTC', bot));
    assert.equal(simulator.stats().tokenRequests, 1);
  });

  test('python-kis: the file PyKis(keep_token=DIR) loads, under the name it computes itself, read with no issuance', async (t) => {
    const { dir, token, url, cred, simulator } = await sidecarWithSinks(t, (d) => `- { format: python-kis, dir: ${join(d, 'pykis')}, htsId: trader01 }`);
    const [name] = fs.readdirSync(join(dir, 'pykis'));
    assert.match(name!, /^token_real_trader01_[0-9a-f]{40}\.json$/);
    const kept = JSON.parse(fs.readFileSync(join(dir, 'pykis', name!), 'utf8'));
    assert.deepEqual(Object.keys(kept).sort(), ['access_token', 'access_token_token_expired', 'expires_in', 'token_type']);
    assert.equal(kept.access_token_token_expired, formatWallClock(token.expiresAt));
    if (!tools) return t.skip('python3 with PyYAML, or faketime, not installed');
    const creds = writeCredentialFiles(join(dir, 'secrets'), cred, 'kis');
    const bot = await runReplica(
      'pykis_bot.py',
      ['--id', 'trader01', '--appkey-file', creds.appKeyFile, '--secret-file', creds.secretFile, '--keep-token', join(dir, 'pykis')],
      {
        tools,
        home: dir,
        timeZone: 'UTC',
        at: T0 + HOUR,
        env: { PYKIS_REPLICA_REAL_DOMAIN: url },
      },
    );
    const what = describeOutcome('python-kis', bot);
    assert.equal(bot.report?.token, token.accessToken, what);
    assert.equal(bot.report.file, join(dir, 'pykis', name!), what);
    assert.equal(bot.report.tokenRequests, 0, what);
    assert.equal(simulator.stats().tokenRequests, 1);
  });

  test('every JSON layout is read by its consumer, on its own clock, with no issuance', async (t) => {
    const { dir, token, url, cred, simulator } = await sidecarWithSinks(t, (d) =>
      [
        `- { format: json, path: "${join(d, 'home', 'KIS', 'tokens', 'token_{appKeyPrefix}_{env}.json')}", layout: kis-client }`,
        `- { format: json, path: ${join(d, 'data', '.kis_token_cache.json')}, layout: overseas-cache }`,
        `- { format: json, path: ${join(d, 'data', '.token')}, layout: kiwoom-token }`,
        `- { format: json, path: ${join(d, 'raw.json')}, layout: raw }`,
      ].join('\n'),
    );
    const kisClient = join(dir, 'home', 'KIS', 'tokens', `token_${cred.appKey.slice(0, 10)}_real.json`);
    const parsed = JSON.parse(fs.readFileSync(kisClient, 'utf8'));
    assert.deepEqual(Object.keys(parsed), ['access_token', 'token_type', 'expires_in', 'issued_at', 'expiry_datetime']);
    assert.equal(parsed.expires_in, 86400);
    assert.match(parsed.expiry_datetime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
    assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(join(dir, 'data', '.kis_token_cache.json'), 'utf8'))), ['access_token', 'expires_at', 'cached_at']);
    const kiwoom = JSON.parse(fs.readFileSync(join(dir, 'data', '.token'), 'utf8'));
    assert.deepEqual(Object.keys(kiwoom), ['access_token', 'expires_at', 'created_at']);
    assert.match(kiwoom.expires_at, /\+09:00$/);
    assert.equal(JSON.parse(fs.readFileSync(join(dir, 'raw.json'), 'utf8')).access_token_token_expired, formatWallClock(token.expiresAt));
    if (!tools) return t.skip('python3 with PyYAML, or faketime, not installed');
    const creds = writeCredentialFiles(join(dir, 'secrets'), cred, 'kis');
    const args = ['--base', url, '--appkey-file', creds.appKeyFile, '--secret-file', creds.secretFile];
    for (const zone of ['Asia/Seoul', 'UTC']) {
      const run: ReplicaRun = { tools, home: join(dir, 'home'), timeZone: zone, at: T0 + HOUR };
      const outcomes: Array<readonly [string, ReplicaOutcome]> = await Promise.all([
        runReplica('kis_client_json.py', [...args, '--mode', 'real'], run).then((o) => ['KIS client JSON', o] as const),
        runReplica('overseas_cache.py', [...args, '--file', join(dir, 'data', '.kis_token_cache.json')], run).then((o) => ['overseas cache', o] as const),
        runReplica('kiwoom_token.py', [...args, '--file', join(dir, 'data', '.token')], run).then((o) => ['Kiwoom data/.token', o] as const),
      ]);
      for (const [name, outcome] of outcomes) {
        const what = describeOutcome(`${name} on ${zone}`, outcome);
        assert.equal(outcome.report?.token, token.accessToken, what);
        assert.equal(outcome.report.tokenRequests, 0, what);
      }
    }
    assert.equal(simulator.stats().tokenRequests, 1);
  });

  test('approval-key: the WebSocket key from /oauth2/Approval, renewed with each token', async (t) => {
    const { dir, simulator, sidecar } = await sidecarWithSinks(
      t,
      (d) => `- { format: approval-key, path: ${join(d, 'ws.key')} }\n- { format: json, path: ${join(d, 't.json')} }`,
    );
    const key = fs.readFileSync(join(dir, 'ws.key'), 'utf8');
    assert.match(key, /^\S{8,}\n$/);
    assert.equal(sidecar.views()[0]!.snapshot.state.approvalKey?.key, key.trim());
    assert.equal(simulator.stats().approvals, 1);
    assert.equal(sidecar.views()[0]!.ready, true);
  });
});

describe('watching and repair, with no issuance', () => {
  const damage: Array<[string, (file: string) => void, string]> = [
    ['deleted', (f) => fs.unlinkSync(f), 'missing'],
    ['emptied', (f) => fs.truncateSync(f, 0), 'empty'],
    ['truncated', (f) => fs.truncateSync(f, 40), 'truncated'],
    ['corrupted', (f) => fs.writeFileSync(f, 'garbage\x00\x01'), 'corrupt'],
    ['given another token', (f) => fs.writeFileSync(f, 'token: eyJotherothertokenvalue\nvalid-date: 2026-11-21 09:00:00\n'), 'other_token'],
    ['chmod 0644', (f) => fs.chmodSync(f, 0o644), 'mode'],
  ];
  for (const [what, harm, reason] of damage) {
    test(`a sink file ${what} is repaired within a second (reason ${reason})`, async (t) => {
      const { dir, sidecar, simulator, token } = await sidecarWithSinks(t, (d) => `- { format: kis-auth, dir: ${join(d, 'KIS')} }`, { watch: true });
      const file = join(dir, 'KIS', 'KIS20261120');
      const expected = fs.readFileSync(file, 'utf8');
      const repairs = collect(sidecar, 'sink.repaired');
      const issued = simulator.stats().tokenRequests;
      harm(file);
      const took = await until('a repair', 1000, () => repairs.length > 0, 5);
      await sidecar.sinks.idle();
      assert.equal(repairs[0]!.reason, reason);
      assert.equal(fs.readFileSync(file, 'utf8'), expected);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      assert.ok(expected.includes(token.accessToken));
      assert.equal(simulator.stats().tokenRequests, issued, 'no issuance for a repair');
      assert.ok(took < 1000, `took ${took} ms`);
    });
  }

  test('the periodic sweep repairs too, where file-system events do not arrive', async (t) => {
    const { dir, sidecar } = await sidecarWithSinks(t, (d) => `- { format: json, path: ${join(d, 't.json')} }`, { watch: false });
    const repairs = collect(sidecar, 'sink.repaired');
    fs.unlinkSync(join(dir, 't.json'));
    await sidecar.sinks.tick();
    assert.deepEqual(
      repairs.map((r) => r.reason),
      ['missing'],
    );
    assert.ok(fs.existsSync(join(dir, 't.json')));
  });

  test('a symlink planted at a sink path is refused and reported; nothing is written through it', async (t) => {
    const { dir, sidecar } = await sidecarWithSinks(t, (d) => `- { format: json, path: ${join(d, 't.json')} }`, { watch: true });
    const failures = collect(sidecar, 'sink.write_failed');
    const target = join(dir, 'elsewhere.txt');
    fs.writeFileSync(target, 'precious');
    fs.unlinkSync(join(dir, 't.json'));
    fs.symlinkSync(target, join(dir, 't.json'));
    await until('a failure', 1000, () => failures.length > 0, 5);
    await sidecar.sinks.tick();
    assert.equal(failures[0]!.reason, 'symlink');
    assert.equal(fs.readFileSync(target, 'utf8'), 'precious');
    assert.ok(fs.lstatSync(join(dir, 't.json')).isSymbolicLink());
    const status = sidecar.views()[0]!.sinks[0]!;
    assert.equal(status.healthy, false);
    assert.equal(status.lastError?.reason, 'symlink');
    assert.equal(sidecar.views()[0]!.ready, false);
  });

  test('a sink that cannot be written (disk full) is retried with backoff and never holds up the other sinks', async (t) => {
    let full = false;
    const failing: FileSystem = {
      ...nodeFileSystem,
      open: (async (path: fs.PathLike, flags?: any, mode?: any) => {
        if (full && realPathOf(path).includes('/full/') && opensForWriting(flags))
          throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
        return fsp.open(path, flags, mode);
      }) as FileSystem['open'],
    };
    const { dir, sidecar, clock } = await sidecarWithSinks(
      t,
      (d) => `- { format: json, name: a, path: ${join(d, 'full', 'a.json')} }\n- { format: json, name: b, path: ${join(d, 'ok', 'b.json')} }`,
      { fs: failing },
    );
    const failures = collect(sidecar, 'sink.write_failed');
    const recovered = collect(sidecar, 'sink.recovered');
    full = true;
    // A renewal: the token changes; sink a cannot take it, sink b can.
    clock.set(T0 + 7 * HOUR);
    const outcome = await sidecar.renew('main', true);
    assert.equal(outcome?.result, 'issued');
    await sidecar.sinks.idle();
    const token = sidecar.views()[0]!.snapshot.state.token!.accessToken;
    assert.equal(JSON.parse(fs.readFileSync(join(dir, 'ok', 'b.json'), 'utf8')).access_token, token);
    assert.notEqual(JSON.parse(fs.readFileSync(join(dir, 'full', 'a.json'), 'utf8')).access_token, token);
    assert.deepEqual(
      failures.map((f) => [f.sink, f.reason]),
      [['a', 'disk_full']],
    );
    // Backoff: 1 s, then 2 s.
    clock.set(clock.now() + SECOND);
    await sidecar.sinks.tick();
    assert.equal(failures.length, 2);
    clock.set(clock.now() + SECOND);
    await sidecar.sinks.tick();
    assert.equal(failures.length, 2, 'still backing off');
    full = false;
    clock.set(clock.now() + SECOND);
    await sidecar.sinks.tick();
    assert.equal(recovered.length, 1);
    assert.equal(JSON.parse(fs.readFileSync(join(dir, 'full', 'a.json'), 'utf8')).access_token, token);
    assert.equal(sidecar.views()[0]!.ready, true);
  });

  test('an empty daily file (what kis_auth.py creates at import) is replaced at once', async (t) => {
    const { dir, sidecar } = await sidecarWithSinks(t, (d) => `- { format: kis-auth, dir: ${join(d, 'KIS')} }`, { watch: true });
    const repairs = collect(sidecar, 'sink.repaired');
    fs.writeFileSync(join(dir, 'KIS', 'KIS20261120'), '');
    await until('a repair', 1000, () => repairs.length > 0, 5);
    assert.equal(repairs[0]!.reason, 'empty');
  });
});

describe('midnight rollover and clean-up', () => {
  test("the daily file names at each instant: the date in each reader zone, and the next day's from writeAhead before that zone's midnight", () => {
    const sink = { format: 'kis-auth', dir: '/k', readerTimeZones: ['Asia/Seoul', 'UTC'], writeAheadMs: 10 * MINUTE } as KisAuthSinkConfig;
    const cases: Array<[string, string[], string]> = [
      ['2026-11-30T14:49:59Z', ['20261130'], '23:49:59 KST: one date everywhere'],
      ['2026-11-30T14:50:00Z', ['20261130', '20261201'], "23:50 KST: the next KST day's file, ahead of midnight"],
      ['2026-11-30T15:00:00Z', ['20261201', '20261130'], '00:00 KST: the UTC date is still the 30th'],
      ['2026-11-30T23:50:00Z', ['20261201', '20261130'], '08:50 KST: the next UTC day is the KST date, already there'],
      ['2026-12-01T00:00:00Z', ['20261201'], '09:00 KST = 00:00 UTC: one date again'],
    ];
    for (const [instant, stamps, what] of cases) assert.deepEqual(kisAuthStamps(sink, Date.parse(instant)), stamps, what);
    assert.equal(nextKisAuthChange(sink, Date.parse('2026-11-30T03:00:00Z')), Date.parse('2026-11-30T14:50:00Z'));
    assert.equal(nextKisAuthChange(sink, Date.parse('2026-11-30T14:50:00Z')), Date.parse('2026-11-30T23:50:00Z'));
  });

  test("the new day's file appears ahead of midnight KST with the same token; files past keepDays go; nothing else is touched", async (t) => {
    const start = Date.UTC(2026, 10, 20, 14, 40, 0); // 23:40 KST on the 20th
    const dirs: string[] = [];
    const { sidecar, simulator, clock, token } = await sidecarWithSinks(
      t,
      (d) => {
        const kis = join(d, 'KIS');
        fs.mkdirSync(kis, { recursive: true });
        for (const name of ['KIS20261112', 'KIS20261113', 'KIS20261114', 'KIS20261119', 'KIS2026111', 'notes.txt', 'KIS20261101.bak'])
          fs.writeFileSync(join(kis, name), 'x');
        dirs.push(kis);
        return `- { format: kis-auth, dir: ${kis}, keepDays: 7 }`;
      },
      { clock: new ManualClock(start) },
    );
    const kis = dirs[0]!;
    const written = collect(sidecar, 'sink.written');
    assert.ok(!fs.existsSync(join(kis, 'KIS20261121')), 'not yet: midnight is 20 minutes away');
    clock.set(Date.UTC(2026, 10, 20, 14, 49, 58));
    const next = await sidecar.sinks.tick();
    assert.equal(next, Date.UTC(2026, 10, 20, 14, 50, 0), 'the sink loop wakes 10 minutes (writeAhead) before midnight KST');
    clock.set(next);
    await sidecar.sinks.tick();
    const expected = `token: ${token.accessToken}\nvalid-date: ${formatWallClock(token.expiresAt)}\n`;
    assert.equal(fs.readFileSync(join(kis, 'KIS20261121'), 'utf8'), expected);
    assert.equal(fs.readFileSync(join(kis, 'KIS20261120'), 'utf8'), expected, "today's file stays for the readers still on the 20th");
    assert.deepEqual(
      written.map((w) => [w.cause, w.path]),
      [['rollover', join(kis, 'KIS20261121')]],
    );
    assert.equal(simulator.stats().tokenRequests, 1);
    // keepDays 7, counted from the earliest date a reader zone shows (UTC: the 20th): the 13th and later stay.
    assert.deepEqual(fs.readdirSync(kis).sort(), [
      'KIS20261101.bak',
      'KIS2026111',
      'KIS20261113',
      'KIS20261114',
      'KIS20261119',
      'KIS20261120',
      'KIS20261121',
      'notes.txt',
    ]);
    // The next change of names: 10 minutes before midnight UTC (08:50 KST), when no new name is needed (the UTC
    // date then is the KST date, already written): nothing is written.
    assert.equal(nextKisAuthChange(sidecar.config.accounts[0]!.sinks[0] as KisAuthSinkConfig, clock.now()), Date.UTC(2026, 10, 20, 23, 50, 0));
    clock.set(Date.UTC(2026, 10, 20, 23, 50, 0));
    await sidecar.sinks.tick();
    assert.equal(written.length, 1);
  });

  test('between 00:00 and 09:00 KST a file under the KST date and one under the UTC date: both watched, repaired, reported and removed on revoke', async (t) => {
    const { dir, sidecar, simulator, token, clock } = await sidecarWithSinks(t, (d) => `- { format: kis-auth, dir: ${join(d, 'KIS')} }`, {
      clock: new ManualClock(Date.UTC(2026, 10, 20, 16, 0, 0)), // 01:00 KST on the 21st, 16:00 UTC on the 20th
      watch: true,
    });
    const kst = join(dir, 'KIS', 'KIS20261121');
    const utc = join(dir, 'KIS', 'KIS20261120');
    const expected = `token: ${token.accessToken}\nvalid-date: ${formatWallClock(token.expiresAt)}\n`;
    assert.equal(fs.readFileSync(kst, 'utf8'), expected);
    assert.equal(fs.readFileSync(utc, 'utf8'), expected, 'the same content under every name: valid-date stays the KST wall clock');
    const status = sidecar.views()[0]!.sinks[0]!;
    assert.deepEqual(
      status.files.map((f) => [f.path, f.healthy]),
      [
        [kst, true],
        [utc, true],
      ],
    );
    assert.equal(status.path, kst);
    // /status and `status` (which reads the files itself, with no sidecar to ask) name both.
    assert.deepEqual(accountReport(sidecar.views()[0]!, clock.now()).sinks[0]!.files, [
      { path: kst, present: true, healthy: true, mode: '0600' },
      { path: utc, present: true, healthy: true, mode: '0600' },
    ]);
    const offline = await readOfflineStatus(sidecar.config, clock.now());
    assert.deepEqual(
      offline[0]!.sinks[0]!.files.map((f) => [f.path, f.healthy]),
      [
        [kst, true],
        [utc, true],
      ],
    );
    assert.match(formatReport([accountReport(offline[0]!, clock.now())]), new RegExp(`ok {10,}${utc.replace(/[/.]/g, '\\$&')}`));
    const repairs = collect(sidecar, 'sink.repaired');
    fs.unlinkSync(utc);
    await until('a repair', 1000, () => repairs.length > 0, 5);
    await sidecar.sinks.idle();
    assert.deepEqual(
      repairs.map((r) => [r.path, r.reason]),
      [[utc, 'missing']],
    );
    assert.equal(fs.readFileSync(utc, 'utf8'), expected);
    // A file that cannot be written under one name never keeps the other from its repair.
    fs.unlinkSync(utc);
    fs.mkdirSync(utc);
    fs.writeFileSync(kst, '');
    await until('the KST file repaired', 1000, () => fs.readFileSync(kst, 'utf8') === expected, 5);
    await sidecar.sinks.tick();
    const broken = sidecar.views()[0]!.sinks[0]!;
    assert.equal(broken.healthy, false);
    assert.deepEqual(
      broken.files.map((f) => f.healthy),
      [true, false],
    );
    assert.equal(broken.lastError?.reason, 'not_regular_file');
    assert.equal(sidecar.views()[0]!.ready, false);
    fs.rmdirSync(utc);
    clock.advance(61 * SECOND); // past the write backoff
    await sidecar.sinks.checkAll();
    assert.equal(sidecar.views()[0]!.ready, true);
    assert.equal(simulator.stats().tokenRequests, 1);
    await sidecar.account('main')!.revoke();
    assert.ok(!fs.existsSync(kst) && !fs.existsSync(utc), 'a revoked token leaves no file under any name');
  });

  test('a token change also refreshes the earlier daily files still kept, for bots that imported yesterday', async (t) => {
    const { dir, sidecar, clock } = await sidecarWithSinks(t, (d) => `- { format: kis-auth, dir: ${join(d, 'KIS')} }`);
    clock.set(Date.UTC(2026, 10, 20, 23, 0, 0)); // 08:00 KST on the 21st
    await sidecar.sinks.tick();
    assert.ok(fs.existsSync(join(dir, 'KIS', 'KIS20261121')));
    await sidecar.renew('main', true);
    await sidecar.sinks.idle();
    const fresh = sidecar.views()[0]!.snapshot.state.token!.accessToken;
    for (const day of ['KIS20261120', 'KIS20261121']) assert.ok(fs.readFileSync(join(dir, 'KIS', day), 'utf8').includes(fresh), day);
  });
});

describe('atomic writes', () => {
  test('many concurrent readers during a thousand rewrites never see a partial or empty file', async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'token.json');
    const contents = ['A', 'B'].map((c) => `${JSON.stringify({ access_token: c.repeat(350), expires_at: '2026-11-21T09:00:00+09:00' }, null, 2)}\n`);
    await writeFileAtomic(file, contents[0]!, { mode: 0o600, dirMode: 0o700 });
    const reader = `
      const fs = require('fs');
      const ok = new Set(${JSON.stringify(contents)});
      let reads = 0, bad = 0;
      const stopAt = Date.now() + 60000;
      process.on('message', () => process.send({ reads, bad }, () => process.exit(0)));
      (function loop() {
        for (let i = 0; i < 200; i++) {
          let text = null;
          try { text = fs.readFileSync(${JSON.stringify(file)}, 'utf8'); } catch (e) { bad++; continue; }
          reads++;
          if (!ok.has(text)) bad++;
        }
        if (Date.now() < stopAt) setImmediate(loop);
      })();`;
    const readers = Array.from({ length: 4 }, () => spawnForTest(t, process.execPath, ['-e', reader], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 1000; i++) await writeFileAtomic(file, contents[i % 2]!, { mode: 0o600, dirMode: 0o700 });
    const results = await Promise.all(
      readers.map(
        (child) =>
          new Promise<{ reads: number; bad: number }>((resolve, reject) => {
            child.once('message', (m) => resolve(m as { reads: number; bad: number }));
            child.once('exit', (code) => reject(new Error(`a reader exited with ${code} before it reported`)));
            child.send('stop');
          }),
      ),
    );
    const reads = results.reduce((n, r) => n + r.reads, 0);
    assert.ok(reads > 1000, `only ${reads} reads`);
    assert.deepEqual(
      results.map((r) => r.bad),
      [0, 0, 0, 0],
    );
    assert.deepEqual(fs.readdirSync(dir), ['token.json'], 'no temp file left behind');
  });

  test('mode is right whatever the umask, and set before the content is written', async (t) => {
    const dir = tempDir(t);
    const previous = process.umask(0o000);
    try {
      await writeFileAtomic(join(dir, 'sub', 'f'), 'x', { mode: 0o600, dirMode: 0o700 });
    } finally {
      process.umask(previous);
    }
    assert.equal(fs.statSync(join(dir, 'sub', 'f')).mode & 0o777, 0o600);
    assert.equal(fs.statSync(join(dir, 'sub')).mode & 0o777, 0o700);
    const strict = process.umask(0o277);
    try {
      await writeFileAtomic(join(dir, 'g'), 'x', { mode: 0o640, dirMode: 0o750 });
    } finally {
      process.umask(strict);
    }
    assert.equal(fs.statSync(join(dir, 'g')).mode & 0o777, 0o640);
  });
});

describe('start-up checks and notifications', () => {
  test('a sink path that is a directory fails at start with a clear message, before any request', async (t) => {
    const dir = tempDir(t);
    const cred = markerCredential('kis', 'preflight');
    const { simulator, url, clock } = await startSimulator(t, [cred]);
    fs.mkdirSync(join(dir, 'taken.json'), { recursive: true });
    const sidecar = testSidecar(
      parseTestConfig(
        configText(join(dir, 'state'), url, [{ name: 'main', credential: cred, sinks: `- { format: json, path: ${join(dir, 'taken.json')} }` }]),
        dir,
      ),
      clock,
    );
    await assert.rejects(sidecar.open(), (error: Error) => {
      assert.match(error.message, /account main, sink json \(.*taken\.json\): not_regular_file: .*taken\.json exists and is a directory/);
      return true;
    });
    assert.equal(simulator.stats().tokenRequests, 0);
  });

  test('notify: a command runs after the token changes (account, sink and path in its environment, no token)', async (t) => {
    const marker = join(tempDir(t), 'notified');
    const { dir, sidecar } = await sidecarWithSinks(
      t,
      (d) =>
        `- format: json\n  path: ${join(d, 't.json')}\n  notify: { command: ["/bin/sh", "-c", "env | grep -E '^BROKER_TOKEN_|TOKEN' > ${marker}.tmp && mv ${marker}.tmp ${marker}"] }`,
    );
    await until('the signalled process to answer', 3000, () => fs.existsSync(marker), 5);
    const env = fs.readFileSync(marker, 'utf8');
    assert.match(env, /BROKER_TOKEN_ACCOUNT=main/);
    assert.match(env, new RegExp(`BROKER_TOKEN_FILE=${join(dir, 't.json')}`));
    const token = sidecar.views()[0]!.snapshot.state.token!.accessToken;
    assert.match(env, /^BROKER_TOKEN_SINK=\S+$/m);
    // The three variables, and no other that names a token.
    assert.deepEqual(
      env
        .trim()
        .split('\n')
        .map((line) => line.split('=')[0])
        .sort(),
      ['BROKER_TOKEN_ACCOUNT', 'BROKER_TOKEN_FILE', 'BROKER_TOKEN_SINK'],
    );
    assert.ok(!env.includes(token));
  });

  test('notify: a signal goes to the process named in a pid file', async (t) => {
    const dir0 = tempDir(t);
    const marker = join(dir0, 'hup');
    // The application says when its handler is in place; a SIGHUP before that would kill it.
    const child = spawnForTest(
      t,
      process.execPath,
      [
        '-e',
        `process.on('SIGHUP', () => { require('fs').writeFileSync(${JSON.stringify(marker)}, 'hup'); process.exit(0); }); console.log('ready'); setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`the application exited with ${code} before its handler was in place`)));
    });
    fs.writeFileSync(join(dir0, 'app.pid'), `${child.pid}\n`);
    await sidecarWithSinks(t, (d) => `- format: json\n  path: ${join(d, 't.json')}\n  notify: { signal: SIGHUP, pidFile: ${join(dir0, 'app.pid')} }`);
    await until('the signalled process to answer', 3000, () => fs.existsSync(marker), 5);
    assert.equal(fs.readFileSync(marker, 'utf8'), 'hup');
  });
});

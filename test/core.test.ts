import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readdirSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ManualClock } from '../src/core/clock';
import { CoalescingRunner } from '../src/core/coalescing';
import { forEachBounded } from '../src/core/limiter';
import { nodeFileSystem, removeStaleTempFiles, tempPrefixFor, writeFileInDirectory } from '../src/core/atomic-file';
import { PathComponentError } from '../src/core/errors';
import { openDirectoryNoFollow } from '../src/core/held-directory';
import { Writable } from 'node:stream';
import { createLogger } from '../src/logging/logger';
import { SecretRegistry } from '../src/core/secrets';
import { tempDir } from './helpers';

const tick = () => new Promise((r) => setImmediate(r));

describe('forEachBounded', () => {
  test('runs every item, never more than the limit at once', async () => {
    let running = 0;
    let most = 0;
    const seen: number[] = [];
    await forEachBounded([...Array(50).keys()], 4, async (i) => {
      running++;
      most = Math.max(most, running);
      await tick();
      seen.push(i);
      running--;
    });
    assert.equal(most, 4);
    assert.deepEqual(
      [...seen].sort((a, b) => a - b),
      [...Array(50).keys()],
    );
  });

  test('after the first failure no new item starts; the running ones finish before the error is thrown', async () => {
    const started: number[] = [];
    const finished: number[] = [];
    await assert.rejects(
      forEachBounded([0, 1, 2, 3, 4, 5, 6, 7], 3, async (i) => {
        started.push(i);
        await tick();
        if (i === 1) throw new Error('item 1 failed');
        await tick();
        finished.push(i);
      }),
      /item 1 failed/,
    );
    assert.deepEqual(started, [0, 1, 2]);
    assert.deepEqual(finished.sort(), [0, 2]);
  });

  test('no items: nothing runs, nothing is thrown', async () => {
    await forEachBounded([], 8, () => assert.fail('ran'));
  });
});

describe('removeStaleTempFiles', () => {
  test("one listing per directory removes the dead writers' temp files of every path given, and nothing else", async (t) => {
    const dir = tempDir(t);
    const paths = ['a.json', 'b.json', 'c.tmp-x.json'].map((name) => join(dir, name));
    const dead = 999_999_999; // no such process
    for (const path of paths) writeFileSync(`${join(dir, tempPrefixFor(path))}${dead}-abcd1234`, 'partial');
    writeFileSync(join(dir, `${tempPrefixFor(join(dir, 'other.json'))}${dead}-abcd1234`), 'not ours to remove');
    writeFileSync(join(dir, `${tempPrefixFor(paths[0]!)}${process.ppid}-abcd1234`), 'a live writer');
    for (const path of paths) writeFileSync(path, 'kept');
    assert.equal(await removeStaleTempFiles(paths), 3);
    assert.deepEqual(
      readdirSync(dir).sort(),
      ['.a.json.tmp-' + process.ppid + '-abcd1234', '.other.json.tmp-' + dead + '-abcd1234', 'a.json', 'b.json', 'c.tmp-x.json'].sort(),
    );
  });
});

describe('openDirectoryNoFollow', () => {
  for (const walk of ['proc', 'lstat'] as const) {
    test(`${walk}: every component from / is checked; the first link or file on the way is named; missing ones are made with the mode`, async (t) => {
      const root = tempDir(t);
      mkdirSync(join(root, 'real', 'sub'), { recursive: true });
      mkdirSync(join(root, 'victim', 'sub'), { recursive: true });
      symlinkSync(join(root, 'victim'), join(root, 'link'));
      writeFileSync(join(root, 'file'), '');
      const refused = async (dir: string, reason: string, component: string) =>
        assert.rejects(openDirectoryNoFollow(dir, { fs: nodeFileSystem, createMode: 0o700, walk }), (error: unknown) => {
          assert.ok(error instanceof PathComponentError, String(error));
          assert.deepEqual([error.code, error.component, error.destination], [reason, component, dir]);
          return true;
        });
      await refused(join(root, 'link', 'sub'), 'symlink', join(root, 'link'));
      await refused(join(root, 'link'), 'symlink', join(root, 'link'));
      await refused(join(root, 'link', 'new', 'deeper'), 'symlink', join(root, 'link'));
      await refused(join(root, 'file', 'sub'), 'not_regular_file', join(root, 'file'));
      assert.deepEqual(readdirSync(join(root, 'victim')), ['sub'], 'nothing made behind the link');

      const made = await openDirectoryNoFollow(join(root, 'real', 'a', 'b'), { fs: nodeFileSystem, createMode: 0o710, walk });
      await made.close();
      assert.equal(statSync(join(root, 'real', 'a')).mode & 0o777, 0o710);
      assert.equal(statSync(join(root, 'real', 'a', 'b')).mode & 0o777, 0o710);
      await assert.rejects(openDirectoryNoFollow(join(root, 'real', 'none'), { fs: nodeFileSystem, walk }), { code: 'ENOENT' });
    });
  }

  test('proc: a parent swapped for a link while the directory is held: the write still lands in the directory that was opened', async (t) => {
    const root = tempDir(t);
    mkdirSync(join(root, 'sinks', 'kis'), { recursive: true });
    mkdirSync(join(root, 'victim', 'kis'), { recursive: true });
    const dir = await openDirectoryNoFollow(join(root, 'sinks', 'kis'), { fs: nodeFileSystem, walk: 'proc' });
    try {
      renameSync(join(root, 'sinks'), join(root, 'moved'));
      symlinkSync(join(root, 'victim'), join(root, 'sinks'));
      await writeFileInDirectory(dir, 'KIS20261120', 'token\n', { mode: 0o600, dirMode: 0o700 });
    } finally {
      await dir.close();
    }
    assert.deepEqual(readdirSync(join(root, 'victim', 'kis')), []);
    assert.deepEqual(readdirSync(join(root, 'moved', 'kis')), ['KIS20261120']);
    assert.ok(lstatSync(join(root, 'moved', 'kis', 'KIS20261120')).isFile());
  });
});

describe('CoalescingRunner', () => {
  /** A runner whose runs end when the test says, recording each run's reasons and request count. */
  function harness(minIntervalMs = 0) {
    const clock = new ManualClock(0);
    const runs: Array<{ reasons: string[]; requests: number; end: (error?: Error) => void }> = [];
    let running = 0;
    let most = 0;
    const runner = new CoalescingRunner<string>(
      (reasons, requests) =>
        new Promise<void>((resolve, reject) => {
          running++;
          most = Math.max(most, running);
          let ended = false;
          const end = (error?: Error) => {
            if (ended) return;
            ended = true;
            running--;
            if (error) reject(error);
            else resolve();
          };
          runs.push({ reasons, requests, end });
        }),
      minIntervalMs,
      clock,
    );
    return { clock, runs, runner, most: () => most };
  }

  test('a burst of 1,000 requests during a run: one run queued behind it covers them all; never two at once', async () => {
    const h = harness();
    const first = h.runner.request('SIGHUP');
    const rest = Array.from({ length: 1_000 }, (_, i) => h.runner.request(i === 500 ? 'file changed' : 'SIGHUP'));
    assert.equal(h.runs.length, 1);
    h.runs[0]!.end();
    await first;
    await tick();
    assert.deepEqual(
      h.runs.map((run) => [run.reasons, run.requests]),
      [
        [['SIGHUP'], 1],
        [['SIGHUP', 'file changed'], 1_000],
      ],
    );
    h.runs[1]!.end();
    await Promise.all(rest);
    assert.equal(h.most(), 1);
    // Idle again: the next request runs at once.
    void h.runner.request('SIGHUP');
    assert.equal(h.runs.length, 3);
  });

  test('runs start at least the interval apart: a storm of requests costs one run per interval', async () => {
    const h = harness(1_000);
    for (let ms = 0; ms < 5_000; ms += 10) {
      void h.runner.request('SIGHUP');
      h.runs.at(-1)!.end(); // each run is quick: over long before the next request
      await tick();
      h.clock.advance(10);
      await tick();
    }
    // At 0 s for the first request; at 1, 2, 3, 4 and 5 s each for the requests of the second before.
    assert.deepEqual(
      h.runs.map((run) => run.requests),
      [1, 99, 100, 100, 100, 100],
    );
    assert.equal(h.most(), 1);
  });

  test('a failed run fails only the requests it covered; the queued run still runs; stop() cancels a queued run', async () => {
    const h = harness();
    const failing = h.runner.request('SIGHUP');
    const queued = h.runner.request('SIGHUP');
    h.runs[0]!.end(new Error('reload failed'));
    await assert.rejects(failing, /reload failed/);
    await tick();
    assert.equal(h.runs.length, 2);
    const another = h.runner.request('SIGHUP');
    h.runner.stop();
    h.runs[1]!.end();
    await queued;
    await another;
    assert.equal(h.runs.length, 2, 'the run queued before stop() never started');
  });
});

test("log: the pretty form's timestamps are in the configured zone (KST by default), the JSON form's in UTC", () => {
  const lines = (format: 'json' | 'pretty', timeZone?: string) => {
    const out: string[] = [];
    const destination = new Writable({
      write: (chunk: Buffer, _e, done) => {
        out.push(chunk.toString());
        done();
      },
    });
    createLogger({ format, secrets: new SecretRegistry(), destination, ...(timeZone ? { timeZone } : {}) }).info('hello');
    return JSON.parse(out[0]!) as { time: string };
  };
  assert.match(lines('pretty').time, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\+09:00$/);
  assert.match(lines('pretty', 'UTC').time, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\+00:00$/);
  assert.match(lines('json').time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

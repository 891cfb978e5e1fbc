import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { forEachBounded } from '../src/core/limiter';
import { removeStaleTempFiles, tempPrefixFor } from '../src/core/atomic-file';
import { Writable } from 'node:stream';
import { createLogger } from '../src/core/log';
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

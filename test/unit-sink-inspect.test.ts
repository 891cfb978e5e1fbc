import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'node:fs/promises';
import { nodeFileSystem, type FileSystem } from '../src/core/atomic-file';
import { FileReadError, readRegularFile } from '../src/core/safe-read';
import { SinkWriteError } from '../src/core/errors';
import type { FileAccess, JsonSinkConfig } from '../src/config/types';
import { renderSink, type TokenView } from '../src/sinks/formats';
import { MAX_SINK_FILE_BYTES, inspectSinkFile, type Inspection } from '../src/sinks/inspect';
import { FILE_ACCESS, HOUR, T0, kisClaims, kisJwt } from './unit-fixtures';

/**
 * inspectSinkFile on real files in a temporary directory: what it finds at the sink path, named in the closed
 * set of repair reasons, or refused when writing over it would be wrong (a symlink, a directory).
 */

const token = kisJwt(kisClaims(T0));
const view: TokenView = { accessToken: token, tokenType: 'Bearer', expiresAt: T0 + 24 * HOUR, issuedAt: T0, raw: {}, approvalKey: undefined };

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'bts-unit-inspect-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function sinkAt(path: string, access: Partial<FileAccess> = {}): JsonSinkConfig {
  return { name: 'json', format: 'json', path, layout: 'overseas-cache', timeZone: 'Asia/Seoul', access: { ...FILE_ACCESS, ...access }, notify: undefined };
}

function place(path: string, content: string, mode = 0o600): void {
  writeFileSync(path, content);
  chmodSync(path, mode);
}

type Plain =
  { kind: 'healthy'; mode: number } | { kind: 'repair'; reason: string; mode: number | null } | { kind: 'refused'; code: string; message: string | RegExp };

async function inspect(sink: JsonSinkConfig, path: string, fs: FileSystem = nodeFileSystem): Promise<Inspection> {
  return inspectSinkFile(fs, sink, path, renderSink(sink, view)!, token);
}

function assertInspection(found: Inspection, expected: Plain): void {
  if (expected.kind !== 'refused') {
    assert.deepEqual(found, expected);
    return;
  }
  assert.equal(found.kind, 'refused');
  const error = found.error;
  assert.ok(error instanceof SinkWriteError);
  assert.equal(error.code, expected.code);
  if (typeof expected.message === 'string') assert.equal(error.message, expected.message);
  else assert.match(error.message, expected.message);
}

describe('inspectSinkFile', () => {
  const expectedOf = (path: string) => renderSink(sinkAt(path), view)!;
  const rows: Array<[string, (path: string, dir: string) => void, Plain, Partial<FileAccess>?]> = [
    ['the file as it should be: healthy', (path) => place(path, expectedOf(path)), { kind: 'healthy', mode: 0o600 }],
    ['no file: missing', () => undefined, { kind: 'repair', reason: 'missing', mode: null }],
    ['an empty file: empty', (path) => place(path, ''), { kind: 'repair', reason: 'empty', mode: 0o600 }],
    ['the first 40 bytes of it: truncated', (path) => place(path, expectedOf(path).slice(0, 40)), { kind: 'repair', reason: 'truncated', mode: 0o600 }],
    ['all of it but the final newline: truncated', (path) => place(path, expectedOf(path).slice(0, -1)), { kind: 'repair', reason: 'truncated', mode: 0o600 }],
    ['text that holds no token: corrupt', (path) => place(path, 'Traceback (most recent call last):\n'), { kind: 'repair', reason: 'corrupt', mode: 0o600 }],
    ['NUL bytes (a crash mid-write): corrupt', (path) => place(path, '\0'.repeat(300)), { kind: 'repair', reason: 'corrupt', mode: 0o600 }],
    [
      'another token in the right shape: other_token',
      (path) => place(path, renderSink(sinkAt(path), { ...view, accessToken: kisJwt(kisClaims(T0 - 24 * HOUR)) })!),
      { kind: 'repair', reason: 'other_token', mode: 0o600 },
    ],
    [
      'the right token with the wrong expiry: corrupt (not another token)',
      (path) => place(path, renderSink(sinkAt(path), { ...view, expiresAt: T0 + 12 * HOUR })!),
      { kind: 'repair', reason: 'corrupt', mode: 0o600 },
    ],
    ['the right content readable by others: mode', (path) => place(path, expectedOf(path), 0o644), { kind: 'repair', reason: 'mode', mode: 0o644 }],
    ['the right content with mode 0400: mode', (path) => place(path, expectedOf(path), 0o400), { kind: 'repair', reason: 'mode', mode: 0o400 }],
    ['a configured mode 0640 that the file has: healthy', (path) => place(path, expectedOf(path), 0o640), { kind: 'healthy', mode: 0o640 }, { mode: 0o640 }],
    ['the wrong content and the wrong mode: the content is named', (path) => place(path, '', 0o644), { kind: 'repair', reason: 'empty', mode: 0o644 }],
    [
      'another owner than configured: owner',
      (path) => place(path, expectedOf(path)),
      { kind: 'repair', reason: 'owner', mode: 0o600 },
      { owner: process.getuid!() + 1 },
    ],
    [
      'another group than configured: owner',
      (path) => place(path, expectedOf(path)),
      { kind: 'repair', reason: 'owner', mode: 0o600 },
      { group: process.getgid!() + 1 },
    ],
    [
      'the configured owner and group: healthy',
      (path) => place(path, expectedOf(path)),
      { kind: 'healthy', mode: 0o600 },
      { owner: process.getuid!(), group: process.getgid!() },
    ],
    [
      'larger than any token file: corrupt, unread',
      (path) => place(path, 'x'.repeat(MAX_SINK_FILE_BYTES + 1)),
      { kind: 'repair', reason: 'corrupt', mode: null },
    ],
    [
      'a FIFO at the path: special_file, without blocking',
      (path) => execFileSync('mkfifo', ['-m', '600', path]),
      { kind: 'repair', reason: 'special_file', mode: null },
    ],
    ['a directory at the path: refused', (path) => mkdirSync(path), { kind: 'refused', code: 'not_regular_file', message: /exists and is a directory$/ }],
    [
      'a symlink to a good file: refused',
      (path, dir) => {
        place(join(dir, 'real.json'), expectedOf(path));
        symlinkSync(join(dir, 'real.json'), path);
      },
      { kind: 'refused', code: 'symlink', message: /is a symbolic link; refusing to read through it \(set followSymlinks to allow\)$/ },
    ],
    [
      'a symlink to a good file with followSymlinks: healthy',
      (path, dir) => {
        place(join(dir, 'real.json'), expectedOf(path));
        symlinkSync(join(dir, 'real.json'), path);
      },
      { kind: 'healthy', mode: 0o600 },
      { followSymlinks: true },
    ],
    [
      'a dangling symlink with followSymlinks: missing',
      (path, dir) => symlinkSync(join(dir, 'gone.json'), path),
      { kind: 'repair', reason: 'missing', mode: null },
      { followSymlinks: true },
    ],
    [
      'a dangling symlink without followSymlinks: refused',
      (path, dir) => symlinkSync(join(dir, 'gone.json'), path),
      { kind: 'refused', code: 'symlink', message: /is a symbolic link/ },
    ],
    [
      'a symlink to a FIFO with followSymlinks: special_file',
      (path, dir) => {
        execFileSync('mkfifo', [join(dir, 'fifo')]);
        symlinkSync(join(dir, 'fifo'), path);
      },
      { kind: 'repair', reason: 'special_file', mode: null },
      { followSymlinks: true },
    ],
    [
      'a symlink to a directory with followSymlinks: refused as a directory',
      (path, dir) => {
        mkdirSync(join(dir, 'sub'));
        symlinkSync(join(dir, 'sub'), path);
      },
      { kind: 'refused', code: 'not_regular_file', message: /exists and is a directory$/ },
      { followSymlinks: true },
    ],
  ];
  for (const [what, setup, expected, access] of rows) {
    test(what, async (t) => {
      const dir = tempDir(t);
      const path = join(dir, 'main.json');
      setup(path, dir);
      assertInspection(await inspect(sinkAt(path, access), path), expected);
    });
  }

  test('a path under a regular file (ENOTDIR): refused, the errno named', async (t) => {
    const dir = tempDir(t);
    place(join(dir, 'plain'), 'x');
    const path = join(dir, 'plain', 'main.json');
    assertInspection(await inspect(sinkAt(path), path), { kind: 'refused', code: 'not_regular_file', message: `cannot inspect ${path} (ENOTDIR)` });
  });

  test('permission denied on open: refused as permission_denied', async () => {
    const path = '/nonexistent/main.json';
    const denied: FileSystem = { ...nodeFileSystem, open: async () => Promise.reject(Object.assign(new Error('EACCES'), { code: 'EACCES' })) };
    assertInspection(await inspect(sinkAt(path), path, denied), { kind: 'refused', code: 'permission_denied', message: `cannot inspect ${path} (EACCES)` });
  });
});

describe('readRegularFile: read up to its bound, whatever fstat said', () => {
  // A file that grows between fstat and the read: the buffer sized from fstat must grow, and stop at the bound.
  function openReportingSize(size: number): typeof open {
    return async (path, flags) => {
      const handle = await open(path, flags);
      const stat = handle.stat.bind(handle);
      return Object.assign(handle, { stat: async () => Object.assign(await stat(), { size }) });
    };
  }

  test('a file grown since fstat is read whole when within the bound', async (t) => {
    const path = join(tempDir(t), 'grown.json');
    const content = 'x'.repeat(5_000);
    writeFileSync(path, content);
    const read = await readRegularFile(path, { followSymlinks: false, maxBytes: 10_000 }, openReportingSize(3));
    assert.equal(read.content, content);
  });

  test('a file grown past the bound since fstat is refused as too large', async (t) => {
    const path = join(tempDir(t), 'grown.json');
    writeFileSync(path, 'x'.repeat(5_000));
    await assert.rejects(readRegularFile(path, { followSymlinks: false, maxBytes: 1_000 }, openReportingSize(10)), (error: unknown) => {
      assert.ok(error instanceof FileReadError);
      assert.equal(error.code, 'too_large');
      return true;
    });
  });
});

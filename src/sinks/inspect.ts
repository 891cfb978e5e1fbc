import { basename } from 'node:path';
import type { SinkConfig } from '../config/types';
import type { FileSystem } from '../core/atomic-file';
import { SinkWriteError, classifyFsError, type SinkRepairReason } from '../core/errors';
import type { Directory } from '../core/held-directory';
import { FileReadError, readRegularFile, type FileRead } from '../core/safe-read';
import { readSinkToken } from './formats';

export type Inspection =
  | { kind: 'healthy'; mode: number }
  | { kind: 'repair'; reason: SinkRepairReason; mode: number | null }
  /** Something the sidecar must not or cannot fix by writing: a symlink, a directory or a FIFO in the way. */
  | { kind: 'refused'; error: SinkWriteError };

/** A token file is a few hundred bytes; anything this large is not one, and is never read whole. */
export const MAX_SINK_FILE_BYTES = 64 * 1024;

/**
 * Reads a sink file the way every sink read must: one non-blocking open, judged on the descriptor. Given the
 * sink's open directory, the file is reached through it (see sinks/directory.ts), never through a swapped parent.
 */
export function readSinkFile(fs: FileSystem, sink: SinkConfig, path: string, dir?: Directory): Promise<FileRead> {
  const open = dir ? (_path: string, flags: number) => fs.open(dir.entry(basename(path)), flags) : fs.open;
  return readRegularFile(path, { followSymlinks: sink.access.followSymlinks, maxBytes: MAX_SINK_FILE_BYTES }, open);
}

/** Compares a sink file with what it must hold, and names what is wrong in the closed set of repair reasons. */
export async function inspectSinkFile(
  fs: FileSystem,
  sink: SinkConfig,
  path: string,
  expected: string,
  expectedToken: string,
  dir?: Directory,
): Promise<Inspection> {
  let read: FileRead;
  try {
    read = await readSinkFile(fs, sink, path, dir);
  } catch (error) {
    if (!(error instanceof FileReadError)) throw error;
    switch (error.code) {
      case 'missing':
        return { kind: 'repair', reason: 'missing', mode: null };
      case 'too_large':
        // Ours is never this large: a regular file the writer may replace like any other damage.
        return { kind: 'repair', reason: 'corrupt', mode: null };
      case 'symlink':
        return { kind: 'refused', error: new SinkWriteError('symlink', error.message) };
      case 'directory':
        return { kind: 'refused', error: new SinkWriteError('not_regular_file', `${path} exists and is a directory`) };
      case 'not_regular_file':
        // A FIFO, socket or device: a reader opening it would block or read garbage. The atomic rename replaces
        // the name without ever opening what was there.
        return { kind: 'repair', reason: 'special_file', mode: null };
      default:
        return { kind: 'refused', error: new SinkWriteError(classifyFsError({ code: error.errno }), `cannot inspect ${path} (${error.errno ?? 'error'})`) };
    }
  }
  const { content, info } = read;
  const mode = info.mode & 0o777;
  if (content === expected) {
    if (mode !== sink.access.mode) return { kind: 'repair', reason: 'mode', mode };
    if ((sink.access.owner !== undefined && info.uid !== sink.access.owner) || (sink.access.group !== undefined && info.gid !== sink.access.group)) {
      return { kind: 'repair', reason: 'owner', mode };
    }
    return { kind: 'healthy', mode };
  }
  if (content.length === 0) return { kind: 'repair', reason: 'empty', mode };
  if (expected.startsWith(content)) return { kind: 'repair', reason: 'truncated', mode };
  const found = readSinkToken(sink, content);
  if (found && found.accessToken !== expectedToken) return { kind: 'repair', reason: 'other_token', mode };
  return { kind: 'repair', reason: 'corrupt', mode };
}

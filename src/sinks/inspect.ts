import type { Stats } from 'node:fs';
import type { SinkConfig } from '../config/types';
import { SinkWriteError, type SinkRepairReason } from '../core/errors';
import type { FileSystem } from '../core/atomic-file';
import { readSinkToken } from './formats';

export type Inspection =
  | { kind: 'healthy'; mode: number }
  | { kind: 'repair'; reason: SinkRepairReason; mode: number | null }
  /** Something the sidecar must not or cannot fix by writing: a symlink, a directory in the way. */
  | { kind: 'refused'; error: SinkWriteError };

/** Compares a sink file with what it must hold, and names what is wrong in the closed set of repair reasons. */
export async function inspectSinkFile(
  fs: FileSystem,
  sink: SinkConfig,
  path: string,
  expected: string,
  expectedToken: string,
): Promise<Inspection> {
  let info: Stats;
  try {
    info = sink.access.followSymlinks ? await fs.stat(path) : await fs.lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'repair', reason: 'missing', mode: null };
    return { kind: 'refused', error: new SinkWriteError('io_error', `cannot inspect ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`) };
  }
  if (info.isSymbolicLink()) {
    return { kind: 'refused', error: new SinkWriteError('symlink', `${path} is a symbolic link; refusing to write through it (set followSymlinks to allow)`) };
  }
  if (!info.isFile()) return { kind: 'refused', error: new SinkWriteError('not_regular_file', `${path} exists and is not a regular file`) };
  const mode = info.mode & 0o777;
  let content: string;
  try {
    content = await fs.readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'repair', reason: 'missing', mode: null };
    return { kind: 'repair', reason: 'corrupt', mode };
  }
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

import { constants, openSync, fstatSync, readSync, closeSync, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as fsp from 'node:fs/promises';

/**
 * Reads a file that someone else may have planted or swapped: a sink file in a directory a neighbour can
 * write, a secret file, the state. A check (`lstat`) then a read (`readFile`) by path leaves a window in which
 * a FIFO renamed onto the path makes `open()` block a thread-pool thread for ever (no repair, no shutdown), and
 * a symlink to /dev/zero makes the read grow without end. So the file is opened once, without blocking and
 * (unless asked) without following a link, and everything is judged on that descriptor: its type, its size,
 * its content, read up to a bound.
 */

type FileReadProblem = 'missing' | 'symlink' | 'directory' | 'not_regular_file' | 'too_large' | 'io_error';

export class FileReadError extends Error {
  readonly code: FileReadProblem;
  constructor(
    problem: FileReadProblem,
    message: string,
    /** The errno code behind an io_error, for the message a caller writes. */
    readonly errno?: string,
  ) {
    super(message);
    this.name = 'FileReadError';
    this.code = problem;
  }
}

interface SafeReadOptions {
  /** Follow a symlink at the path (a Kubernetes secret volume is links all the way); the target must still be a regular file. */
  followSymlinks: boolean;
  /** Bytes above which the file is refused unread. */
  maxBytes: number;
}

export interface FileRead {
  content: string;
  /** The opened file's own stats: what was read, not what a path named a moment earlier. */
  info: Stats;
}

/** The `open` call a reader makes, injectable so tests can fail it. */
type OpenFile = (path: string, flags: number) => Promise<FileHandle>;

function openFlags(followSymlinks: boolean): number {
  // O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer; it changes nothing for a regular file.
  return constants.O_RDONLY | constants.O_NONBLOCK | (followSymlinks ? 0 : constants.O_NOFOLLOW);
}

function openProblem(path: string, error: unknown, followSymlinks: boolean): FileReadError {
  const errno = (error as NodeJS.ErrnoException).code ?? 'error';
  if (errno === 'ENOENT') return new FileReadError('missing', `${path} does not exist`, errno);
  // O_NOFOLLOW on a symlink gives ELOOP; following, ELOOP is a loop of links.
  if (errno === 'ELOOP') {
    return followSymlinks
      ? new FileReadError('symlink', `${path} is a loop of symbolic links`, errno)
      : new FileReadError('symlink', `${path} is a symbolic link; refusing to read through it (set followSymlinks to allow)`, errno);
  }
  return new FileReadError('io_error', `cannot read ${path} (${errno})`, errno);
}

function judge(path: string, info: Stats, maxBytes: number): FileReadError | undefined {
  if (info.isDirectory()) return new FileReadError('directory', `${path} is a directory`);
  if (!info.isFile()) return new FileReadError('not_regular_file', `${path} is not a regular file (a FIFO, a socket or a device)`);
  if (info.size > maxBytes) return new FileReadError('too_large', `${path} is larger than ${maxBytes} bytes`);
  return undefined;
}

/**
 * Reads at most maxBytes + 1 bytes: a file that grows between fstat and read is still caught as too large. The
 * buffer starts at the size fstat gave (a zero-filled maxBytes each time cost a thousand accounts' start-up a
 * second of allocation and collection), and grows only for a file that grew meanwhile.
 */
async function readBounded(handle: FileHandle, size: number, maxBytes: number): Promise<Buffer> {
  let buffer: Buffer = Buffer.allocUnsafe(Math.min(size, maxBytes) + 1);
  let length = 0;
  for (;;) {
    if (length === buffer.length) {
      if (buffer.length > maxBytes) break;
      buffer = grown(buffer, maxBytes);
    }
    const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
    if (bytesRead === 0) break;
    length += bytesRead;
  }
  return buffer.subarray(0, length);
}

/** The same buffer, twice as large but never beyond maxBytes + 1. */
function grown(buffer: Buffer, maxBytes: number): Buffer {
  const larger = Buffer.allocUnsafe(Math.min(buffer.length * 2, maxBytes + 1));
  buffer.copy(larger);
  return larger;
}

export async function readRegularFile(path: string, options: SafeReadOptions, open: OpenFile = fsp.open): Promise<FileRead> {
  let handle: FileHandle;
  try {
    handle = await open(path, openFlags(options.followSymlinks));
  } catch (error) {
    throw openProblem(path, error, options.followSymlinks);
  }
  try {
    const info = await handle.stat();
    const problem = judge(path, info, options.maxBytes);
    if (problem) throw problem;
    const bytes = await readBounded(handle, info.size, options.maxBytes);
    if (bytes.length > options.maxBytes) throw new FileReadError('too_large', `${path} is larger than ${options.maxBytes} bytes`);
    return { content: bytes.toString('utf8'), info };
  } catch (error) {
    if (error instanceof FileReadError) throw error;
    const errno = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new FileReadError('io_error', `cannot read ${path} (${errno})`, errno);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** The same, for the configuration's secret files, which are read while the config is resolved (synchronously). */
export function readRegularFileSync(path: string, options: SafeReadOptions): FileRead {
  let fd: number;
  try {
    fd = openSync(path, openFlags(options.followSymlinks));
  } catch (error) {
    throw openProblem(path, error, options.followSymlinks);
  }
  try {
    const info = fstatSync(fd);
    const problem = judge(path, info, options.maxBytes);
    if (problem) throw problem;
    let buffer: Buffer = Buffer.allocUnsafe(Math.min(info.size, options.maxBytes) + 1);
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        if (buffer.length > options.maxBytes) break;
        buffer = grown(buffer, options.maxBytes);
      }
      const bytesRead = readSync(fd, buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > options.maxBytes) throw new FileReadError('too_large', `${path} is larger than ${options.maxBytes} bytes`);
    return { content: buffer.subarray(0, length).toString('utf8'), info };
  } catch (error) {
    if (error instanceof FileReadError) throw error;
    const errno = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new FileReadError('io_error', `cannot read ${path} (${errno})`, errno);
  } finally {
    closeSync(fd);
  }
}

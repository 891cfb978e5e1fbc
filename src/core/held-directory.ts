import { constants, statSync } from 'node:fs';
import type * as fsp from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { PathComponentError, SinkWriteError, classifyFsError } from './errors';

/**
 * A directory reached from / without following a link anywhere on the way, and held open while one operation
 * (a write, a repair, a clean-up) works in it. Checking each component by path and then writing by path leaves a
 * window in which a neighbour swaps a parent for a symlink (`sinks/` → `/etc`) and the write, or the clean-up's
 * unlink, lands wherever the link points. Node has no openat(), but on Linux `/proc/self/fd/<fd>/<name>` is
 * resolved from the open directory itself, not from its path again: each component is opened through its parent's
 * descriptor with O_NOFOLLOW, and every name the operation creates, renames or deletes is reached the same way.
 */

/** The calls a walk makes: a FileSystem (atomic-file.ts) has them, so tests can fail any of them. */
interface DirectoryCalls {
  open: typeof fsp.open;
  mkdir: typeof fsp.mkdir;
  lstat: typeof fsp.lstat;
  chmod: typeof fsp.chmod;
}

/** A directory one operation works in; names inside it are reached through `entry`. */
export interface Directory {
  /** The directory's path as configured: what messages name. */
  readonly path: string;
  /** A path to `name` inside this very directory (for a held one, however its path has been changed since). */
  entry(name: string): string;
  /** fsync of the directory itself, so that a rename in it survives a power cut. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

// O_NONBLOCK: whatever was swapped in at a name, the open neither blocks nor opens it (O_DIRECTORY refuses it).
const DIRECTORY_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NONBLOCK;
const NO_FOLLOW = DIRECTORY_FLAGS | constants.O_NOFOLLOW;
const PROC_FD = '/proc/self/fd';

/** fsync of an open directory; some file systems cannot, and the rename has happened anyway. */
async function syncDirectoryHandle(handle: FileHandle): Promise<void> {
  try {
    await handle.sync();
  } catch (error) {
    if (!['EINVAL', 'EISDIR', 'ENOTSUP'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
  }
}

/** A directory named by its path, every link in it followed: for files whose config allows links. */
export function directoryByPath(path: string, fs: DirectoryCalls): Directory {
  return {
    path,
    entry: (name) => join(path, name),
    sync: async () => {
      const handle = await fs.open(path, DIRECTORY_FLAGS);
      try {
        await syncDirectoryHandle(handle);
      } finally {
        await handle.close();
      }
    },
    close: () => Promise.resolve(),
  };
}

class HeldDirectory implements Directory {
  constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly through: (name: string) => string,
  ) {}
  entry(name: string): string {
    return this.through(name);
  }
  sync(): Promise<void> {
    return syncDirectoryHandle(this.handle);
  }
  close(): Promise<void> {
    return this.handle.close().catch(() => undefined);
  }
}

type Walk = 'proc' | 'lstat';

let procUsable: boolean | undefined;

/** /proc is there on Linux (a container without it is rare); elsewhere, the weaker walk below. */
function defaultWalk(): Walk {
  procUsable ??= statSync(PROC_FD, { throwIfNoEntry: false })?.isDirectory() === true;
  return procUsable ? 'proc' : 'lstat';
}

interface OpenOptions {
  fs: DirectoryCalls;
  /** Create missing directories with this mode; without it, a missing one is an ENOENT. */
  createMode?: number | undefined;
  /** For tests of the fallback; the default is 'proc' wherever /proc/self/fd exists. */
  walk?: Walk;
}

function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** Why a component could not be opened as a directory: a link, something else, or the file system's own error. */
async function componentProblem(fs: DirectoryCalls, component: string, reachedAs: string, destination: string, error: unknown): Promise<Error> {
  const errno = errnoOf(error);
  if (errno === 'ENOTDIR' || errno === 'ELOOP') {
    const info = await fs.lstat(reachedAs).catch(() => undefined);
    return new PathComponentError(info?.isSymbolicLink() === false ? 'not_regular_file' : 'symlink', component, destination);
  }
  if (errno === 'ENOENT') return error as Error; // the caller decides what a missing directory means
  return new SinkWriteError(classifyFsError(error), `cannot open ${component} (${errno ?? 'error'}), on the way to ${destination}`, { cause: error });
}

/**
 * Opens `dir` component by component from /, refusing any component that is a symbolic link (a
 * PathComponentError naming it), creating missing ones with `createMode` when given. The caller closes it.
 */
export async function openDirectoryNoFollow(dir: string, options: OpenOptions): Promise<Directory> {
  const absolute = resolve(dir);
  return (options.walk ?? defaultWalk()) === 'proc' ? walkThroughProc(absolute, options) : walkByLstat(absolute, options);
}

async function walkThroughProc(absolute: string, { fs, createMode }: OpenOptions): Promise<Directory> {
  let handle = await fs.open(sep, DIRECTORY_FLAGS);
  let reached: string = sep;
  try {
    for (const part of absolute.split(sep).filter(Boolean)) {
      const component = join(reached, part);
      const child = await openChild(fs, `${PROC_FD}/${handle.fd}/${part}`, component, absolute, createMode);
      await handle.close();
      handle = child;
      reached = component;
    }
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
  const fd = handle.fd;
  return new HeldDirectory(absolute, handle, (name) => `${PROC_FD}/${fd}/${name}`);
}

/** Opens one component through its parent's descriptor (`via`), making it first when missing and `createMode` is given. */
async function openChild(fs: DirectoryCalls, via: string, component: string, destination: string, createMode: number | undefined): Promise<FileHandle> {
  try {
    return await fs.open(via, NO_FOLLOW);
  } catch (error) {
    if (errnoOf(error) !== 'ENOENT' || createMode === undefined) throw await componentProblem(fs, component, via, destination, error);
  }
  await fs.mkdir(via, { mode: createMode }).catch((error: unknown) => {
    if (errnoOf(error) !== 'EEXIST') throw error; // made meanwhile by someone else: opened below like any other
  });
  let made: FileHandle;
  try {
    made = await fs.open(via, NO_FOLLOW);
  } catch (error) {
    throw await componentProblem(fs, component, via, destination, error); // swapped for a link since the mkdir
  }
  await made.chmod(createMode).catch(async (error: unknown) => {
    await made.close();
    throw error;
  }); // mkdir's mode is filtered by the umask
  return made;
}

/**
 * Without /proc (macOS): every component is lstat-checked, the directory is opened with O_NOFOLLOW, and the open
 * one must be the one checked (same device and inode). Names in it are then reached by path: a swap after this
 * check is not caught, which only the walk through /proc closes.
 */
async function walkByLstat(absolute: string, { fs, createMode }: OpenOptions): Promise<Directory> {
  let reached: string = sep;
  for (const part of absolute.split(sep).filter(Boolean)) {
    const component = join(reached, part);
    const info = await fs.lstat(component).catch((error: unknown) => {
      if (errnoOf(error) === 'ENOENT' && createMode !== undefined) return undefined;
      throw error;
    });
    if (info === undefined) {
      await fs.mkdir(component, { mode: createMode });
      await fs.chmod(component, createMode!);
    } else if (info.isSymbolicLink()) throw new PathComponentError('symlink', component, absolute);
    else if (!info.isDirectory()) throw new PathComponentError('not_regular_file', component, absolute);
    reached = component;
  }
  const handle = await fs
    .open(absolute, NO_FOLLOW)
    .catch(async (error: unknown) => Promise.reject(await componentProblem(fs, absolute, absolute, absolute, error)));
  const [held, named] = await Promise.all([handle.stat(), fs.lstat(absolute)]).catch(async (error: unknown) => {
    await handle.close();
    throw error;
  });
  if (held.dev !== named.dev || held.ino !== named.ino) {
    await handle.close();
    throw new PathComponentError('symlink', absolute, absolute);
  }
  return new HeldDirectory(absolute, handle, (name) => join(absolute, name));
}

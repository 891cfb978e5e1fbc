import * as fsp from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { SinkWriteError, classifyFsError } from './errors';
import { directoryByPath, type Directory } from './held-directory';

/**
 * Writes a file so that a reader at any moment sees either the whole old content or the whole new content:
 * a temp file in the same directory (so rename is atomic), its final mode and owner set before any byte of
 * content goes in, fsync, rename, fsync of the directory (so the rename survives a power cut).
 */

/** The file-system calls the writer makes, injectable so tests can fail any of them (a full disk, say). */
export interface FileSystem {
  mkdir: typeof fsp.mkdir;
  open: typeof fsp.open;
  rename: typeof fsp.rename;
  lstat: typeof fsp.lstat;
  stat: typeof fsp.stat;
  unlink: typeof fsp.unlink;
  chmod: typeof fsp.chmod;
  realpath: typeof fsp.realpath;
  readdir: typeof fsp.readdir;
}

export const nodeFileSystem: FileSystem = {
  mkdir: fsp.mkdir,
  open: fsp.open,
  rename: fsp.rename,
  lstat: fsp.lstat,
  stat: fsp.stat,
  unlink: fsp.unlink,
  chmod: fsp.chmod,
  realpath: fsp.realpath,
  readdir: fsp.readdir,
};

interface WriteOptions {
  mode: number;
  dirMode: number;
  owner?: number | undefined;
  group?: number | undefined;
  /** Write to a symlink's target instead of refusing. Only when the config asks for it. */
  followSymlinks?: boolean;
  /** Write into a directory that is a symlink; defaults to `followSymlinks`. */
  followDirectoryLink?: boolean;
  fs?: FileSystem;
}

const TEMP_MARKER = '.tmp-';
const PROCESS_STARTED_AT = Date.now() - process.uptime() * 1000;

export function tempPrefixFor(path: string): string {
  return `.${basename(path)}${TEMP_MARKER}`;
}

/**
 * Creates `dir` (and parents) with `mode` when missing; an existing directory's mode is the owner's business.
 * A directory that is a symbolic link is refused unless `followSymlinks`: a neighbour who can replace the
 * directory would otherwise send every write (and every clean-up) wherever the link points.
 */
export async function ensureDirectory(dir: string, mode: number, fs: FileSystem = nodeFileSystem, followSymlinks = true): Promise<void> {
  try {
    const info = await (followSymlinks ? fs.stat(dir) : fs.lstat(dir));
    if (info.isSymbolicLink()) {
      throw new SinkWriteError('symlink', `${dir} is a symbolic link to a directory; refusing to write through it (set followSymlinks to allow)`);
    }
    if (!info.isDirectory()) throw new SinkWriteError('not_regular_file', `${dir} exists and is not a directory`);
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await fs.mkdir(dir, { recursive: true, mode });
  await fs.chmod(dir, mode); // mkdir's mode is filtered by the umask
}

/**
 * Where the content should go: `name` in `dir` itself, or a symlink's target when following is allowed. Refuses
 * a symlink the config did not ask for, and anything that is not a regular file.
 */
async function resolveTarget(dir: Directory, name: string, followSymlinks: boolean, fs: FileSystem): Promise<{ dir: Directory; name: string }> {
  const shown = join(dir.path, name);
  let info;
  try {
    info = await fs.lstat(dir.entry(name));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { dir, name };
    throw error;
  }
  if (info.isSymbolicLink()) {
    if (!followSymlinks) {
      throw new SinkWriteError('symlink', `${shown} is a symbolic link; refusing to write through it (set followSymlinks to allow)`);
    }
    const target = await fs.realpath(dir.entry(name)).catch(() => undefined);
    if (target === undefined) throw new SinkWriteError('symlink', `${shown} is a symbolic link to nothing`);
    const targetInfo = await fs.lstat(target);
    if (!targetInfo.isFile()) throw new SinkWriteError('not_regular_file', `${shown} points to ${target}, which is not a regular file`);
    return { dir: directoryByPath(dirname(target), fs), name: basename(target) };
  }
  // A FIFO, socket or device at the path is replaced by the rename, never opened; a directory cannot be.
  if (info.isDirectory()) throw new SinkWriteError('not_regular_file', `${shown} exists and is a directory`);
  return { dir, name };
}

export async function writeFileAtomic(path: string, content: string | Buffer, options: WriteOptions): Promise<void> {
  const fs = options.fs ?? nodeFileSystem;
  try {
    await ensureDirectory(dirname(path), options.dirMode, fs, options.followDirectoryLink ?? options.followSymlinks ?? false);
  } catch (error) {
    throw asWriteError(path, error);
  }
  await writeFileInDirectory(directoryByPath(dirname(path), fs), basename(path), content, options);
}

/**
 * The same, into a directory the caller has opened (see held-directory.ts): the temp file, the rename and the
 * directory's fsync all go through `dir`, so none of them can land elsewhere if a parent is swapped meanwhile.
 */
export async function writeFileInDirectory(dir: Directory, name: string, content: string | Buffer, options: WriteOptions): Promise<void> {
  const fs = options.fs ?? nodeFileSystem;
  let temp: { dir: Directory; name: string } | undefined;
  try {
    const target = await resolveTarget(dir, name, options.followSymlinks ?? false, fs);
    temp = { dir: target.dir, name: `${tempPrefixFor(target.name)}${process.pid}-${randomBytes(4).toString('hex')}` };
    const handle = await fs.open(temp.dir.entry(temp.name), 'wx', options.mode);
    try {
      await handle.chmod(options.mode); // open's mode is filtered by the umask
      if (options.owner !== undefined || options.group !== undefined) {
        await handle.chown(options.owner ?? -1, options.group ?? -1);
      }
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp.dir.entry(temp.name), target.dir.entry(target.name));
    temp = undefined;
    await target.dir.sync();
  } catch (error) {
    if (temp !== undefined) await fs.unlink(temp.dir.entry(temp.name)).catch(() => undefined);
    throw asWriteError(join(dir.path, name), error);
  }
}

function asWriteError(path: string, error: unknown): SinkWriteError {
  if (error instanceof SinkWriteError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? 'error';
  return new SinkWriteError(classifyFsError(error), `cannot write ${path}: ${code}`, { cause: error });
}

/**
 * Removes temp files a killed writer left beside each of `paths`. Only names this writer itself creates are
 * touched. One directory listing per directory, whatever the number of paths in it: a thousand token files in
 * one directory would otherwise cost a million names read.
 */
export async function removeStaleTempFiles(paths: readonly string[], fs: FileSystem = nodeFileSystem): Promise<number> {
  const namesByDir = new Map<string, string[]>();
  for (const path of paths) namesByDir.set(dirname(path), [...(namesByDir.get(dirname(path)) ?? []), basename(path)]);
  let removed = 0;
  for (const [dir, names] of namesByDir) removed += await removeStaleTempFilesIn(directoryByPath(dir, fs), names, fs);
  return removed;
}

/** The same for the files `names` of one directory, reached through `dir` (a held one: see held-directory.ts). */
export async function removeStaleTempFilesIn(dir: Directory, names: readonly string[], fs: FileSystem = nodeFileSystem): Promise<number> {
  const prefixes = new Set(names.map(tempPrefixFor));
  let found: string[];
  try {
    found = await fs.readdir(dir.entry('.'));
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of found) {
    const marker = name.lastIndexOf(TEMP_MARKER);
    const prefix = name.slice(0, marker + TEMP_MARKER.length);
    if (marker < 0 || !prefixes.has(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    const entry = dir.entry(name);
    if (pid === process.pid) {
      // In a container every incarnation may be pid 1: a file older than this process is a dead one's.
      const info = await fs.lstat(entry).catch(() => undefined);
      if (!info || info.mtimeMs >= PROCESS_STARTED_AT) continue;
    } else if (isProcessAlive(pid)) {
      continue; // another writer may be mid-write
    }
    await fs.unlink(entry).then(
      () => removed++,
      () => undefined,
    );
  }
  return removed;
}

export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

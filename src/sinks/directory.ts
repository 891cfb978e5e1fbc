import type { SinkConfig } from '../config/types';
import { ensureDirectory, type FileSystem } from '../core/atomic-file';
import { directoryByPath, openDirectoryNoFollow, type Directory } from '../core/held-directory';
import { sinkDirectory } from './formats';

/**
 * A sink's directory for one operation (a check, a write, a clean-up): walked from / without following a link
 * and held open (core/held-directory.ts), so a parent swapped for a symlink at any moment sends nothing
 * elsewhere. Only a sink whose config says `followSymlinks` is reached by its path, links and all.
 * `create`: make the missing directories (with the sink's dirMode), for operations that write.
 */
export async function openSinkDirectory(sink: SinkConfig, fs: FileSystem, create: boolean): Promise<Directory> {
  const dir = sinkDirectory(sink);
  if (!sink.access.followSymlinks) return openDirectoryNoFollow(dir, { fs, createMode: create ? sink.access.dirMode : undefined });
  if (create) await ensureDirectory(dir, sink.access.dirMode, fs, true);
  return directoryByPath(dir, fs);
}

/** Runs `use` in the sink's directory and closes it; undefined when the directory cannot be opened (gone, or behind a link). */
export async function inSinkDirectory<T>(sink: SinkConfig, fs: FileSystem, use: (dir: Directory) => Promise<T>): Promise<T | undefined> {
  const dir = await openSinkDirectory(sink, fs, false).catch(() => undefined);
  if (!dir) return undefined;
  try {
    return await use(dir);
  } finally {
    await dir.close();
  }
}

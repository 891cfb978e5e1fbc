import { basename } from 'node:path';
import { writeFileInDirectory, type FileSystem } from '../core/atomic-file';
import type { Directory } from '../core/held-directory';
import { dateStampDaysBefore } from '../core/time';
import { inSinkDirectory } from './directory';
import { KIS_AUTH_FILE } from './formats';
import type { SinkContext, SinkRuntime } from './sink-state';

/**
 * The kis-auth sink's daily files beyond the current ones: earlier days' files kept up to date (a bot imported
 * yesterday still reads yesterday's), and files older than keepDays removed. Everything goes through the sink's
 * directory held open (sinks/directory.ts), and only names that match KIS{YYYYMMDD} are ever touched.
 */

/** The daily file names in the directory, newest first. */
export async function dailyFiles(fs: FileSystem, dir: Directory): Promise<string[]> {
  const names = await fs.readdir(dir.entry('.')).catch(() => [] as string[]);
  return names
    .filter((name) => KIS_AUTH_FILE.test(name))
    .sort()
    .reverse();
}

/**
 * When the token changes, the earlier daily files still kept get it too, so a bot that imported kis_auth.py on
 * an earlier day never sees a dead token.
 */
export async function refreshEarlierDailyFiles(
  { fs, closed }: SinkContext,
  rt: SinkRuntime,
  dir: Directory,
  currentPaths: string[],
  content: string,
): Promise<void> {
  if (rt.config.format !== 'kis-auth') return;
  const current = new Set(currentPaths.map((path) => basename(path)));
  for (const name of await dailyFiles(fs, dir)) {
    if (current.has(name) || closed()) continue;
    const info = await fs.lstat(dir.entry(name)).catch(() => undefined);
    if (!info?.isFile()) continue;
    await writeFileInDirectory(dir, name, content, { ...rt.config.access, fs }).catch(() => undefined);
  }
}

/**
 * Removes daily files older than keepDays, counted from the earliest date any reader zone shows (a file that is
 * today's somewhere is never old), once per cutoff date. A directory that cannot be opened (gone, or behind a
 * link) is tried again at the next clean-up; the sink's check reports why.
 */
export async function cleanupDailyFiles({ fs, bus }: SinkContext, rt: SinkRuntime, now: number): Promise<void> {
  if (rt.config.format !== 'kis-auth') return;
  const keepDays = rt.config.keepDays;
  const cutoff = rt.config.readerTimeZones.map((zone) => dateStampDaysBefore(now, zone, keepDays)).sort()[0]!;
  if (rt.lastCleanupStamp === cutoff) return;
  const removed: string[] = [];
  const done = await inSinkDirectory(rt.config, fs, async (dir) => {
    for (const name of await dailyFiles(fs, dir)) {
      if (KIS_AUTH_FILE.exec(name)![1]! >= cutoff) continue;
      // Never a directory or a link planted under a daily file's name; unlink removes a link, never its target.
      const info = await fs.lstat(dir.entry(name)).catch(() => undefined);
      if (!info?.isFile()) continue;
      await fs.unlink(dir.entry(name)).then(
        () => removed.push(name),
        () => undefined,
      );
    }
    return true;
  });
  if (!done) return;
  rt.lastCleanupStamp = cutoff;
  if (removed.length > 0) bus.emit('sink.cleaned', { account: rt.account, sink: rt.config.name, files: removed });
}

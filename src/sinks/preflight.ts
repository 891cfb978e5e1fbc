import { basename } from 'node:path';
import type { SinkConfig } from '../config/types';
import { removeStaleTempFilesIn, writeFileInDirectory, type FileSystem } from '../core/atomic-file';
import { classifyFsError, describeError } from '../core/errors';
import type { Directory } from '../core/held-directory';
import { openSinkDirectory } from './directory';
import { sinkDirectory, sinkPaths } from './formats';
import { inspectSinkFile } from './inspect';
import type { SinkRuntime } from './sink-state';

/**
 * At start-up (and for an account added by a reload), before any token exists: every sink's directory can be
 * reached without a link and created, and written, and no sink path is a symlink or directory the config did not
 * ask for. A bad path fails here, at once, with its name; temp files a killed writer left are removed.
 */
export async function preflight(fs: FileSystem, runtimes: SinkRuntime[], now: number): Promise<string[]> {
  const problems: string[] = [];
  // One write check per directory and access (owner, group, modes), however many sinks share it.
  const writeChecks = new Map<string, Promise<void>>();
  const problem = (rt: SinkRuntime, path: string, error: unknown) =>
    problems.push(`account ${rt.account.name}, sink ${rt.config.name} (${path}): ${classifyFsError(error)}: ${describeError(error)}`);
  for (const rt of runtimes) {
    let dir: Directory;
    try {
      dir = await openSinkDirectory(rt.config, fs, true);
    } catch (error) {
      problem(rt, sinkDirectory(rt.config), error);
      continue;
    }
    try {
      const checked: string[] = [];
      for (const path of sinkPaths(rt.config, now)) {
        try {
          const inspection = await inspectSinkFile(fs, rt.config, path, '\0', '\0', dir);
          if (inspection.kind === 'refused') throw inspection.error;
          const key = `${dir.path}\0${JSON.stringify(rt.config.access)}`;
          if (!writeChecks.has(key)) writeChecks.set(key, checkWritable(fs, dir, rt.config.access));
          await writeChecks.get(key);
          checked.push(basename(path));
        } catch (error) {
          problem(rt, path, error);
        }
      }
      await removeStaleTempFilesIn(dir, checked, fs);
    } finally {
      await dir.close();
    }
  }
  return problems;
}

/** Writes and removes a file in `dir` the way a sink file is written: proves the directory takes it. */
async function checkWritable(fs: FileSystem, dir: Directory, access: SinkConfig['access']): Promise<void> {
  const probe = `.broker-token-sidecar-write-check-${process.pid}`;
  await writeFileInDirectory(dir, probe, '', { ...access, fs });
  await fs.unlink(dir.entry(probe));
}

import { basename } from 'node:path';
import { writeFileInDirectory } from '../core/atomic-file';
import { describeError } from '../core/errors';
import type { Directory } from '../core/held-directory';
import { runAfterWrite } from './after-write';
import { cleanupDailyFiles, refreshEarlierDailyFiles } from './daily-files';
import { inSinkDirectory, openSinkDirectory } from './directory';
import { renderSink, sinkPaths, type TokenView } from './formats';
import { inspectSinkFile } from './inspect';
import { reportPass } from './report';
import { backingOff, emptyPass, recordPass, recordWrite, type SinkContext, type SinkPass, type SinkRuntime, type WriteCause } from './sink-state';

/**
 * Brings a sink's files to what the state says they must hold: a check leaves files that hold it alone, repairs
 * damaged ones and writes a file under a name that became current (a new day's kis_auth.py file); a new token is
 * written to every file at once. Each runs in the sink's directory held open (sinks/directory.ts), and one file
 * that cannot be written never keeps the others from being written.
 */

/** Checks every current file of the sink against the token it must hold, repairing what is wrong. */
export async function checkSink(ctx: SinkContext, rt: SinkRuntime): Promise<void> {
  if (!rt.view || ctx.closed()) return;
  const content = renderSink(rt.config, rt.view);
  if (content === undefined) return;
  const now = ctx.clock.now();
  const paths = sinkPaths(rt.config, now);
  const pass = emptyPass();
  await inOpenedDirectory(ctx, rt, paths, pass, async (dir) => {
    for (const path of paths) await checkFile(ctx, rt, dir, path, content, pass, now);
  });
  settle(ctx, rt, pass, now);
  if (pass.writes.some((write) => write.cause === 'rollover')) await cleanupDailyFiles(ctx, rt, now);
}

async function checkFile(ctx: SinkContext, rt: SinkRuntime, dir: Directory, path: string, content: string, pass: SinkPass, now: number): Promise<void> {
  const inspection = await inspectSinkFile(ctx.fs, rt.config, path, content, rt.view!.accessToken, dir);
  if (inspection.kind === 'healthy') {
    pass.files.set(path, { path, present: true, healthy: true, mode: inspection.mode });
    rt.written.add(path);
    return;
  }
  const found = inspection.kind === 'repair' ? inspection.mode : null;
  pass.files.set(path, { path, present: found !== null, healthy: false, mode: found });
  if (inspection.kind === 'refused') {
    pass.failures.push({ path, error: inspection.error });
    return;
  }
  if (backingOff(rt, now)) return; // after a failed write, the next attempt waits its turn
  const cause: WriteCause = rt.written.has(path) ? inspection.reason : rt.started ? 'rollover' : 'start';
  if (await writeFile(ctx, rt, dir, path, content, pass, now)) {
    pass.files.set(path, { path, present: true, healthy: true, mode: rt.config.access.mode });
    pass.writes.push({ path, cause });
  }
}

/** A new token: every current file gets it now, whatever they hold, and the application is told. */
export async function writeToken(ctx: SinkContext, rt: SinkRuntime, view: TokenView): Promise<void> {
  const content = renderSink(rt.config, view);
  if (content === undefined || ctx.closed()) return;
  const now = ctx.clock.now();
  const cause = rt.started ? 'token' : 'start';
  const paths = sinkPaths(rt.config, now);
  const pass = emptyPass();
  const opened = await inOpenedDirectory(ctx, rt, paths, pass, async (dir) => {
    for (const path of paths) {
      const written = await writeFile(ctx, rt, dir, path, content, pass, now);
      if (written) pass.writes.push({ path, cause });
      pass.files.set(path, { path, present: written, healthy: written, mode: written ? rt.config.access.mode : null });
    }
    settle(ctx, rt, pass, now);
    if (pass.writes.length > 0) await refreshEarlierDailyFiles(ctx, rt, dir, paths, content);
  });
  if (!opened) settle(ctx, rt, pass, now);
  else if (pass.writes.length > 0) afterWrite(ctx, rt, paths[0]!);
}

/** Removes the sink's files named in `paths` (after a revoke: the token in them is dead); returns those removed. */
export async function removeFiles(ctx: SinkContext, rt: SinkRuntime, paths: string[]): Promise<string[]> {
  const removed: string[] = [];
  await inSinkDirectory(rt.config, ctx.fs, async (dir) => {
    for (const path of paths)
      await ctx.fs.unlink(dir.entry(basename(path))).then(
        () => removed.push(path),
        () => undefined,
      );
  });
  return removed;
}

/**
 * Runs `use` in the sink's directory, opened for writing (missing directories made); when it cannot be opened (a
 * parent swapped for a link, say), every file counts as failed with that reason, nothing is read or written, and
 * false is returned.
 */
async function inOpenedDirectory(ctx: SinkContext, rt: SinkRuntime, paths: string[], pass: SinkPass, use: (dir: Directory) => Promise<void>): Promise<boolean> {
  let dir: Directory;
  try {
    dir = await openSinkDirectory(rt.config, ctx.fs, true);
  } catch (error) {
    for (const path of paths) {
      pass.files.set(path, { path, present: false, healthy: false, mode: null });
      pass.failures.push({ path, error });
    }
    return false;
  }
  try {
    await use(dir);
  } finally {
    await dir.close();
  }
  return true;
}

/** Writes one file; a failure goes into the pass. Returns whether it was written. */
async function writeFile(ctx: SinkContext, rt: SinkRuntime, dir: Directory, path: string, content: string, pass: SinkPass, now: number): Promise<boolean> {
  try {
    await writeFileInDirectory(dir, basename(path), content, { ...rt.config.access, fs: ctx.fs });
  } catch (error) {
    pass.failures.push({ path, error });
    return false;
  }
  recordWrite(rt, path, now);
  return true;
}

/** The sink's state after the pass, then its events. */
function settle(ctx: SinkContext, rt: SinkRuntime, pass: SinkPass, now: number): void {
  reportPass(ctx.bus, rt, pass, recordPass(rt, pass, now));
}

function afterWrite(ctx: SinkContext, rt: SinkRuntime, path: string): void {
  const notify = rt.config.notify;
  if (!notify) return;
  runAfterWrite(notify, { account: rt.account.name, sink: rt.config.name, path }).catch((error: unknown) => {
    ctx.bus.emit('sink.notify_failed', { account: rt.account, sink: rt.config.name, message: describeError(error) });
  });
}

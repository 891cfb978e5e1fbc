import { existsSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { loadConfigFile } from '../config/load';
import type { SidecarConfig } from '../config/types';
import { CoalescingRunner } from '../core/coalescing';
import { ConfigError, describeError } from '../core/errors';
import type { Sidecar } from '../sidecar';

type ReloadReason = 'SIGHUP' | 'file changed';

/** Reloads start at least this far apart: a storm of signals costs one a second, and a SIGHUP waits at most this. */
const RELOAD_INTERVAL_MS = 1_000;

/**
 * Re-reads the config file on SIGHUP and whenever the file changes (editors and Kubernetes ConfigMaps replace
 * it, so its directory is watched), applies what can be applied without a restart, and keeps the running
 * configuration, reporting every problem, when the new one is not valid. Reloads coalesce (core/coalescing.ts):
 * one running, one queued (which reads the file as it is after the last signal), at most one a second, so a storm
 * of signals (4,073 reloads in 10 s, one per SIGHUP, before) costs a reload a second. Returns what stops it.
 */
export function reloadOnChange(sidecar: Sidecar): () => void {
  const path = sidecar.config.source;
  if (!existsSync(path)) return () => undefined; // an embedded config (the demo)
  const reloads = new CoalescingRunner<ReloadReason>(
    async (why, requests) => {
      let next: SidecarConfig;
      try {
        next = loadConfigFile(path);
      } catch (error) {
        sidecar.bus.emit('config.reload_failed', { problems: error instanceof ConfigError ? error.problems : [(error as Error).message] });
        return;
      }
      const summary = await sidecar.reload(next);
      sidecar.logger.debug({ why, requests }, 'configuration reload done');
      sidecar.bus.emit('config.reloaded', summary);
    },
    RELOAD_INTERVAL_MS,
    sidecar.clock,
  );
  const reload = (why: ReloadReason) =>
    void reloads.request(why).catch((error: unknown) => sidecar.bus.emit('config.reload_failed', { problems: [describeError(error)] }));
  const onHup = () => reload('SIGHUP');
  process.on('SIGHUP', onHup);
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, name) => {
      if (name !== null && name.toString() !== basename(path) && !name.toString().startsWith('..')) return;
      clearTimeout(timer);
      // Editors write in several steps: wait for the file to settle.
      timer = setTimeout(() => reload('file changed'), 500);
    });
  } catch {
    sidecar.logger.warn({ path }, 'cannot watch the config file; reload with SIGHUP');
  }
  return () => {
    reloads.stop();
    process.off('SIGHUP', onHup);
    clearTimeout(timer);
    watcher?.close();
  };
}

import { watch, type FSWatcher } from 'node:fs';
import { basename } from 'node:path';
import { knownPaths, shortenBackoff, type SinkRuntime } from './sink-state';

/**
 * Notices damage to the sink files as it happens: file-system events on the sinks' directories (the supervisor's
 * sweep is the backstop for volumes where events do not arrive) schedule a check of each sink the event may
 * concern, a few milliseconds later so that a burst of events costs one check.
 */

const EVENT_DEBOUNCE_MS = 5;

export class SinkWatcher {
  private readonly watchers = new Map<string, FSWatcher>();

  constructor(private readonly onEvent: (dir: string, filename: string | undefined) => void) {}

  /** Watches exactly these directories; one not there yet is tried again at the next call. */
  watch(directories: string[]): void {
    const dirs = new Set(directories);
    for (const [dir, watcher] of this.watchers) {
      if (!dirs.has(dir)) {
        watcher.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue;
      try {
        const watcher = watch(dir, { persistent: false }, (_event, filename) => this.onEvent(dir, filename?.toString()));
        watcher.on('error', () => {
          // The directory went away; the sweep recreates it and watches again.
          watcher.close();
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, watcher);
      } catch {
        // Not there yet: the next sweep tries again.
      }
    }
  }

  close(): void {
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }
}

/**
 * An event about `filename` in the directory of `runtimesInDir`: each of those sinks that may own that file gets a check, unless one is pending. The
 * event may mean the obstacle to a failed write is gone, so the sink's backoff is shortened first.
 */
export function scheduleChecks(runtimesInDir: SinkRuntime[], filename: string | undefined, now: number, check: (rt: SinkRuntime) => void): void {
  for (const rt of runtimesInDir) {
    if (rt.pendingCheck) continue;
    if (filename !== undefined && !knownPaths(rt, now).some((path) => basename(path) === filename)) continue;
    shortenBackoff(rt, now);
    const delay = Math.max(EVENT_DEBOUNCE_MS, (rt.nextRetryAt ?? 0) - now);
    rt.pendingCheck = setTimeout(() => {
      rt.pendingCheck = undefined;
      check(rt);
    }, delay);
  }
}

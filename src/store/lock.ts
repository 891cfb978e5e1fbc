import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import * as fsp from 'node:fs/promises';
import { StateLockedError } from '../core/errors';
import { ensureDirectory, isProcessAlive } from '../core/atomic-file';
import { FileReadError, readRegularFile } from '../core/safe-read';

/**
 * One sidecar per state directory: two would each think they own the token and issue twice. The lock is a
 * file created with O_EXCL holding the owner's pid, host and a nonce, its mtime refreshed as a heartbeat.
 *
 * A lock is stale when its owner is on this host and no longer alive (found at once, so a SIGKILLed sidecar
 * restarts immediately), or when its heartbeat is older than `staleAfterMs` (an owner on another host sharing
 * the volume, or a reused pid). Lock times are real time (file mtimes), whatever clock the logic runs on.
 */

interface LockRecord {
  pid: number;
  hostname: string;
  startedAt: string;
  nonce: string;
}

interface LockOptions {
  staleAfterMs?: number;
  heartbeatMs?: number;
  /** Called when the lock file is found changed under us: another process took it over. */
  onLost?: (holder: string) => void;
}

const LOCK_FILE = 'sidecar.lock';
const heldByThisProcess = new Set<string>();

function describe(record: LockRecord | undefined): string {
  return record ? `pid ${record.pid} on ${record.hostname} (since ${record.startedAt})` : 'an unknown process';
}

async function readRecord(path: string): Promise<{ record?: LockRecord; mtimeMs: number } | undefined> {
  try {
    const { content: text, info } = await readRegularFile(path, { followSymlinks: false, maxBytes: 4096 });
    try {
      return { record: JSON.parse(text) as LockRecord, mtimeMs: info.mtimeMs };
    } catch {
      return { mtimeMs: info.mtimeMs }; // a holder killed between create and write
    }
  } catch (error) {
    if (error instanceof FileReadError && error.code === 'missing') return undefined;
    throw error;
  }
}

function isStale(found: { record?: LockRecord; mtimeMs: number }, staleAfterMs: number): boolean {
  const heartbeatAge = Date.now() - found.mtimeMs;
  const record = found.record;
  if (!record) return heartbeatAge > 2_000;
  if (heartbeatAge > staleAfterMs) return true;
  if (record.hostname !== hostname()) return false;
  if (record.pid === process.pid) return !heldByThisProcess.has(record.nonce); // an earlier incarnation (pid 1 in a container)
  return !isProcessAlive(record.pid);
}

export class StateDirectoryLock {
  private heartbeat: NodeJS.Timeout | undefined;

  private constructor(
    readonly path: string,
    private readonly record: LockRecord,
  ) {}

  static async acquire(stateDir: string, options: LockOptions = {}): Promise<StateDirectoryLock> {
    const staleAfterMs = options.staleAfterMs ?? 30_000;
    await ensureDirectory(stateDir, 0o700);
    const path = join(stateDir, LOCK_FILE);
    const record: LockRecord = {
      pid: process.pid,
      hostname: hostname(),
      startedAt: new Date().toISOString(),
      nonce: randomBytes(8).toString('hex'),
    };
    for (let round = 0; round < 5; round++) {
      try {
        const handle = await fsp.open(path, 'wx', 0o600);
        try {
          await handle.writeFile(JSON.stringify(record));
          await handle.sync();
        } finally {
          await handle.close();
        }
        heldByThisProcess.add(record.nonce);
        const lock = new StateDirectoryLock(path, record);
        lock.startHeartbeat(options.heartbeatMs ?? 5_000, options.onLost);
        return lock;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const found = await readRecord(path);
      if (!found) continue; // released between our two calls
      if (!isStale(found, staleAfterMs)) {
        throw new StateLockedError(
          `state directory ${stateDir} is in use by ${describe(found.record)}; stop that sidecar first, or give this one another stateDir`,
        );
      }
      await StateDirectoryLock.takeOver(path, found.record);
    }
    throw new StateLockedError(`state directory ${stateDir}: could not take the lock (another sidecar is starting at the same moment)`);
  }

  /**
   * Moves a stale lock aside. Rename is atomic, so of two processes taking over the same stale lock only one
   * moves it; if what was moved turns out to be a fresh lock another process just made, it is put back.
   */
  private static async takeOver(path: string, stale: LockRecord | undefined): Promise<void> {
    const aside = `${path}.stale-${randomBytes(4).toString('hex')}`;
    try {
      await fsp.rename(path, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    const moved = await readRecord(aside);
    if (stale && moved?.record && moved.record.nonce !== stale.nonce) {
      await fsp.link(aside, path).catch(() => undefined);
    }
    await fsp.unlink(aside).catch(() => undefined);
  }

  private startHeartbeat(intervalMs: number, onLost: LockOptions['onLost']): void {
    this.heartbeat = setInterval(() => {
      void (async () => {
        const found = await readRecord(this.path).catch(() => undefined);
        if (!found) {
          // The state directory was deleted under us: nobody else holds it, so the lock is simply put back.
          await this.recreate().catch(() => undefined);
          return;
        }
        if (found.record?.nonce !== this.record.nonce) {
          this.stopHeartbeat();
          onLost?.(describe(found.record));
          return;
        }
        const now = new Date();
        await fsp.utimes(this.path, now, now).catch(() => undefined);
      })();
    }, intervalMs);
    this.heartbeat.unref();
  }

  private async recreate(): Promise<void> {
    await ensureDirectory(dirname(this.path), 0o700);
    const handle = await fsp.open(this.path, 'wx', 0o600);
    try {
      await handle.writeFile(JSON.stringify(this.record));
    } finally {
      await handle.close();
    }
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  async release(): Promise<void> {
    this.stopHeartbeat();
    heldByThisProcess.delete(this.record.nonce);
    const found = await readRecord(this.path).catch(() => undefined);
    if (found?.record?.nonce === this.record.nonce) await fsp.unlink(this.path).catch(() => undefined);
  }

  /** Who holds the lock on `stateDir` now, if anyone live does. */
  static async holder(stateDir: string, staleAfterMs = 30_000): Promise<string | undefined> {
    const found = await readRecord(join(stateDir, LOCK_FILE)).catch(() => undefined);
    if (!found || isStale(found, staleAfterMs)) return undefined;
    return describe(found.record);
  }
}

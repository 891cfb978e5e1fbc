import { join } from 'node:path';
import { StateError } from '../core/errors';
import { ensureDirectory, nodeFileSystem, removeStaleTempFiles, writeFileAtomic, type FileSystem } from '../core/atomic-file';
import { FileReadError, readRegularFile } from '../core/safe-read';
import { accountStateSchema, type AccountState } from './account-state';
import type { IssuanceLease, LoadResult, StateStore, StoreHealth } from './state-store';

const STATE_FILE_MODE = 0o600;
const STATE_DIR_MODE = 0o700;
const SUFFIX = '.json';
/** One account's state is a few kilobytes; a file far larger is not ours and is set aside unread. */
const MAX_STATE_FILE_BYTES = 1024 * 1024;

/**
 * One JSON file per account under `<stateDir>/accounts/`, written atomically, 0600 in a 0700 directory. A file
 * that cannot be read or does not validate is renamed to `<name>.json.corrupt-<time>` (its mode unchanged, so
 * still private) and reported; the account then starts as if new, with spacing counted from the file's mtime.
 */
export class FileStateStore implements StateStore {
  readonly shared = false;
  private readonly dir: string;
  // One sidecar owns the directory (the lock), so the lease is never contended.
  private static readonly lease: IssuanceLease = { release: () => Promise.resolve() };

  constructor(
    stateDir: string,
    private readonly now: () => number,
    private readonly fs: FileSystem = nodeFileSystem,
    /** Report an unusable file without moving it (the `status` command changes nothing). */
    private readonly readOnly = false,
  ) {
    this.dir = join(stateDir, 'accounts');
  }

  pathFor(account: string): string {
    return join(this.dir, `${account}${SUFFIX}`);
  }

  async prepare(): Promise<void> {
    await ensureDirectory(this.dir, STATE_DIR_MODE, this.fs);
  }

  async load(account: string): Promise<LoadResult> {
    const path = this.pathFor(account);
    let text: string;
    try {
      ({ content: text } = await readRegularFile(path, { followSymlinks: false, maxBytes: MAX_STATE_FILE_BYTES }, this.fs.open));
    } catch (error) {
      if (error instanceof FileReadError && error.code === 'missing') return { state: undefined };
      return this.setAside(path, new StateError('unreadable', `state file ${path} cannot be read (${(error as Error).message})`, { cause: error }));
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return this.setAside(path, new StateError('corrupt', `state file ${path} is not valid JSON`));
    }
    const parsed = accountStateSchema.safeParse(json);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      return this.setAside(
        path,
        new StateError('corrupt', `state file ${path} does not hold a valid state (${first?.path.join('.') || 'top level'}: ${first?.message})`),
      );
    }
    if (parsed.data.account !== account) {
      return this.setAside(path, new StateError('corrupt', `state file ${path} belongs to account "${parsed.data.account}"`));
    }
    return { state: parsed.data };
  }

  private async setAside(path: string, problem: StateError): Promise<LoadResult> {
    const info = await this.fs.stat(path).catch(() => undefined);
    if (this.readOnly) return { state: undefined, problem, lastWriteAt: info ? Math.floor(info.mtimeMs) : this.now() };
    const aside = `${path}.corrupt-${this.now()}`;
    await this.fs.rename(path, aside).catch(() => undefined);
    return { state: undefined, problem, lastWriteAt: info ? Math.floor(info.mtimeMs) : this.now() };
  }

  async save(state: AccountState): Promise<void> {
    try {
      await writeFileAtomic(this.pathFor(state.account), `${JSON.stringify(state, null, 2)}\n`, {
        mode: STATE_FILE_MODE,
        dirMode: STATE_DIR_MODE,
        // The state directory is the operator's own choice and private (0700): a link there is theirs.
        followDirectoryLink: true,
        fs: this.fs,
      });
    } catch (error) {
      throw new StateError('write_failed', `cannot save the state of ${state.account}: ${(error as Error).message}`, { cause: error });
    }
  }

  saveLocal(state: AccountState): Promise<void> {
    return this.save(state);
  }

  async offer(state: AccountState): Promise<boolean> {
    await this.save(state);
    return true;
  }

  acquireIssuance(): Promise<IssuanceLease> {
    return Promise.resolve(FileStateStore.lease);
  }

  onChange(): () => void {
    return () => undefined;
  }

  health(): StoreHealth {
    return { up: true, downSince: null, message: null };
  }

  async close(): Promise<void> {}

  async remove(account: string): Promise<void> {
    await this.fs.unlink(this.pathFor(account)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }

  async list(): Promise<string[]> {
    const names = await this.fs.readdir(this.dir).catch(() => [] as string[]);
    return names.filter((n) => n.endsWith(SUFFIX) && !n.startsWith('.')).map((n) => n.slice(0, -SUFFIX.length));
  }

  async removeStaleTempFiles(accounts: readonly string[]): Promise<void> {
    await removeStaleTempFiles(
      accounts.map((account) => this.pathFor(account)),
      this.fs,
    );
  }
}

import { StateError, describeError } from '../core/errors';
import type { AccountRef, EventBus } from '../core/events';
import type { SecretRegistry } from '../core/secrets';
import type { AccountState } from '../store/account-state';
import type { StateStore } from '../store/state-store';

/**
 * Where a write goes. 'shared': what decides an issuance (an attempt, a new token, a failure), bumping the
 * revision so every replica takes it up. 'local': what concerns this replica only (a proof, a peer's state
 * taken up, a clock correction).
 */
export type SaveScope = 'shared' | 'local';

/**
 * Whether the caller can go on when the write is refused. 'report': the state stays in memory (the token
 * keeps serving the sinks), the failure is reported, and the write is tried again at the next tick.
 * 'throw': the caller must not go on (an issuance attempt not yet on disk, a revoke).
 */
type SaveFailure = 'report' | 'throw';

/**
 * One account's state in memory, and the one owner of its writes: every save goes through `save`, which alone
 * bumps the revision and knows whether the disk holds what memory holds.
 */
export class StateKeeper {
  state: AccountState;
  /** The last write was refused: the disk holds less than memory until a later one succeeds. */
  private dirty = false;

  constructor(
    private readonly deps: { ref: AccountRef; store: StateStore; bus: EventBus; secrets: SecretRegistry },
    initial: AccountState,
  ) {
    this.state = initial;
  }

  /** Puts a state that came from outside (the disk, a sink file, a peer) in place, its secrets registered first. */
  take(state: AccountState): void {
    this.remember(state.token?.accessToken);
    this.remember(state.approvalKey?.key);
    this.state = state;
  }

  /** A secret that is about to enter the state (a new token, a new approval key). */
  remember(secret: string | undefined): void {
    this.deps.secrets.add(secret);
  }

  async save(scope: SaveScope, onFailure: SaveFailure = 'report'): Promise<void> {
    const { store, bus, ref } = this.deps;
    try {
      if (scope === 'shared') {
        this.state.revision += 1;
        await store.save(this.state);
      } else {
        await store.saveLocal(this.state);
      }
      this.dirty = false;
    } catch (error) {
      if (onFailure === 'throw') throw error;
      this.dirty = true;
      const reason = error instanceof StateError ? error.code : 'write_failed';
      bus.emit('state.error', { account: ref, reason, message: describeError(error) });
      // The shared store is away: the local copy, newer than the shared one, is offered once it is back.
      if (scope === 'shared' && store.shared)
        await store.saveLocal(this.state).then(
          () => (this.dirty = false),
          () => undefined,
        );
    }
  }

  /** Writes again what a refused write left only in memory. */
  async saveIfDirty(): Promise<void> {
    if (this.dirty) await this.save('local');
  }
}

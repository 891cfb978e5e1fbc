import type { StateError } from '../core/errors';
import type { AccountState } from './state';

export interface LoadResult {
  state: AccountState | undefined;
  /** Set when a state existed but could not be used; it has been moved aside. */
  problem?: StateError;
  /**
   * When the unusable state was last written. Its last issuance attempt is lost, so spacing is counted from
   * here instead: the conservative guess that costs at most one spacing of waiting.
   */
  lastWriteAt?: number;
}

/** Where account states live: files in the state directory, or Redis for several replicas. */
export interface StateStore {
  load(account: string): Promise<LoadResult>;
  /** Durable when it resolves. */
  save(state: AccountState): Promise<void>;
  remove(account: string): Promise<void>;
  /** Account names with a stored state. */
  list(): Promise<string[]>;
}

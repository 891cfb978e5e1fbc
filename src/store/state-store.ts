import type { StateError } from '../core/errors';
import type { AccountState } from './account-state';

export interface LoadResult {
  state: AccountState | undefined;
  /** Set when a state existed but could not be used; it has been moved aside. */
  problem?: StateError;
  /**
   * When the unusable state was last written. Its last issuance attempt is lost, so spacing is counted from
   * here instead: the conservative guess that costs at most one spacing of waiting.
   */
  lastWriteAt?: number;
  /** A shared store could not be reached: `state` is this replica's last local copy. */
  unavailable?: boolean;
  /** A shared store holds no (usable) copy: `state` is this replica's own, to be offered to the others. */
  localOnly?: boolean;
}

/** The right to issue for one app key, held by one replica at a time. */
export interface IssuanceLease {
  release(): Promise<void>;
}

export interface StoreHealth {
  up: boolean;
  /** Since when it has been down (null while up). */
  downSince: number | null;
  message: string | null;
}

/**
 * Where account states live: files in the state directory for one sidecar, or Redis shared by several
 * replicas (with the files as each replica's local copy). Writes that decide an issuance (`save`) go to the
 * shared place under an issuance lease; what concerns one replica only (`saveLocal`) stays local.
 */
export interface StateStore {
  /** True when several replicas share the states (Redis). */
  readonly shared: boolean;
  prepare(): Promise<void>;
  load(account: string): Promise<LoadResult>;
  /** Durable (and, for a shared store, visible to every replica) when it resolves; throws StateError otherwise. */
  save(state: AccountState): Promise<void>;
  /** This replica's own copy only. */
  saveLocal(state: AccountState): Promise<void>;
  /** Shares a state if the shared copy is missing or older (after the store was lost); true when taken. */
  offer(state: AccountState): Promise<boolean>;
  remove(account: string): Promise<void>;
  /** Account names with a stored state. */
  list(): Promise<string[]>;
  /** The issuance lease for an account, or how long until the current holder's lapses. */
  acquireIssuance(account: string): Promise<IssuanceLease | { busyForMs: number }>;
  /** Called with an account's name when another replica changed its shared state. */
  onChange(listener: (account: string) => void): () => void;
  health(): StoreHealth;
  /** Removes what killed writers left of these accounts' state files. */
  removeStaleTempFiles(accounts: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

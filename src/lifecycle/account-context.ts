import type { AccountConfig } from '../config/types';
import type { Clock } from '../core/clock';
import type { AccountRef, EventBus } from '../core/events';
import type { Credentials, TokenProvider } from '../providers/types';
import type { StateStore } from '../store/state-store';
import type { StateKeeper } from './state-keeper';

/**
 * What the parts of one account's lifecycle (issuance, shared-store sync, proofs, approval key) share: who the
 * account is, the effects they act through, and the one keeper of its state.
 */
export interface AccountContext {
  config: AccountConfig;
  ref: AccountRef;
  provider: TokenProvider;
  store: StateStore;
  bus: EventBus;
  clock: Clock;
  random: () => number;
  kept: StateKeeper;
  credentials(): Credentials;
  /** A broker call, within the limit of calls in flight across all accounts. */
  limited<T>(call: () => Promise<T>): Promise<T>;
  /** Brings the sink files in line with the state. */
  publish(cause: 'token' | 'start'): Promise<void>;
}

import type { AccountConfig } from '../config/types';
import type { Clock } from '../core/clock';
import type { AccountRef, EventBus } from '../core/events';
import type { Credentials, TokenProvider } from '../providers/types';
import type { StateStore } from '../store/store';
import type { StateKeeper } from './state-keeper';

/** Told once the broker answered a budgeted call (or it failed on the way): its budget slot is held until then. */
export type CallAnswered = () => void;
/** For a call with no budget to keep (no gateway). */
export const noBudget: CallAnswered = () => undefined;

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
  /**
   * Waits for a slot of the account's per-second call budget before a call that spends it (a proof), when the
   * gateway keeps that budget: the sidecar's own calls count against it like its clients'. The slot is held
   * until a second after the function it returns is called, once the broker answered (src/gateway/budget.ts).
   */
  beforeBudgetedCall(): Promise<CallAnswered>;
  /** Brings the sink files in line with the state. */
  publish(cause: 'token' | 'start'): Promise<void>;
}

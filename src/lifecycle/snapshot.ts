import type { AccountConfig } from '../config/types';
import type { AccountRef } from '../core/events';
import { credentialsId, type AccountState } from '../store/state';
import { NEVER, decide, isUsable, plannedRenewalAt, tokenStatus, type TokenStatus } from './policy';

/** An account as status, metrics and readiness see it: the state plus what the policy makes of it now. */
export interface AccountSnapshot {
  ref: AccountRef;
  state: AccountState;
  status: TokenStatus;
  usable: boolean;
  plannedRenewalAt: number | null;
  nextAttemptAt: number | null;
  /** "issuance" when an attempt is due now, else what the next one waits for (spacing, backoff, ...). */
  waitingFor: string;
}

export function snapshotOf(config: AccountConfig, state: AccountState, now: number): AccountSnapshot {
  const policy = config.renewal;
  const status = tokenStatus(state, now, policy);
  const decision = decide({ now, state, policy, credentialsId: credentialsId(config.appKey, config.appSecret), force: false, requestTimeoutMs: config.http.timeoutMs });
  return {
    ref: { name: config.name, provider: config.provider, env: config.env },
    state,
    status,
    usable: isUsable(status),
    plannedRenewalAt: state.token && !state.invalidated ? plannedRenewalAt(state.token, policy).at : null,
    nextAttemptAt: decision.kind === 'issue' ? now : decision.until === NEVER ? null : decision.until,
    waitingFor: decision.kind === 'issue' ? 'issuance' : decision.why,
  };
}

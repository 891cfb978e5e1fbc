import type { AccountConfig } from '../config/types';
import type { AccountRef } from '../core/events';
import type { TokenView } from '../sinks/formats';
import type { AccountState } from '../store/state';
import { NEVER, decideNow, isUsable, plannedRenewalAt, tokenStatus, type TokenStatus } from './policy';

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
  const decision = decideNow(config, state, now);
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

/** The token as the sink files render it; undefined when there is none to write. */
export function tokenViewOf(state: AccountState): TokenView | undefined {
  const token = state.token;
  if (!token) return undefined;
  return {
    accessToken: token.accessToken,
    tokenType: token.tokenType,
    expiresAt: token.expiresAt,
    issuedAt: token.issuedAt,
    raw: token.raw,
    approvalKey: state.approvalKey?.key,
  };
}

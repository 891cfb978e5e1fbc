import type { AccountConfig } from '../config/types';
import type { AccountRef } from '../core/events';
import type { TokenView } from '../sinks/formats';
import type { SinkStatus } from '../sinks/supervisor';
import type { AccountState } from '../store/account-state';
import { NEVER, decideNow, isUsable, plannedRenewalAt, tokenStatus, type OwnAttempt, type TokenStatus } from './policy';

/**
 * What readers see of an account, made here from the state: the snapshot (the state and what the policy makes
 * of it now), the view (the snapshot with its sink files, what metrics, /status, alerts and the `status`
 * command read), and the token as the sink files render it.
 */

/** The state plus what the policy makes of it now. */
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

/** An account with its sink files: what the exporter, /status, the alerts and the `status` command read. */
export interface AccountView {
  snapshot: AccountSnapshot;
  sinks: SinkStatus[];
  /** A usable token, and every sink holding it: what /readyz answers for the account. */
  ready: boolean;
}

export function accountViewOf(snapshot: AccountSnapshot, sinks: SinkStatus[], sinksReady: boolean): AccountView {
  return { snapshot, sinks, ready: snapshot.usable && sinksReady };
}

export function snapshotOf(config: AccountConfig, state: AccountState, now: number, ownAttempt?: OwnAttempt): AccountSnapshot {
  const policy = config.renewal;
  const status = tokenStatus(state, now, policy);
  const decision = decideNow(config, state, now, false, ownAttempt);
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

import type { AccountConfig, RenewalPolicy } from '../config/types';
import type { IssueWhy } from '../core/events';
import { credentialsId, type AccountState, type TokenRecord } from '../store/account-state';
import { nextScheduledAt } from '../core/schedule';

/**
 * Pure decisions: given the state, the policy and the time, what to do now. No I/O, no clock of its own, so
 * tests walk through days of renewals by calling these with chosen instants.
 */

export const TOKEN_STATUSES = ['valid', 'expiring', 'expired', 'missing', 'invalid'] as const;
export type TokenStatus = (typeof TOKEN_STATUSES)[number];

export function tokenStatus(state: AccountState, now: number, policy: RenewalPolicy): TokenStatus {
  const token = state.token;
  if (!token) return 'missing';
  if (state.invalidated) return 'invalid';
  if (now >= token.expiresAt) return 'expired';
  if (now >= token.expiresAt - policy.renewBeforeMs) return 'expiring';
  return 'valid';
}

export function isUsable(status: TokenStatus): boolean {
  return status === 'valid' || status === 'expiring';
}

/**
 * When this token should be renewed: `renewBefore` (plus its drawn jitter) ahead of expiry, or an earlier
 * scheduled slot once the token is old enough. Never inside the broker's same-token window after issuance,
 * where KIS would hand back the same token and the "renewal" would renew nothing.
 */
export function plannedRenewalAt(token: TokenRecord, policy: RenewalPolicy): { at: number; why: 'renewal_due' | 'schedule' } {
  const notBefore = token.issuedAt + policy.sameTokenWindowMs + policy.spacingMs;
  const byExpiry = Math.max(token.expiresAt - policy.renewBeforeMs - token.renewJitter * policy.jitterMs, notBefore);
  if (policy.schedule !== undefined) {
    const slot = nextScheduledAt(policy.schedule, Math.max(token.issuedAt + policy.scheduleMinAgeMs, notBefore));
    if (slot !== undefined && slot < byExpiry) return { at: slot, why: 'schedule' };
  }
  // A window longer than the token's life cannot hold the renewal past expiry.
  return { at: Math.min(byExpiry, token.expiresAt - policy.spacingMs), why: 'renewal_due' };
}

export type WaitWhy = 'renewal_planned' | 'spacing' | 'backoff' | 'same_token' | 'auth_rejected';

export type Decision = { kind: 'issue'; why: IssueWhy } | { kind: 'wait'; until: number; why: WaitWhy };

interface DecideInput {
  now: number;
  state: AccountState;
  policy: RenewalPolicy;
  /** Identifies the credentials now configured; an auth_rejected hold is lifted when they change. */
  credentialsId: string;
  /** A person asked for a new token (renew --force, POST /renew): skips the plan and backoff, never the spacing. */
  force: boolean;
  /** The longest a request may take; bounds when an unfinished one could still have reached the broker. */
  requestTimeoutMs: number;
  /** This process's own last request, on the monotonic clock; absent before it made one. */
  ownAttempt?: OwnAttempt | undefined;
}

/**
 * This process's own last token request, timed on the monotonic clock (Clock.monotonic), with that clock's
 * reading now. The state's record is in wall-clock time, so a step forward of the wall clock (+25 h) would make
 * the spacing look long over while the broker saw the last request seconds ago (EGW00133); measured here, the
 * spacing holds whatever the wall clock does. It lives in memory only: across a restart the state's record is all
 * there is, and a wall clock stepped back is corrected there (correctedForClockJumpBack).
 */
export interface OwnAttempt {
  sentAt: number;
  /** Undefined while the request is in flight. */
  endedAt: number | undefined;
  now: number;
}

/**
 * The broker counts its spacing from when it handled a request, which can be any moment until the request
 * ended. So the spacing runs from the end of the last request; from its start plus the request timeout when
 * it never ended (the process died while it was in flight).
 */
export function spacingStartsAt(lastAttempt: AccountState['lastAttempt'], requestTimeoutMs: number): number | undefined {
  if (!lastAttempt) return undefined;
  return spacingStart(lastAttempt.at, lastAttempt.endedAt, lastAttempt.outcome === 'pending', requestTimeoutMs);
}

function spacingStart(at: number, endedAt: number | undefined, inFlight: boolean, requestTimeoutMs: number): number {
  if (endedAt !== undefined) return endedAt;
  return inFlight ? at + requestTimeoutMs : at;
}

/**
 * When the spacing ends, as a wall-clock instant: after the state's record of the last request (which may be
 * another replica's, or an earlier process's) and, when this process made one, after its own on the monotonic clock.
 */
function spacingEndsAt(input: Pick<DecideInput, 'now' | 'state' | 'policy' | 'requestTimeoutMs' | 'ownAttempt'>): number {
  const { now, state, policy, requestTimeoutMs, ownAttempt } = input;
  const recorded = spacingStartsAt(state.lastAttempt, requestTimeoutMs) ?? -Infinity;
  const own = ownAttempt ? now - (ownAttempt.now - spacingStart(ownAttempt.sentAt, ownAttempt.endedAt, true, requestTimeoutMs)) : -Infinity;
  return Math.max(recorded, own) + policy.spacingMs;
}

/** Far enough ahead to mean "not until something changes"; the loop wakes up regularly anyway. */
export const NEVER = Number.MAX_SAFE_INTEGER;

export function decide(input: DecideInput): Decision {
  const { now, state, policy, credentialsId, force } = input;
  if (state.authBlock && state.authBlock.credentialsId === credentialsId && !force) {
    return { kind: 'wait', until: NEVER, why: 'auth_rejected' };
  }
  const token = state.token;
  let why: IssueWhy;
  if (force) why = 'forced';
  else if (!token) why = 'no_token';
  else if (state.invalidated) why = 'invalidated';
  else if (now >= token.expiresAt) why = 'expired';
  else {
    const plan = plannedRenewalAt(token, policy);
    if (now < plan.at) return { kind: 'wait', until: plan.at, why: 'renewal_planned' };
    why = plan.why;
  }
  if (!force && state.nextRetryAt !== null && now < state.nextRetryAt) {
    return { kind: 'wait', until: state.nextRetryAt, why: state.sameTokenStreak > 0 && state.consecutiveFailures === 0 ? 'same_token' : 'backoff' };
  }
  const spacingEnds = spacingEndsAt(input);
  if (now < spacingEnds) return { kind: 'wait', until: spacingEnds, why: 'spacing' };
  return { kind: 'issue', why };
}

/** `decide` for one configured account: the input every caller (a tick, an issuance under the lease, a snapshot) builds alike. */
export function decideNow(account: AccountConfig, state: AccountState, now: number, force = false, ownAttempt?: OwnAttempt): Decision {
  return decide({
    now,
    state,
    policy: account.renewal,
    credentialsId: credentialsId(account.appKey, account.appSecret),
    force,
    requestTimeoutMs: account.http.timeoutMs,
    ownAttempt,
  });
}

/**
 * After the broker answered with the token it already gave: that was no renewal. The next attempt waits until
 * the same-token window of that token is over (or, when the token is believed to die first, the last moment
 * a renewal is still useful), and backs off when the window should already be over or that moment has passed:
 * inside the window every ask gets the same token, so asking each spacing would only spend the broker's patience.
 */
export function nextAttemptAfterSameToken(token: TokenRecord, now: number, streak: number, policy: RenewalPolicy): number {
  const windowEnd = token.issuedAt + policy.sameTokenWindowMs + policy.spacingMs;
  const backoff = now + Math.min(policy.retry.maxDelayMs, policy.retry.initialDelayMs * policy.retry.multiplier ** Math.max(0, streak - 1));
  const latestUseful = token.expiresAt - policy.spacingMs;
  let next: number;
  if (windowEnd <= now) next = backoff;
  else if (latestUseful > now) next = Math.min(windowEnd, latestUseful);
  else next = Math.min(windowEnd, backoff);
  return Math.max(now + policy.spacingMs, next);
}

/**
 * What a same-token answer teaches: the broker's stated expiry of the token it still holds, believed no
 * further than `maxLifetime` from that token's first issuance. Undefined when it changes nothing.
 */
export function expiryFromSameToken(token: TokenRecord, statedExpiresAt: number, now: number, policy: RenewalPolicy): number | undefined {
  const expiresAt = Math.min(statedExpiresAt, token.issuedAt + policy.maxLifetimeMs);
  return expiresAt !== token.expiresAt && expiresAt > now ? expiresAt : undefined;
}

/**
 * The clock was set back when the last attempt lies in the future. Real time since that attempt is unknown but
 * not negative, so it is moved to now, with the retry planned from it: the spacing then holds from now, and
 * nothing waits out the size of the jump.
 */
export function correctedForClockJumpBack(state: AccountState, now: number): AccountState | undefined {
  const attempt = state.lastAttempt;
  if (!attempt || attempt.at <= now) return undefined;
  const shift = attempt.at - now;
  return {
    ...state,
    lastAttempt: { ...attempt, at: now, ...(attempt.endedAt !== undefined ? { endedAt: Math.max(now, attempt.endedAt - shift) } : {}) },
    nextRetryAt: state.nextRetryAt === null ? null : state.nextRetryAt - shift,
  };
}

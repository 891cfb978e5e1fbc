import type { AccountConfig } from '../config/types';
import { readJwtClaims } from '../providers/token-checks';
import { appKeyId, type AccountState } from '../store/account-state';

/**
 * What comes from disk or from the shared store is checked like what comes from the broker before it is
 * believed and written into every file: a state file or a Redis entry is as open to a careless hand, a bug
 * or a neighbour as a broker answer is to a proxy. Each check names why, for the log.
 */

// The broker's clock may run ahead of ours by this much before an expiry counts as beyond belief.
const CLOCK_SKEW_ALLOWANCE_MS = 10 * 60_000;

/** Why a token may not be this account's, or undefined when it may be. */
export function tokenNotOurs(accessToken: string, account: AccountConfig): string | undefined {
  // A KIS token names its app key in `jti`.
  const jti = readJwtClaims(accessToken)?.jti;
  if (account.provider === 'kis' && typeof jti === 'string' && jti !== account.appKey) return 'the token names another app key';
  return undefined;
}

/** Why an expiry is beyond belief (further than maxLifetime from now), or undefined when it is believable. */
export function expiryBeyondBelief(expiresAt: number, account: AccountConfig, now: number): string | undefined {
  if (!Number.isFinite(expiresAt) || expiresAt > now + account.renewal.maxLifetimeMs + CLOCK_SKEW_ALLOWANCE_MS) {
    return `the token's expiry lies beyond maxLifetime (${Math.round(account.renewal.maxLifetimeMs / 3_600_000)}h) from now`;
  }
  return undefined;
}

/** Why a loaded state cannot be taken as this account's, or undefined when it can. */
export function stateNotBelievable(state: AccountState, account: AccountConfig, now: number): string | undefined {
  if (state.appKeyId !== appKeyId(account.appKey)) return 'it belongs to another app key (the configured one changed)';
  const token = state.token;
  if (!token) return undefined;
  const notOurs = tokenNotOurs(token.accessToken, account);
  if (notOurs) return notOurs;
  const beyond = expiryBeyondBelief(token.expiresAt, account, now);
  if (beyond) return beyond;
  if (token.expiresAt > token.issuedAt + account.renewal.maxLifetimeMs + CLOCK_SKEW_ALLOWANCE_MS) {
    return `the token's expiry lies beyond maxLifetime from its issuance`;
  }
  return undefined;
}

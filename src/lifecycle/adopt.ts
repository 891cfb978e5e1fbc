import type { AccountConfig } from '../config/types';
import { formatWallClock } from '../core/time';
import { readJwtClaims, MIN_USEFUL_LIFETIME_MS } from '../providers/token-checks';
import type { TokenInFile } from '../sinks/formats';
import type { TokenRecord } from '../store/account-state';
import { expiryBeyondBelief, tokenNotOurs } from './trust';

/**
 * Moving onto the sidecar must not cost an issuance: with no state of its own, the sidecar takes over a
 * still-valid token it finds in the account's sink files (a kis_auth.py daily file, a JSON cache).
 */
interface AdoptionCandidate {
  sink: string;
  path: string;
  token: TokenInFile;
}

/** The candidate to adopt: usable for a while yet, belonging to this app key, the one that lives longest. */
export function chooseAdoption(candidates: AdoptionCandidate[], account: AccountConfig, now: number): (AdoptionCandidate & { expiresAt: number }) | undefined {
  let best: (AdoptionCandidate & { expiresAt: number }) | undefined;
  for (const candidate of candidates) {
    const expiresAt = candidate.token.expiresAt;
    if (expiresAt === undefined || expiresAt <= now + MIN_USEFUL_LIFETIME_MS) continue;
    // Not a believable expiry, or a file left by another key's client: not ours to adopt.
    if (expiryBeyondBelief(expiresAt, account, now) || tokenNotOurs(candidate.token.accessToken, account)) continue;
    if (!best || expiresAt > best.expiresAt) best = { ...candidate, expiresAt };
  }
  return best;
}

/** The adopted token as a state record, with an answer shaped like the broker's for the `raw` layout. */
export function adoptedRecord(chosen: AdoptionCandidate & { expiresAt: number }, account: AccountConfig, now: number, renewJitter: number): TokenRecord {
  const claims = readJwtClaims(chosen.token.accessToken);
  const iat = typeof claims?.iat === 'number' ? claims.iat * 1000 : undefined;
  // Without the broker's issuance time, the earliest plausible one: the renewal plan then errs early, where
  // a same-token answer is noticed and handled, rather than late, where the token could run out.
  const issuedAt = iat !== undefined && iat <= now ? iat : chosen.expiresAt - account.renewal.maxLifetimeMs;
  const raw =
    account.provider === 'kis'
      ? {
          access_token: chosen.token.accessToken,
          access_token_token_expired: formatWallClock(chosen.expiresAt),
          token_type: 'Bearer',
          expires_in: Math.round((chosen.expiresAt - issuedAt) / 1000),
        }
      : {
          expires_dt: formatWallClock(chosen.expiresAt).replace(/[- :]/g, ''),
          token_type: 'bearer',
          token: chosen.token.accessToken,
          return_code: 0,
          return_msg: '정상적으로 처리되었습니다',
        };
  return {
    accessToken: chosen.token.accessToken,
    tokenType: account.provider === 'kis' ? 'Bearer' : 'bearer',
    expiresAt: chosen.expiresAt,
    issuedAt,
    receivedAt: now,
    source: 'adopted',
    adoptedFrom: chosen.sink,
    renewJitter,
    raw,
  };
}

import { BrokerError } from '../core/errors';

/**
 * Checks every broker's token answer must pass before the sidecar trusts it. An answer that fails one is a
 * `bad_response`: nothing in the state changes, so the last good token stays.
 */

// KIS tokens are JWTs of ~350 characters, Kiwoom's are shorter opaque strings; anything far outside is an
// error page or a truncated answer, not a token.
const MIN_TOKEN_LENGTH = 16;
const MAX_TOKEN_LENGTH = 4096;
const TOKEN_CHARACTERS = /^[\x21-\x7e]+$/; // printable ASCII, no white space
// An expiry this close is no use: the apps would get a token that dies before they read it.
export const MIN_USEFUL_LIFETIME_MS = 60_000;
// Allowance for the broker's clock running ahead of ours before an expiry counts as too far out.
const CLOCK_SKEW_ALLOWANCE_MS = 10 * 60_000;

export function checkTokenText(token: unknown, what: string): string {
  if (typeof token !== 'string' || token === '') throw new BrokerError('bad_response', `${what}: no token in the answer`);
  if (token.length < MIN_TOKEN_LENGTH || token.length > MAX_TOKEN_LENGTH) {
    throw new BrokerError('bad_response', `${what}: token of implausible length (${token.length} characters)`);
  }
  if (!TOKEN_CHARACTERS.test(token)) throw new BrokerError('bad_response', `${what}: token contains characters a token cannot have`);
  return token;
}

/**
 * An expiry already past (or about to be) is refused; one beyond the longest plausible lifetime is cut down
 * to it, since refusing would mean asking again, and the broker would answer with the same token.
 */
export function checkExpiry(
  expiresAt: number,
  issuedAt: number,
  receivedAt: number,
  maxLifetimeMs: number,
  what: string,
): { expiresAt: number; clamped: boolean } {
  if (!Number.isFinite(expiresAt) || expiresAt <= receivedAt + MIN_USEFUL_LIFETIME_MS) {
    throw new BrokerError('bad_response', `${what}: expiry ${instantText(expiresAt)} is already past`);
  }
  const latestPlausible = Math.min(issuedAt, receivedAt) + maxLifetimeMs + CLOCK_SKEW_ALLOWANCE_MS;
  if (expiresAt > latestPlausible) {
    const cut = Math.min(issuedAt, receivedAt) + maxLifetimeMs;
    // Issued longer ago than a token lives (an `iat` days old): cut to its lifetime, the token is already dead.
    if (cut <= receivedAt + MIN_USEFUL_LIFETIME_MS) {
      throw new BrokerError('bad_response', `${what}: expiry ${instantText(cut)} (cut to maxLifetime from its issuance) is already past`);
    }
    return { expiresAt: cut, clamped: true };
  }
  return { expiresAt, clamped: false };
}

/** An instant for a message; one a Date cannot hold (a JWT exp of 1e300) is shown as the number it was. */
function instantText(at: number): string {
  return Number.isFinite(at) && Math.abs(at) <= 8.64e15 ? new Date(at).toISOString() : String(at);
}

/** The claims of a JWT-shaped token, read without verification (only the broker can verify it). */
export function readJwtClaims(token: string): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as unknown;
    return claims !== null && typeof claims === 'object' && !Array.isArray(claims) ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A broker's words as they may be repeated in logs, /status, the state and Slack: at most `max` characters of
 * one line. A proxy's error page or a 250 KB error_description must not become a 500 KB Slack payload.
 */
export const MAX_BROKER_TEXT = 200;
export function brokerText(value: unknown, max = MAX_BROKER_TEXT): string | undefined {
  if (typeof value !== 'string') return undefined;
  // eslint-disable-next-line no-control-regex
  const oneLine = value.replace(/[\x00-\x1f\x7f\x85\u2028\u2029]+/g, ' ');
  return oneLine.length > max ? `${oneLine.slice(0, max)}… (${oneLine.length} characters)` : oneLine;
}

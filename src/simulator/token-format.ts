/**
 * What the simulated tokens and time strings (expiries, order times) look like on the wire. Clients parse these,
 * so they copy the real brokers' shapes: a KIS token is a JWT whose `exp` matches `access_token_token_expired`; a
 * Kiwoom token is opaque.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { formatWallClock, KST_ZONE } from '../core/time';

// Real KIS tokens carry this header ({"typ":"JWT","alg":"HS512"}); with the claims below the token comes
// to about 340 characters, like the real ones.
const KIS_JWT_HEADER = Buffer.from(JSON.stringify({ typ: 'JWT', alg: 'HS512' })).toString('base64url');

export class KisJwtMinter {
  // Per simulator instance, so a token from one simulator is never accepted by another.
  private readonly secret = randomBytes(64);

  mint(appKey: string, issuedAtMs: number, expiresAtMs: number): string {
    const claims = {
      sub: 'token',
      aud: randomUUID(),
      iss: 'unogw',
      exp: Math.floor(expiresAtMs / 1000),
      iat: Math.floor(issuedAtMs / 1000),
      jti: appKey,
    };
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    const signature = createHmac('sha512', this.secret).update(`${KIS_JWT_HEADER}.${payload}`).digest('base64url');
    return `${KIS_JWT_HEADER}.${payload}.${signature}`;
  }
}

/** Kiwoom tokens are opaque; 64 random bytes give the ~86 characters seen in the wild. */
export function mintKiwoomToken(): string {
  return randomBytes(64).toString('base64url');
}

/** KIS `access_token_token_expired`: "YYYY-MM-DD HH:MM:SS" KST. */
export function kstWallClock(instantMs: number): string {
  return formatWallClock(instantMs, KST_ZONE);
}

/** Kiwoom `expires_dt`: "YYYYMMDDHHMMSS" KST. */
export function kstCompact(instantMs: number): string {
  return formatWallClock(instantMs, KST_ZONE).replace(/[-: ]/g, '');
}

/** KIS `ORD_TMD`: the order's "HHMMSS" in KST. */
export function kstTimeOfDay(instantMs: number): string {
  return formatWallClock(instantMs, KST_ZONE).slice(11).replace(/:/g, '');
}

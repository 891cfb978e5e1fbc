import { createHmac, randomBytes } from 'node:crypto';
import { writeFileAtomic } from '../core/atomic-file';
import { FileReadError, readRegularFile } from '../core/safe-read';
import type { GatewayClientConfig } from '../config/types';
import type { Revocations } from './revocations';
import type * as Jose from 'jose' with { 'resolution-mode': 'import' };

/**
 * The tokens the gateway hands its clients instead of the broker's: JWTs (HS256, signed and checked by `jose`)
 * naming the client and the account, shaped as the broker's so a client that reads the claims is content. They
 * mean nothing outside this gateway, and every replica holding the same key accepts them.
 *
 * Where a local token is the credential (Kiwoom: a call carries only its bearer), it is a real one:
 * - its `exp` is checked (the real token's expiry when it was made: the client then asks the gateway for a new one,
 *   on the 8005 it knows, at no cost at the broker);
 * - it is bound to its client and that client's current secret (`sec`): rotating the secret or removing the client
 *   ends every token it holds;
 * - a revocation holds until the token's expiry, across restarts and replicas (revocations.ts), and a client may
 *   revoke only its own tokens.
 * KIS calls are authenticated by the local key and secret in their headers; their bearer is never checked, so a
 * bot that keeps its first token in memory for ever (kis_auth.py) goes on working past the token's day.
 */

interface LocalTokenClaims {
  client: string;
  account: string;
  /** Epoch ms: what the client is told its token lasts (the real token's expiry). */
  expiresAt: number;
}

interface VerifiedToken {
  client: string;
  account: string;
  jti: string;
  /** Epoch ms. */
  issuedAt: number;
  expiresAt: number;
}

type TokenRefusal = 'invalid' | 'expired' | 'revoked' | 'rotated';

const KEY_BYTES = 32;
const ISSUER = 'broker-token-sidecar';
const SUBJECT = 'gateway-local';

/** jose is an ES module; loaded once, on the gateway's first token. */
const jose = (() => {
  let loaded: Promise<typeof Jose> | undefined;
  return () => (loaded ??= import('jose'));
})();

export class LocalTokens {
  constructor(
    private readonly key: Buffer,
    private readonly clientByName: (name: string) => GatewayClientConfig | undefined,
    private readonly revocations: Revocations,
  ) {}

  /** Binds a token to its client's current secret without carrying anything that would reveal it. */
  private bindingOf(client: GatewayClientConfig): string {
    return createHmac('sha256', this.key).update('client-secret\u0000').update(client.appSecretSha256).digest('base64url').slice(0, 22);
  }

  async mint(client: GatewayClientConfig, claims: LocalTokenClaims, now: number): Promise<string> {
    const { SignJWT } = await jose();
    return new SignJWT({ acct: claims.account, sec: this.bindingOf(client) })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setSubject(SUBJECT)
      .setAudience(client.name)
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor(claims.expiresAt / 1000))
      .setJti(randomBytes(12).toString('base64url'))
      .sign(this.key);
  }

  /**
   * The client and account a token names, or why it is refused. `checkExpiry`: false where the bearer is only a
   * hint (routing a KIS call, which its headers authenticate).
   */
  async verify(token: string, now: number, checkExpiry = true): Promise<VerifiedToken | TokenRefusal> {
    const { jwtVerify, errors } = await jose();
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.key, {
        algorithms: ['HS256'],
        issuer: ISSUER,
        subject: SUBJECT,
        currentDate: new Date(now),
        // Seconds in the claims, milliseconds here: a token is good until the end of its last second.
        clockTolerance: checkExpiry ? 0 : Number.MAX_SAFE_INTEGER,
        requiredClaims: ['aud', 'acct', 'sec', 'jti', 'iat', 'exp'],
      }));
    } catch (error) {
      return error instanceof errors.JWTExpired ? 'expired' : 'invalid';
    }
    const { aud, acct, sec, jti, iat, exp } = payload;
    if (typeof aud !== 'string' || typeof acct !== 'string' || typeof sec !== 'string' || typeof jti !== 'string') return 'invalid';
    const client = this.clientByName(aud);
    if (!client || sec !== this.bindingOf(client)) return 'rotated';
    const verified = { client: aud, account: acct, jti, issuedAt: Number(iat) * 1000, expiresAt: Number(exp) * 1000 };
    if (this.revocations.isRevoked(verified)) return 'revoked';
    return verified;
  }

  /** A client's revoke: only a token of its own that is still good; it stays refused until its expiry. */
  async revoke(token: string, byClient: string, now: number): Promise<'revoked' | 'not_yours' | TokenRefusal> {
    const verified = await this.verify(token, now);
    if (typeof verified === 'string') return verified;
    if (verified.client !== byClient) return 'not_yours';
    await this.revocations.revoke(verified, now);
    return 'revoked';
  }
}

/**
 * The signing key: read from its file, or made and written there (mode 0600) on first use. Replicas that share
 * clients share this file (a mounted secret), so a token one replica made is good at every other.
 */
export async function loadOrCreateTokenKey(path: string): Promise<Buffer> {
  try {
    const { content } = await readRegularFile(path, { followSymlinks: true, maxBytes: 1024 });
    const key = Buffer.from(content.trim(), 'base64url');
    if (key.length < KEY_BYTES) throw new Error(`${path} holds no gateway key of ${KEY_BYTES} bytes (base64url); remove it to have one made`);
    return key;
  } catch (error) {
    if (!(error instanceof FileReadError) || error.code !== 'missing') throw error;
  }
  const key = randomBytes(KEY_BYTES);
  await writeFileAtomic(path, `${key.toString('base64url')}\n`, { mode: 0o600, dirMode: 0o700 });
  return key;
}

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { writeFileAtomic } from '../core/atomic-file';
import { FileReadError, readRegularFile } from '../core/safe-read';

/**
 * The tokens the gateway hands to its clients instead of the broker's: JWTs signed with a key of the gateway's
 * own (HS256), naming the client and the account. They are shaped as the broker's (a KIS client may read the
 * claims), mean nothing outside this gateway, and are checked without a lookup, so they survive a restart and
 * every replica holding the same key accepts them.
 *
 * A local token stays good past the `exp` it shows: the gateway sends the current real token with every call,
 * so a client that never asks again (kis_auth.py keeps its token in memory for ever) still works. Only a local
 * revoke ends one.
 */

interface LocalTokenClaims {
  client: string;
  account: string;
  /** Epoch ms: the real token's expiry when this one was made, what the client is told. */
  expiresAt: number;
}

const KEY_BYTES = 32;
const MAX_REVOKED = 10_000;
const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

export class LocalTokens {
  /** The ids of revoked tokens, oldest first; bounded, since a client may revoke as often as it likes. */
  private readonly revoked = new Set<string>();

  constructor(private readonly key: Buffer) {}

  mint(claims: LocalTokenClaims, now: number): string {
    const payload = {
      sub: 'gateway-local',
      iss: 'broker-token-sidecar',
      aud: claims.client,
      acct: claims.account,
      iat: Math.floor(now / 1000),
      exp: Math.floor(claims.expiresAt / 1000),
      jti: randomBytes(12).toString('base64url'),
    };
    const body = `${HEADER}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    return `${body}.${this.sign(body)}`;
  }

  /** The client and account a token names, when this gateway made it and it was not revoked. */
  verify(token: string): { client: string; account: string } | undefined {
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== HEADER) return undefined;
    const expected = Buffer.from(this.sign(`${parts[0]}.${parts[1]}`));
    const given = Buffer.from(parts[2]!);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    let payload: { aud?: unknown; acct?: unknown; jti?: unknown };
    try {
      payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as typeof payload;
    } catch {
      return undefined;
    }
    if (typeof payload.aud !== 'string' || typeof payload.acct !== 'string' || typeof payload.jti !== 'string') return undefined;
    if (this.revoked.has(payload.jti)) return undefined;
    return { client: payload.aud, account: payload.acct };
  }

  /** A client's revoke: that token is refused from now on (in this process; a restart forgets, as for any cache). */
  revoke(token: string): boolean {
    if (!this.verify(token)) return false;
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { jti: string };
    this.revoked.add(payload.jti);
    if (this.revoked.size > MAX_REVOKED) this.revoked.delete(this.revoked.values().next().value!);
    return true;
  }

  private sign(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
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

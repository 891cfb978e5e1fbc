import { createHmac } from 'node:crypto';
import { sha256 } from '../core/wire';
import type { GatewayClientConfig } from '../config/types';

/**
 * The approval keys the gateway's `Approval` hands KIS clients instead of the account's real one: bound to the
 * client, its current secret and the account, accepted only by the real-time endpoint (src/realtime/), meaningless
 * at the broker. The real key never leaves the sidecar: a client holding it could open the app key's one session
 * itself and lock every other program out (OPSP8996).
 *
 * Derived, not stored: an HMAC under the gateway's signing key, so every replica sharing that key hands the same
 * client the same approval key, a restart changes nothing, and rotating the client's secret (or removing the
 * client) ends it. Shaped as the broker's (36 characters, hex in 8-4-4-4-12), so a client that stores or checks
 * it is content.
 */
export class LocalApprovalKeys {
  // SHA-256 of each key → whom it names: a lookup by a digest tells a caller nothing about the keys that exist.
  private readonly byDigest = new Map<string, { client: string; account: string }>();

  constructor(
    private readonly signingKey: Buffer,
    clients: readonly GatewayClientConfig[],
  ) {
    for (const client of clients) {
      for (const account of client.accounts) this.byDigest.set(sha256(this.keyOf(client, account)).toString('hex'), { client: client.name, account });
    }
  }

  /** The client's approval key for the account. */
  keyOf(client: GatewayClientConfig, account: string): string {
    const hex = createHmac('sha256', this.signingKey)
      .update('approval-key\u0000')
      .update(client.name)
      .update('\u0000')
      .update(account)
      .update('\u0000')
      .update(client.appSecretSha256)
      .digest('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
  }

  /** The client and account a presented key names, or undefined. */
  verify(presented: string): { client: string; account: string } | undefined {
    return this.byDigest.get(sha256(presented).toString('hex'));
  }
}

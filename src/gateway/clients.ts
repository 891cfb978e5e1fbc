import { randomBytes, timingSafeEqual } from 'node:crypto';
import { KIS_APP_KEY_LENGTH, KIS_APP_SECRET_LENGTH } from '../config/defaults';
import { sha256 } from '../core/wire';
import type { GatewayClientConfig } from '../config/types';

/**
 * The gateway's clients and their local credentials. A presented secret is hashed and compared in constant
 * time with the configured digest; an unknown key costs the same work, so timing tells nothing of which keys
 * exist.
 */
export class ClientBook {
  private readonly byKey: Map<string, GatewayClientConfig>;
  private readonly byName: Map<string, GatewayClientConfig>;
  private static readonly NOBODY = sha256('no client has this secret');

  constructor(clients: readonly GatewayClientConfig[]) {
    this.byKey = new Map(clients.map((c) => [c.appKey, c]));
    this.byName = new Map(clients.map((c) => [c.name, c]));
  }

  /** The client these local credentials name, or undefined. */
  authenticate(appKey: string | undefined, appSecret: string | undefined): GatewayClientConfig | undefined {
    const client = appKey === undefined ? undefined : this.byKey.get(appKey);
    const presented = sha256(appSecret ?? '');
    const matches = timingSafeEqual(presented, client?.appSecretSha256 ?? ClientBook.NOBODY);
    return client && appSecret !== undefined && matches ? client : undefined;
  }

  /** The client a local key names, unauthenticated: only to route a call, which is authenticated after. */
  byAppKey(appKey: string): GatewayClientConfig | undefined {
    return this.byKey.get(appKey);
  }

  byClientName(name: string): GatewayClientConfig | undefined {
    return this.byName.get(name);
  }
}

export const mayUse = (client: GatewayClientConfig, account: string): boolean => client.accounts.includes(account);

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomText(length: number): string {
  // 62 letters from bytes below 248 (4 x 62): no letter is likelier than another.
  let text = '';
  while (text.length < length) for (const byte of randomBytes(length)) if (byte < 248 && text.length < length) text += ALPHANUMERIC[byte % 62];
  return text;
}

/**
 * New local credentials in the broker's shape (KIS: 36 and 180 letters and digits, as real ones, so a client's
 * own checks pass), prefixed so that nobody takes them for a real key.
 */
export function newLocalCredentials(): { appKey: string; appSecret: string } {
  return { appKey: `GW${randomText(KIS_APP_KEY_LENGTH - 2)}`, appSecret: randomText(KIS_APP_SECRET_LENGTH) };
}

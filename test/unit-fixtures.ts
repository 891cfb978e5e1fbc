import { DEFAULT_RENEWAL } from '../src/config/defaults';
import type { FileAccess, RenewalPolicy } from '../src/config/types';
import type { BrokerHttpResponse } from '../src/providers/broker-http';
import { emptyState, type AccountState, type TokenRecord } from '../src/store/account-state';

/**
 * Builders for the unit tables: deterministic values only (no clock, no randomness), and none of the
 * integration helpers, so a unit file loads only the module it tests.
 */

/** 2026-11-20 09:00:00 KST (00:00:00 UTC), as in test/helpers.ts. */
export const T0 = Date.UTC(2026, 10, 20, 0, 0, 0);
export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;

export function renewalPolicy(overrides: Partial<RenewalPolicy> = {}): RenewalPolicy {
  return { ...DEFAULT_RENEWAL, retry: { ...DEFAULT_RENEWAL.retry }, ...overrides };
}

export function tokenRecord(overrides: Partial<TokenRecord> = {}): TokenRecord {
  return {
    accessToken: 'a'.repeat(40),
    tokenType: 'Bearer',
    issuedAt: T0,
    receivedAt: T0,
    expiresAt: T0 + 24 * HOUR,
    source: 'issued',
    renewJitter: 0,
    raw: {},
    ...overrides,
  };
}

export function accountState(overrides: Partial<AccountState> = {}): AccountState {
  return { ...emptyState({ name: 'main', provider: 'kis', env: 'real', appKey: 'k'.repeat(36) }), ...overrides };
}

const base64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * A token shaped like KIS's (docs/brokers.md#kis-token-issuance): a JWT with header {"typ":"JWT","alg":"HS512"},
 * claims sub, iss "unogw", aud, iat, exp and jti (the app key). The signature is fixed text: nothing verifies it.
 */
export function kisJwt(claims: Record<string, unknown>): string {
  return `${base64url({ typ: 'JWT', alg: 'HS512' })}.${base64url(claims)}.${'S'.repeat(86)}`;
}

export const KIS_APP_KEY = 'PSabcdefghijklmnopqrstuvwxyz01234567';

/** The claims of a KIS token issued at `issuedAtMs`, living 24 hours. */
export function kisClaims(issuedAtMs: number, expiresAtMs = issuedAtMs + 24 * HOUR): Record<string, unknown> {
  return {
    sub: 'token',
    aud: '0f8fad5b-d9cb-469f-a165-70867728950e',
    iss: 'unogw',
    exp: Math.floor(expiresAtMs / 1000),
    iat: Math.floor(issuedAtMs / 1000),
    jti: KIS_APP_KEY,
  };
}

/** An opaque Kiwoom token of the ~86 characters seen in the wild. */
export const KIWOOM_TOKEN = 'WQJCwyqInphKnR3bSRtB9NE1lv3c5hRqJMOmMeEAnJTcmTbAXPAOqLQKMzYWQjEJwBRc0lm1cNIr4Cai0D3YdA';

export function json(status: number, body: unknown): BrokerHttpResponse {
  return { status, text: JSON.stringify(body), json: body };
}

export function notJson(status: number, text: string): BrokerHttpResponse {
  return { status, text, json: undefined };
}

export const FILE_ACCESS: FileAccess = { mode: 0o600, dirMode: 0o700, owner: undefined, group: undefined, followSymlinks: false };

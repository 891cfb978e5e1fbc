import { createHash } from 'node:crypto';
import { z } from 'zod';
import { PROOF_RESULTS, RENEWAL_FAILURE_REASONS } from '../core/errors';
import { ENVS, PROVIDERS } from '../config/schema';

/**
 * The sidecar's own durable record per account: the source of truth after a restart. Validated when read,
 * because a state file is input like any other and may have been damaged.
 */

const STATE_VERSION = 1;

const instant = z.number().int().nonnegative();

const ATTEMPT_OUTCOMES = ['pending', 'issued', 'same_token', ...RENEWAL_FAILURE_REASONS] as const;

const tokenRecordSchema = z.object({
  accessToken: z.string().min(1),
  tokenType: z.string(),
  expiresAt: instant,
  issuedAt: instant,
  receivedAt: instant,
  source: z.enum(['issued', 'adopted']),
  adoptedFrom: z.string().optional(),
  /** Fraction of the renewal jitter this token drew, kept so a restart does not draw again. */
  renewJitter: z.number().min(0).max(1),
  /** When a proof last succeeded for this very token. */
  provenAt: instant.optional(),
  raw: z.record(z.string(), z.unknown()),
});

export const accountStateSchema = z.object({
  version: z.literal(STATE_VERSION),
  account: z.string(),
  provider: z.enum(PROVIDERS),
  env: z.enum(ENVS),
  /** Which app key the token belongs to (a hash; the key itself is not stored here). */
  appKeyId: z.string(),
  token: tokenRecordSchema.nullable(),
  /** The broker rejected the current token (it died server-side). */
  invalidated: z.object({ at: instant, brokerCode: z.string(), message: z.string() }).nullable(),
  /**
   * Written before every issuance request goes out, and again when it ends: what spacing is counted from,
   * across restarts. `endedAt` is missing while the request is in flight (or when the process died then).
   */
  lastAttempt: z.object({ at: instant, outcome: z.enum(ATTEMPT_OUTCOMES), endedAt: instant.optional() }).nullable(),
  lastRenewalAt: instant.nullable(),
  lastFailure: z.object({ at: instant, reason: z.enum(RENEWAL_FAILURE_REASONS), message: z.string() }).nullable(),
  consecutiveFailures: z.number().int().nonnegative(),
  nextRetryAt: instant.nullable(),
  sameTokenStreak: z.number().int().nonnegative(),
  /** Credentials the broker rejected; no request is sent with them again until they change. */
  authBlock: z.object({ at: instant, credentialsId: z.string(), message: z.string() }).nullable(),
  lastProof: z.object({ at: instant, result: z.enum(PROOF_RESULTS), message: z.string().optional() }).nullable(),
  approvalKey: z.object({ key: z.string().min(1), issuedAt: instant }).nullable(),
  /**
   * New tokens received since this state began. Kept so the issuance counter continues across restarts: a
   * token issued at start-up, before the first scrape, still shows in increase() over a day.
   */
  issuances: z.number().int().nonnegative().default(0),
  /** Bumped at every shared write: a replica adopts a shared state newer than its own. */
  revision: z.number().int().nonnegative().default(0),
});

export type AccountState = z.infer<typeof accountStateSchema>;
export type TokenRecord = z.infer<typeof tokenRecordSchema>;

function shortHash(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 16);
}

/** Identifies an app key without storing or showing it. */
export function appKeyId(appKey: string): string {
  return shortHash('app-key', appKey);
}

/** Changes whenever the key or the secret changes: what lifts an auth_rejected hold. */
export function credentialsId(appKey: string, appSecret: string): string {
  return shortHash('credentials', appKey, appSecret);
}

/** Tells tokens apart in logs and /status without revealing them. */
export function tokenId(accessToken: string): string {
  return shortHash('token', accessToken).slice(0, 8);
}

export function emptyState(account: { name: string; provider: AccountState['provider']; env: AccountState['env']; appKey: string }): AccountState {
  return {
    version: STATE_VERSION,
    account: account.name,
    provider: account.provider,
    env: account.env,
    appKeyId: appKeyId(account.appKey),
    token: null,
    invalidated: null,
    lastAttempt: null,
    lastRenewalAt: null,
    lastFailure: null,
    consecutiveFailures: 0,
    nextRetryAt: null,
    sameTokenStreak: 0,
    authBlock: null,
    lastProof: null,
    approvalKey: null,
    issuances: 0,
    revision: 0,
  };
}

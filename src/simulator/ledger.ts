/**
 * The broker-side memory of tokens: which exist, for whom, until when, and whether they still work. This is
 * where the issuance rules live (spacing, the 6-hour same-token answer, maintenance), kept free of HTTP so
 * the rules read in one place.
 */
import type { SimulatedProvider } from './types';

interface TokenRecord {
  value: string;
  provider: SimulatedProvider;
  appKey: string;
  issuedAt: number;
  /** Whole seconds, so the JWT `exp` and the KST string name the same instant. */
  expiresAt: number;
  revoked: boolean;
  /** Killed by a maintenance while its expiry still lay ahead. */
  invalidated: boolean;
}

type IssueDecision = { kind: 'rate_limited' } | { kind: 'same'; token: TokenRecord } | { kind: 'new'; token: TokenRecord };

type TokenCheck = 'ok' | 'invalid' | 'expired';

interface LedgerRules {
  spacingMs: number;
  sameTokenWindowMs: number;
  tokenLifetimeMs: number;
  sameDeadTokenAfterMaintenance: boolean;
}

interface KeyState {
  /** Start of the spacing window: the last successful answer (new or same token). */
  lastAnswerAt?: number;
  latest?: TokenRecord;
}

export class TokenLedger {
  private readonly tokens = new Map<string, TokenRecord>();
  private readonly keys = new Map<string, KeyState>();

  constructor(private readonly rules: LedgerRules) {}

  /**
   * Decides one token request from an authenticated app key. `reuse` turns on the same-token rule (always
   * for KIS; for Kiwoom only when configured). `mint` makes the token string for a new record.
   */
  issue(provider: SimulatedProvider, appKey: string, now: number, reuse: boolean, mint: (issuedAt: number, expiresAt: number) => string): IssueDecision {
    const state = this.stateFor(appKey);
    // Refused requests do not restart the window: only answers that handed out a token count.
    if (state.lastAnswerAt !== undefined && now - state.lastAnswerAt < this.rules.spacingMs) {
      return { kind: 'rate_limited' };
    }
    const latest = state.latest;
    if (reuse && latest && this.reusable(latest, now)) {
      state.lastAnswerAt = now;
      return { kind: 'same', token: latest };
    }
    const expiresAt = Math.floor((now + this.rules.tokenLifetimeMs) / 1000) * 1000;
    const token: TokenRecord = {
      value: mint(now, expiresAt),
      provider,
      appKey,
      issuedAt: now,
      expiresAt,
      revoked: false,
      invalidated: false,
    };
    this.tokens.set(token.value, token);
    state.latest = token;
    state.lastAnswerAt = now;
    return { kind: 'new', token };
  }

  private reusable(token: TokenRecord, now: number): boolean {
    if (token.revoked || now >= token.expiresAt) return false;
    if (now - token.issuedAt >= this.rules.sameTokenWindowMs) return false;
    return !token.invalidated || this.rules.sameDeadTokenAfterMaintenance;
  }

  /**
   * Whether `value` works for `provider` (and, when given, for `appKey`: KIS sends the app key beside the
   * token, and a token issued to another key is invalid there).
   */
  check(value: string, provider: SimulatedProvider, appKey: string | undefined, now: number): TokenCheck {
    const token = this.tokens.get(value);
    if (!token || token.provider !== provider) return 'invalid';
    if (appKey !== undefined && token.appKey !== appKey) return 'invalid';
    if (token.revoked || token.invalidated) return 'invalid';
    return now >= token.expiresAt ? 'expired' : 'ok';
  }

  /** The app key a token of `provider` was issued to, if the token is known (dead or alive). */
  ownerOf(value: string | undefined, provider: SimulatedProvider): string | undefined {
    const token = value === undefined ? undefined : this.tokens.get(value);
    return token?.provider === provider ? token.appKey : undefined;
  }

  /** Revokes `value` if it belongs to `appKey`; reports whether a token was found. */
  revoke(value: string, provider: SimulatedProvider, appKey: string): boolean {
    const token = this.tokens.get(value);
    if (!token || token.provider !== provider || token.appKey !== appKey) return false;
    token.revoked = true;
    return true;
  }

  /** KIS maintenance: every token that has not yet expired stops working. */
  invalidateAll(now: number): number {
    let count = 0;
    for (const token of this.tokens.values()) {
      if (!token.revoked && !token.invalidated && now < token.expiresAt) {
        token.invalidated = true;
        count++;
      }
    }
    return count;
  }

  clear(): void {
    this.tokens.clear();
    this.keys.clear();
  }

  private stateFor(appKey: string): KeyState {
    let state = this.keys.get(appKey);
    if (!state) {
      state = {};
      this.keys.set(appKey, state);
    }
    return state;
  }
}

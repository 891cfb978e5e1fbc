import { performance } from 'node:perf_hooks';
import { BrokerError, StateError, classifyRenewalError, describeError } from '../core/errors';
import type { IssueWhy } from '../core/events';
import type { IssuedToken } from '../providers/types';
import { credentialsId, tokenId, type AccountState, type TokenRecord } from '../store/account-state';
import type { AccountContext } from './account-context';
import type { ApprovalKeys } from './approval-key';
import { retryDelayMs } from './backoff';
import { decideNow, expiryFromSameToken, isUsable, nextAttemptAfterSameToken, tokenStatus, type OwnAttempt } from './policy';
import type { SharedStateSync } from './shared-sync';
import type { SaveScope } from './state-keeper';

export type RenewOutcome =
  | { result: 'issued'; expiresAt: number }
  | { result: 'same_token'; nextAttemptAt: number }
  | { result: 'failed'; reason: string; message: string; nextAttemptAt: number | null }
  | { result: 'wait'; until: number; why: string };

// With a shared store: how soon to look again when a peer holds the issuance lease, or the store is away.
const PEER_POLL_MS = 2_000;
const STORE_RETRY_MS = 5_000;

/** Asks the broker for a new token, once the policy said it is time, and records what came of it. */
export class Issuance {
  /** This process's last request to the broker, on the monotonic clock (see OwnAttempt). */
  private own: Omit<OwnAttempt, 'now'> | undefined;

  constructor(
    private readonly account: AccountContext,
    private readonly sync: SharedStateSync,
    private readonly approvalKeys: ApprovalKeys,
  ) {}

  /**
   * Issues under the account's issuance lease. With a shared store that means: never while the store is out
   * of reach (see RedisStateStore for why), wait while a peer holds the lease, and decide again on the freshest
   * shared state once holding it, since a peer may have renewed a moment ago.
   */
  /** This process's last request, for the policy: the spacing after it holds whatever the wall clock does. */
  ownAttempt(): OwnAttempt | undefined {
    return this.own && { ...this.own, now: this.account.clock.monotonic() };
  }

  async issue(why: IssueWhy, force: boolean): Promise<RenewOutcome> {
    const { store, clock, config, kept } = this.account;
    if (store.shared && !store.health().up) return { result: 'wait', until: clock.now() + STORE_RETRY_MS, why: 'store_unavailable' };
    return this.account.limited(async () => {
      const lease = await store.acquireIssuance(config.name);
      if ('busyForMs' in lease) return { result: 'wait', until: clock.now() + Math.min(lease.busyForMs, PEER_POLL_MS), why: 'peer_issuing' };
      try {
        if (store.shared) {
          await this.sync.refresh();
          const again = decideNow(config, kept.state, clock.now(), force, this.ownAttempt());
          if (again.kind !== 'issue') return { result: 'wait', until: again.until, why: again.why };
        }
        return await this.issueHoldingLease(why);
      } finally {
        await lease.release();
      }
    });
  }

  private async issueHoldingLease(why: IssueWhy): Promise<RenewOutcome> {
    const { clock, provider, bus, config, ref, kept } = this.account;
    const attemptAt = clock.now();
    // A process that dies mid-request leaves "pending" on disk, and its successor counts the spacing from
    // attemptAt + the request timeout. That bound holds only if the request cannot outlive it, so the timeout
    // runs from here, and the state save below eats into it (on a slow disk, tens of milliseconds).
    const attemptStarted = performance.now();
    const lastAttempt: NonNullable<AccountState['lastAttempt']> = { at: attemptAt, outcome: 'pending' };
    kept.state.lastAttempt = lastAttempt;
    try {
      // The attempt is on disk (and in the shared store) before the request leaves: a crash after this line
      // cannot lead to a second request inside the spacing, from this replica or another.
      await kept.save('shared', 'throw');
    } catch (error) {
      kept.state.lastAttempt = null;
      return recordFailure(this.account, new StateError('write_failed', describeError(error)), attemptAt, 0);
    }
    const timeLeftMs = Math.floor(config.http.timeoutMs - (performance.now() - attemptStarted));
    if (timeLeftMs < 1) {
      lastAttempt.endedAt = clock.now();
      const slowSave = new BrokerError('timeout', `saving the attempt took longer than the ${config.http.timeoutMs} ms request timeout: nothing was sent`);
      return recordFailure(this.account, slowSave, attemptAt, 0);
    }
    bus.emit('issuance.attempt', { account: ref, why });
    const started = performance.now();
    const own: Omit<OwnAttempt, 'now'> = { sentAt: clock.monotonic(), endedAt: undefined };
    this.own = own;
    let issued: IssuedToken;
    try {
      issued = await provider.issue(this.account.credentials(), () => clock.now(), timeLeftMs);
    } catch (error) {
      own.endedAt = clock.monotonic();
      lastAttempt.endedAt = clock.now();
      return recordFailure(this.account, error, attemptAt, performance.now() - started);
    }
    own.endedAt = clock.monotonic();
    const durationMs = performance.now() - started;
    const now = clock.now();
    kept.remember(issued.accessToken);
    const current = kept.state.token;
    if (current && current.accessToken === issued.accessToken) return this.recordSameToken(current, issued, attemptAt, now, durationMs);
    const { state } = kept;
    state.token = {
      accessToken: issued.accessToken,
      tokenType: issued.tokenType,
      expiresAt: issued.expiresAt,
      issuedAt: issued.issuedAt,
      receivedAt: now,
      source: 'issued',
      renewJitter: this.account.random(),
      raw: issued.raw,
    };
    state.invalidated = null;
    state.lastAttempt = { at: attemptAt, outcome: 'issued', endedAt: now };
    state.lastRenewalAt = now;
    state.issuances += 1;
    state.consecutiveFailures = 0;
    state.nextRetryAt = null;
    state.sameTokenStreak = 0;
    state.authBlock = null;
    this.approvalKeys.forgetFailure();
    await kept.save('shared');
    bus.emit('issuance.issued', {
      account: ref,
      tokenId: tokenId(issued.accessToken),
      expiresAt: issued.expiresAt,
      durationMs,
      expiryClamped: issued.expiryClamped,
    });
    await this.approvalKeys.fetchWithNewToken();
    await this.account.publish('token');
    return { result: 'issued', expiresAt: issued.expiresAt };
  }

  /** KIS gives the same token again within six hours of issuing it: nothing was renewed. */
  private async recordSameToken(current: TokenRecord, issued: IssuedToken, attemptAt: number, now: number, durationMs: number): Promise<RenewOutcome> {
    const { bus, config, ref, kept } = this.account;
    const { state } = kept;
    state.lastAttempt = { at: attemptAt, outcome: 'same_token', endedAt: now };
    state.sameTokenStreak += 1;
    state.consecutiveFailures = 0;
    // The broker just stated this token's expiry: what was believed (another replica's, an adopted file's) yields to it.
    const learntExpiry = expiryFromSameToken(current, issued.expiresAt, now, config.renewal);
    if (learntExpiry !== undefined) state.token = { ...current, expiresAt: learntExpiry };
    state.nextRetryAt = nextAttemptAfterSameToken(state.token!, now, state.sameTokenStreak, config.renewal);
    await kept.save('shared');
    if (learntExpiry !== undefined) await this.account.publish('token');
    bus.emit('issuance.same_token', { account: ref, tokenId: tokenId(current.accessToken), durationMs, nextAttemptAt: state.nextRetryAt });
    return { result: 'same_token', nextAttemptAt: state.nextRetryAt };
  }
}

/** A renewal that failed (here, or a fresh token the broker then refused): counted, and the next attempt backed off. */
export async function recordFailure(
  account: AccountContext,
  error: unknown,
  attemptAt: number,
  durationMs: number,
  scope: SaveScope = 'shared',
): Promise<RenewOutcome> {
  const { clock, bus, config, ref, kept } = account;
  const { state } = kept;
  const reason = classifyRenewalError(error);
  const message = describeError(error);
  const now = clock.now();
  if (state.lastAttempt) state.lastAttempt.outcome = reason;
  state.consecutiveFailures += 1;
  state.lastFailure = { at: now, reason, message };
  if (reason === 'auth_rejected') {
    // Permanent until the credentials change: asking again would only risk the app key's restriction.
    state.authBlock = { at: now, credentialsId: credentialsId(config.appKey, config.appSecret), message };
    state.nextRetryAt = null;
  } else {
    const usable = isUsable(tokenStatus(state, now, config.renewal));
    state.nextRetryAt = attemptAt + retryDelayMs(reason, state.consecutiveFailures, config.renewal, usable, account.random);
  }
  await kept.save(scope);
  bus.emit('issuance.failed', { account: ref, reason, message, durationMs, consecutiveFailures: state.consecutiveFailures, nextAttemptAt: state.nextRetryAt });
  if (reason === 'auth_rejected') bus.emit('issuance.blocked', { account: ref, message });
  return { result: 'failed', reason, message, nextAttemptAt: state.nextRetryAt };
}

import { classifyRenewalError, describeError } from '../core/errors';
import type { AccountContext } from './account-context';
import type { SaveScope } from './state-keeper';

// After a failed approval-key request, how long until the next.
const APPROVAL_KEY_RETRY_MS = 60_000;

/**
 * The WebSocket approval key, for accounts with an `approval-key` sink: fetched with each new token, so both
 * files change together, and fetched again after a failure, a minute later.
 */
export class ApprovalKeys {
  private retryAt = 0;

  constructor(private readonly account: AccountContext) {}

  private get needed(): boolean {
    return this.account.config.sinks.some((s) => s.format === 'approval-key');
  }

  /** A new token came: its key is fetched at once, whatever the last failure was. */
  forgetFailure(): void {
    this.retryAt = 0;
  }

  /** When the current token's key is still missing: when to fetch it (undefined when nothing is to fetch). */
  nextAt(): number | undefined {
    const { state } = this.account.kept;
    const token = state.token;
    if (!this.needed || !token || state.invalidated) return undefined;
    const key = state.approvalKey;
    if (key && key.issuedAt >= token.receivedAt) return undefined;
    return this.retryAt;
  }

  /** Right after a new token, under the issuance lease: the key goes to every replica with it. */
  async fetchWithNewToken(): Promise<void> {
    if (this.needed) await this.fetch(false, 'shared');
  }

  /**
   * The current token's key for a gateway client (KIS `Approval`, answered locally): the one already held, or
   * one fetched now (the broker allows one a second). Undefined when the broker gave none.
   */
  async forGateway(): Promise<string | undefined> {
    const { state } = this.account.kept;
    const held = state.approvalKey;
    if (held && state.token && held.issuedAt >= state.token.receivedAt) return held.key;
    await this.fetch(false, 'local');
    return this.account.kept.state.approvalKey?.key;
  }

  /** Fetches a key due at a tick (the last attempt failed): this replica's concern only. */
  fetchDue(): Promise<void> {
    return this.fetch(true, 'local');
  }

  private async fetch(publish: boolean, scope: SaveScope): Promise<void> {
    const { provider, clock, bus, ref, kept } = this.account;
    const issueApprovalKey = provider.issueApprovalKey?.bind(provider);
    if (!issueApprovalKey) return;
    try {
      const key = await this.account.limited(() => issueApprovalKey(this.account.credentials()));
      kept.remember(key);
      kept.state.approvalKey = { key, issuedAt: clock.now() };
      await kept.save(scope);
      bus.emit('approval_key.issued', { account: ref });
      if (publish) await this.account.publish('token');
    } catch (error) {
      this.retryAt = clock.now() + APPROVAL_KEY_RETRY_MS;
      bus.emit('approval_key.failed', { account: ref, reason: classifyRenewalError(error), message: describeError(error) });
    }
  }
}

import { classifyRenewalError, describeError } from '../core/errors';
import type { AccountContext } from './account-context';
import type { SaveScope } from './state-keeper';

// After failed approval-key requests: the broker allows one a second; the wait doubles up to a minute.
const FIRST_RETRY_MS = 1_000;
const LONGEST_RETRY_MS = 60_000;

/**
 * The WebSocket approval key: for accounts with an `approval-key` sink, fetched with each new token, so both files
 * change together; for the gateway's clients, fetched once per token, whatever they ask. After a failure the next
 * attempt waits its turn (1 s, 2 s, 4 s ... a minute, jittered): a failing broker sees one attempt per step,
 * however many clients loop on Approval meanwhile; they are told when to ask again.
 */
export class ApprovalKeys {
  private retryAt = 0;
  private failures = 0;

  constructor(private readonly account: AccountContext) {}

  private get needed(): boolean {
    return this.account.config.sinks.some((s) => s.format === 'approval-key');
  }

  /** A new token came: its key is fetched at once, whatever the last failure was. */
  forgetFailure(): void {
    this.retryAt = 0;
    this.failures = 0;
  }

  /** How long until a key may be fetched again (0: now). */
  retryInMs(): number {
    return Math.max(0, this.retryAt - this.account.clock.now());
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

  /** The current token's key, when it is held. */
  current(): string | undefined {
    const { state } = this.account.kept;
    const held = state.approvalKey;
    return held && state.token && held.issuedAt >= state.token.receivedAt ? held.key : undefined;
  }

  /**
   * The current token's key for a gateway client (KIS `Approval`, answered locally): the one already held, or one
   * fetched now, unless the last attempt failed less than its backoff ago: then how long until the next.
   */
  async forGateway(): Promise<{ key: string } | { retryAfterMs: number }> {
    const held = this.current();
    if (held) return { key: held };
    if (this.retryInMs() > 0) return { retryAfterMs: this.retryInMs() };
    await this.fetch(false, 'local');
    const key = this.current();
    return key ? { key } : { retryAfterMs: Math.max(FIRST_RETRY_MS, this.retryInMs()) };
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
      this.failures = 0;
      kept.state.approvalKey = { key, issuedAt: clock.now() };
      await kept.save(scope);
      bus.emit('approval_key.issued', { account: ref });
      if (publish) await this.account.publish('token');
    } catch (error) {
      this.failures++;
      const step = Math.min(LONGEST_RETRY_MS, FIRST_RETRY_MS * 2 ** (this.failures - 1));
      this.retryAt = clock.now() + Math.max(FIRST_RETRY_MS, Math.round(step * (0.8 + 0.4 * this.account.random())));
      bus.emit('approval_key.failed', { account: ref, reason: classifyRenewalError(error), message: describeError(error) });
    }
  }
}

import { performance } from 'node:perf_hooks';
import { BrokerError } from '../core/errors';
import { tokenId } from '../store/account-state';
import type { AccountContext } from './account-context';
import { recordFailure } from './issuance';

/**
 * Proves the token works by calling the broker's cheap authenticated API with it, every `proof.intervalMs`, and
 * at once for a token not yet proven (new, adopted, taken from a peer).
 */
export class TokenProof {
  constructor(private readonly account: AccountContext) {}

  /** When the next proof is due (undefined when there is nothing to prove). */
  nextAt(): number | undefined {
    const { config, clock, kept } = this.account;
    const { state } = kept;
    const token = state.token;
    if (!config.proof.enabled || !token || state.invalidated) return undefined;
    if (clock.now() >= token.expiresAt) return undefined;
    const last = state.lastProof;
    // A token not yet proven (new, adopted) is proven at once.
    if (!last || (token.provenAt === undefined && last.at < token.receivedAt)) return clock.now();
    return last.at + config.proof.intervalMs;
  }

  /**
   * A token that worked before and is now refused died server-side (maintenance): it is marked invalid and
   * re-issued within the rules. A token fresh from the broker that is refused counts as a failed renewal, so
   * backoff bounds the re-issues.
   */
  async prove(): Promise<void> {
    const { provider, clock, bus, ref, kept } = this.account;
    const token = kept.state.token;
    if (!token) return;
    const started = performance.now();
    // The provider's requests take their budget slot (providers/http.ts), like every call to the broker.
    const outcome = await this.account.limited(() => provider.prove(this.account.credentials(), token.accessToken));
    const durationMs = performance.now() - started;
    const now = clock.now();
    const message = outcome.result === 'ok' ? undefined : outcome.message;
    kept.state.lastProof = { at: now, result: outcome.result, ...(message !== undefined ? { message } : {}) };
    if (outcome.result === 'ok') {
      token.provenAt = now;
    } else if (outcome.result === 'rejected') {
      const freshAndNeverProven = token.source === 'issued' && token.provenAt === undefined;
      kept.state.invalidated = { at: now, brokerCode: outcome.brokerCode, message: outcome.message };
      bus.emit('token.invalidated', { account: ref, tokenId: tokenId(token.accessToken), brokerCode: outcome.brokerCode, message: outcome.message });
      if (freshAndNeverProven) {
        await recordFailure(
          this.account,
          new BrokerError('token_rejected', `the broker refused the token it had just issued (${outcome.brokerCode})`),
          kept.state.lastAttempt?.at ?? now,
          0,
          'local',
        );
      }
    }
    // A proof concerns this replica; the re-issue it may lead to is shared, under the lease.
    await kept.save('local');
    bus.emit('proof.done', { account: ref, result: outcome.result, message, durationMs });
  }
}

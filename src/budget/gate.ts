import { BrokerError } from '../core/errors';
import type { BrokerCallGate } from '../providers/broker-http';
import type { CallBudget } from './call-budget';
import { budgetKeyOf } from './keys';

/**
 * The sidecar's own broker calls (token, revoke, approval key, proof) wait for their slot of the account's budget
 * like a client's call, in turn with the clients (as one more client), and never go without one: a call that finds
 * no slot before its own deadline is not sent.
 */

/** The budget's name for the sidecar's own calls. */
const SIDECAR_CLIENT = '(sidecar)';

interface AccountGateOptions {
  account: { name: string; provider: 'kis' | 'kiwoom'; appKey: string };
  limit: number;
  /** The longest one of the account's calls may be in flight. */
  pendingMs: number;
  /** Every wait's outcome, for the metrics. */
  onSlot?(granted: boolean, waitedMs: number): void;
}

export function accountGate(budget: CallBudget, options: AccountGateOptions): BrokerCallGate {
  return {
    async slot(api, signal) {
      const key = budgetKeyOf(options.account, api);
      for (;;) {
        const slot = await budget.take({ key, limit: options.limit, pendingMs: options.pendingMs, client: SIDECAR_CLIENT, signal });
        options.onSlot?.(slot.granted, slot.waitedMs);
        if (slot.granted) return slot.answered;
        if (signal.aborted || budget.isDestroyed) {
          throw new BrokerError('timeout', 'no slot of the per-second call budget before the call would have timed out; not sent');
        }
      }
    },
  };
}

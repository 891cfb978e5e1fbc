import { createHash } from 'node:crypto';
import type { Provider } from '../config/types';
import { KIWOOM_API_IDS } from '../providers/kiwoom-api-ids';
import type { BudgetKey } from './call-budget';

/**
 * Which budget a call counts against, never made from what a client sends alone. KIS counts per app key
 * (docs/brokers.md#kis-call-limits); Kiwoom per app key and api-id (#kiwoom-call-limits), where the api-id is one
 * of those the broker documents (#kiwoom-api-ids): any other shares one catch-all budget. Refusing unknown ids
 * instead would cut a bot off from an API the broker adds before this table does; sharing one budget keeps them
 * working, slowly, and lets no client mint a budget of its own by inventing ids.
 *
 * Keys are counted per app key, not per account name, so two accounts (or two deployments on one Redis) with the
 * same key share its budget, and two keys never do. The app key itself never appears: a digest does.
 */

/** The catch-all budget of api-ids the broker does not document. */
export const UNKNOWN_API = 'other';

interface BudgetedAccount {
  name: string;
  provider: Provider;
  appKey: string;
}

// Computed once per app key: the gateway asks on every call. Bounded by the configured accounts' keys.
const digests = new Map<string, string>();
/** A short digest that names an app key in Redis without being it (the budget and the real-time lease use it). */
export const digestOf = (appKey: string): string => {
  let digest = digests.get(appKey);
  if (digest === undefined) digests.set(appKey, (digest = createHash('sha256').update(appKey, 'utf8').digest('hex').slice(0, 16)));
  return digest;
};

/** The Kiwoom budget an api-id counts against: its own when documented, else the catch-all. */
const kiwoomBudgetOf = (api: string | undefined): string => (api !== undefined && KIWOOM_API_IDS.has(api) ? api : UNKNOWN_API);

export function budgetKeyOf(account: BudgetedAccount, api: string | undefined): BudgetKey {
  const appKey = digestOf(account.appKey);
  if (account.provider !== 'kiwoom') return { log: appKey, queue: account.name };
  const bucket = kiwoomBudgetOf(api);
  return { log: `${appKey}:${bucket}`, queue: `${account.name}\u0000${bucket}` };
}

/** The account a queue name belongs to (for the metrics' per-account waiting count). */
export const accountOfQueue = (queue: string): string => queue.split('\u0000')[0]!;

/** The longest a call to the account's broker can be in flight (its headers, then its body, each within the timeout, and a lag). */
export const pendingMsOf = (account: { http: { timeoutMs: number } }): number => 2 * account.http.timeoutMs + 1_000;

/**
 * Counts and the request log. Every counter is derived from the endpoint and the outcome of one request, so
 * stats and the log can never disagree.
 */
import type { EndpointId, FaultKind, Outcome, RequestRecord, SimulatorStats } from './types';

// Long demo runs would otherwise grow the log without bound; tests never come near this.
const MAX_LOG_RECORDS = 10_000;

function emptyStats(): SimulatorStats {
  return {
    tokenRequests: 0,
    issued: 0,
    sameToken: 0,
    rateLimited: 0,
    authRejected: 0,
    revokes: 0,
    approvals: 0,
    approvalsRateLimited: 0,
    proofs: 0,
    proofsOk: 0,
    proofsRejected: 0,
    orders: 0,
    ordersOk: 0,
    ordersRejected: 0,
    inquiries: 0,
    inquiriesOk: 0,
    inquiriesRejected: 0,
    quotaExceeded: 0,
    badRequests: 0,
    faults: 0,
  };
}

type CountedOutcome = Exclude<Outcome, `fault:${string}`>;

const OUTCOME_COUNTER: Record<CountedOutcome, keyof SimulatorStats> = {
  issued: 'issued',
  same_token: 'sameToken',
  rate_limited: 'rateLimited',
  auth_rejected: 'authRejected',
  bad_request: 'badRequests',
  revoked: 'revokes',
  approval_issued: 'approvals',
  approval_rate_limited: 'approvalsRateLimited',
  ok: 'proofsOk',
  token_invalid: 'proofsRejected',
  token_expired: 'proofsRejected',
  quota_exceeded: 'quotaExceeded',
};

const ENDPOINT_COUNTER: Partial<Record<EndpointId, keyof SimulatorStats>> = {
  'kis.token': 'tokenRequests',
  'kiwoom.token': 'tokenRequests',
  'kis.price': 'proofs',
  'kiwoom.stkinfo': 'proofs',
  'kis.order': 'orders',
  'kiwoom.order': 'orders',
  'kis.balance': 'inquiries',
};

// At an order or account inquiry endpoint, success and token refusals count as orders or inquiries rather than
// proofs; every other outcome (quota, credentials, bad input) means the same at any business endpoint.
const OWN_OUTCOME_COUNTERS: Partial<Record<keyof SimulatorStats, Partial<Record<CountedOutcome, keyof SimulatorStats>>>> = {
  orders: { ok: 'ordersOk', token_invalid: 'ordersRejected', token_expired: 'ordersRejected' },
  inquiries: { ok: 'inquiriesOk', token_invalid: 'inquiriesRejected', token_expired: 'inquiriesRejected' },
};

export class StatsBook {
  private totals = emptyStats();
  private byKey = new Map<string, SimulatorStats>();
  private log: RequestRecord[] = [];

  record(entry: RequestRecord): void {
    this.log.push(entry);
    if (this.log.length > MAX_LOG_RECORDS) this.log.splice(0, this.log.length - MAX_LOG_RECORDS);
    const targets = [this.totals];
    if (entry.appKey !== undefined) targets.push(this.statsFor(entry.appKey));
    for (const stats of targets) bump(stats, entry.endpoint, entry.outcome, entry.fault);
  }

  stats(appKey?: string): SimulatorStats {
    const source = appKey === undefined ? this.totals : this.byKey.get(appKey);
    return { ...(source ?? emptyStats()) };
  }

  requests(): RequestRecord[] {
    return this.log.map((r) => ({ ...r }));
  }

  clear(): void {
    this.totals = emptyStats();
    this.byKey = new Map();
    this.log = [];
  }

  private statsFor(appKey: string): SimulatorStats {
    let stats = this.byKey.get(appKey);
    if (!stats) {
      stats = emptyStats();
      this.byKey.set(appKey, stats);
    }
    return stats;
  }
}

function bump(stats: SimulatorStats, endpoint: EndpointId, outcome: Outcome, fault: FaultKind | undefined): void {
  const endpointCounter = ENDPOINT_COUNTER[endpoint];
  if (endpointCounter) stats[endpointCounter]++;
  if (fault) stats.faults++;
  if (!outcome.startsWith('fault:')) stats[outcomeCounter(endpointCounter, outcome as CountedOutcome)]++;
}

function outcomeCounter(endpointCounter: keyof SimulatorStats | undefined, outcome: CountedOutcome): keyof SimulatorStats {
  const own = endpointCounter === undefined ? undefined : OWN_OUTCOME_COUNTERS[endpointCounter]?.[outcome];
  return own ?? OUTCOME_COUNTER[outcome];
}

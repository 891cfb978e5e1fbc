/**
 * The simulator's public vocabulary. Kept apart from the logic so the control API, the tests and the CLI can
 * share one definition of a fault, a stat and a request record.
 */
import type { Clock } from '../core/clock';
import type { Env, Provider } from '../core/brokers';
import type { RealtimeOptions } from './realtime/types';

export type SimulatedProvider = Provider;
export type SimulatedEnv = Env;

export interface SimulatorCredential {
  provider: SimulatedProvider;
  appKey: string;
  appSecret: string;
  /** Decides the KIS per-second call quota (`kisCallsPerSecond`) and which order tr_ids are accepted. Default 'real'. */
  env?: SimulatedEnv;
}

export interface SimulatorOptions {
  clock: Clock;
  credentials: SimulatorCredential[];
  /** Minimum gap between two successful token answers for one app key (KIS EGW00133; same rule for Kiwoom). */
  spacingMs?: number;
  /** KIS answers with the same token (same expiry) when asked again within this long of its issuance. */
  sameTokenWindowMs?: number;
  tokenLifetimeMs?: number;
  /** Approval keys: at most one per this many ms per app key. */
  approvalSpacingMs?: number;
  /** HTTP status of KIS EGW00121/EGW00123 answers, UNCONFIRMED in the docs; clients must key on msg_cd. */
  tokenErrorStatus?: 200 | 500;
  /** Models the UNCONFIRMED report that re-issuing within 6 h of a maintenance returned the same dead token. */
  sameDeadTokenAfterMaintenance?: boolean;
  /** Kiwoom's reuse rule is UNCONFIRMED; by default every Kiwoom issuance is a fresh token. */
  kiwoomSameToken?: boolean;
  /**
   * KIS REST calls per second per app key (price and order calls share it), by the credential's env. Defaults
   * real 18, mock 1 (the portal's notice of 2026-04-20); positive integers, so a test can lower them.
   */
  kisCallsPerSecond?: { real?: number; mock?: number };
  /** Kiwoom business calls: refill rate, per second, of the bucket per (app key, api-id). Default 1 (third-party measure). */
  kiwoomCallsPerSecond?: number;
  /** Kiwoom business calls: bucket capacity per (app key, api-id), a positive integer. Default 2 (third-party measure). */
  kiwoomCallBurst?: number;
  /** The brokers' WebSockets: frame rate, keep-alive, limits (src/simulator/realtime/types.ts). */
  realtime?: RealtimeOptions;
}

export const ENDPOINT_IDS = [
  'kis.token',
  'kis.revoke',
  'kis.approval',
  'kis.price',
  'kis.order',
  'kis.balance',
  'kiwoom.token',
  'kiwoom.revoke',
  'kiwoom.stkinfo',
  'kiwoom.order',
] as const;
export type EndpointId = (typeof ENDPOINT_IDS)[number];

export const FAULT_KINDS = ['status', 'delay', 'hang', 'garbage', 'truncated', 'drop', 'redirect', 'body'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export type FaultSpec = { endpoint: EndpointId; count?: number } & (
  | { kind: 'status'; status: number; body?: unknown }
  | { kind: 'delay'; delayMs: number }
  | { kind: 'hang' }
  | { kind: 'garbage' }
  | { kind: 'truncated' }
  | { kind: 'drop' }
  | { kind: 'redirect'; location?: string }
  | { kind: 'body'; body: unknown }
);

/**
 * How the simulator answered one request; each outcome feeds exactly one counter in SimulatorStats ('ok' and the
 * token refusals count as orders at an order endpoint, as proofs elsewhere).
 */
export type Outcome =
  | 'issued'
  | 'same_token'
  | 'rate_limited'
  | 'auth_rejected'
  | 'bad_request'
  | 'revoked'
  | 'approval_issued'
  | 'approval_rate_limited'
  | 'ok'
  | 'token_invalid'
  | 'token_expired'
  | 'quota_exceeded'
  | `fault:${Exclude<FaultKind, 'delay'>}`;

export interface RequestRecord {
  /** Clock time (epoch ms) at which the request arrived. */
  at: number;
  endpoint: EndpointId;
  /** The app key the request claimed (body or header), whether or not the simulator knows it. */
  appKey?: string;
  /** HTTP status sent; 0 when no answer was sent (hang, drop). */
  status: number;
  outcome: Outcome;
  /** Set when a fault was applied; a 'delay' fault keeps the normal outcome. */
  fault?: FaultKind;
}

export interface SimulatorStats {
  /** Every request that reached a token endpoint (KIS tokenP, Kiwoom token), faulted or rejected ones included. */
  tokenRequests: number;
  /** New tokens minted. */
  issued: number;
  /** Answers that returned an existing token (KIS 6-hour rule). */
  sameToken: number;
  /** Token requests refused for spacing (EGW00133, Kiwoom 1700). */
  rateLimited: number;
  /** Requests refused for a bad app key or secret, at any endpoint. */
  authRejected: number;
  /** Successful revoke answers. */
  revokes: number;
  /** Approval keys issued. */
  approvals: number;
  approvalsRateLimited: number;
  /** Every request that reached a validation endpoint (KIS inquire-price, Kiwoom ka10001). */
  proofs: number;
  proofsOk: number;
  /** Validation calls refused because of the token (EGW00121, EGW00123, Kiwoom 8005). */
  proofsRejected: number;
  /**
   * Every request that reached an order endpoint (KIS order-cash, Kiwoom kt10000/kt10001). Orders have counters
   * of their own rather than sharing the proof counters, so a test can tell a refused order from a refused proof.
   */
  orders: number;
  /** Orders accepted (KIS APBK0013, Kiwoom return_code 0). */
  ordersOk: number;
  /** Orders refused because of the token (EGW00121, EGW00123, Kiwoom 8005). */
  ordersRejected: number;
  /** Every request that reached an account inquiry endpoint (KIS inquire-balance). */
  inquiries: number;
  inquiriesOk: number;
  /** Inquiries refused because of the token (EGW00121, EGW00123). */
  inquiriesRejected: number;
  /** Business calls over the per-second limit: KIS EGW00201 (price and order), Kiwoom HTTP 429 [1700] (ka10001, orders). */
  quotaExceeded: number;
  /** Malformed bodies, missing fields, wrong headers. */
  badRequests: number;
  /** Requests answered by an injected fault (delays included). */
  faults: number;
}

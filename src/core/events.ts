import { EventEmitter } from 'node:events';
import type { Env, Provider } from './brokers';
import type {
  RealtimeClientCloseReason,
  RealtimeConnectReason,
  RealtimeEndReason,
  RealtimeLeaseChange,
  RealtimeRefusalReason,
  RealtimeRelaySnapshot,
  RealtimeSnapshot,
  RealtimeUpstreamState,
} from './realtime-vocabulary';
import type {
  AdminAuthFailureReason,
  ConnectionDropReason,
  ProofResult,
  RenewalFailureReason,
  SinkRepairReason,
  SinkWriteFailureReason,
  StateErrorReason,
} from './errors';

/** The labels every per-account metric and message carries. */
export interface AccountRef {
  name: string;
  provider: Provider;
  env: Env;
}

export type IssueWhy = 'no_token' | 'expired' | 'renewal_due' | 'schedule' | 'invalidated' | 'forced' | 'unproven';

/**
 * What happens in the sidecar, as typed events. Lifecycle, sinks and store only emit; metrics counters,
 * structured logs and Slack alerts subscribe. So each fact is logged once, counted once, and alerted on from
 * one place, and no component knows about the others' sinks.
 */
export interface SidecarEvents {
  /** An account's durable state is loaded; `issuances` is its count of new tokens so far. */
  'state.loaded': { account: AccountRef; issuances: number };
  'issuance.attempt': { account: AccountRef; why: IssueWhy };
  'issuance.issued': { account: AccountRef; tokenId: string; expiresAt: number; durationMs: number; expiryClamped: boolean };
  'issuance.same_token': { account: AccountRef; tokenId: string; durationMs: number; nextAttemptAt: number };
  'issuance.failed': {
    account: AccountRef;
    reason: RenewalFailureReason;
    message: string;
    durationMs: number;
    consecutiveFailures: number;
    nextAttemptAt: number | null;
  };
  'issuance.blocked': { account: AccountRef; message: string };
  'token.adopted': { account: AccountRef; from: string; tokenId: string; expiresAt: number };
  /** A token another replica issued, taken up from the shared store. */
  'token.shared': { account: AccountRef; tokenId: string; expiresAt: number };
  /** This replica's state was offered to a shared store that had none, or an older one. */
  'state.offered': { account: AccountRef; revision: number };
  'store.health': { up: boolean; message: string | null };
  'config.reloaded': { added: string[]; removed: string[]; changed: string[]; unchanged: number; needsRestart: string[] };
  'config.reload_failed': { problems: string[] };
  'token.invalidated': { account: AccountRef; tokenId: string; brokerCode: string; message: string };
  'token.revoked': { account: AccountRef; tokenId: string };
  'approval_key.issued': { account: AccountRef };
  'approval_key.failed': { account: AccountRef; reason: RenewalFailureReason; message: string };
  'proof.done': { account: AccountRef; result: ProofResult; message: string | undefined; durationMs: number };
  'probe.done': { account: AccountRef; ok: boolean; message: string; durationMs: number };
  'state.error': { account: AccountRef; reason: StateErrorReason; message: string };
  'sink.written': { account: AccountRef; sink: string; path: string; cause: 'token' | 'start' | 'rollover' };
  'sink.repaired': { account: AccountRef; sink: string; path: string; reason: SinkRepairReason };
  'sink.write_failed': {
    account: AccountRef;
    sink: string;
    path: string;
    reason: SinkWriteFailureReason;
    message: string;
    consecutiveFailures: number;
  };
  'sink.recovered': { account: AccountRef; sink: string; path: string };
  'sink.cleaned': { account: AccountRef; sink: string; files: string[] };
  'sink.notify_failed': { account: AccountRef; sink: string; message: string };
  'alert.notified': { key: string; kind: string; phase: 'firing' | 'reminder' | 'resolved'; severity: string; account: AccountRef | undefined };
  'slack.delivery': { result: 'sent' | 'retried' | 'failed' | 'dropped'; detail: string };
  'alerts.state_error': { message: string };
  /** A request to the admin endpoint without the right bearer token; never carries what was presented. */
  'http.admin_auth_failed': { reason: AdminAuthFailureReason; remoteAddress: string | undefined };
  'http.connection_dropped': { reason: ConnectionDropReason; remoteAddress: string | undefined };
  /** A client's call through the gateway, after any retry; `api` and `code` already folded to their label sets. */
  'gateway.call': { account: AccountRef; client: string; api: string; result: GatewayCallResult; code: string; durationMs: number };
  /** A call (a client's or the sidecar's own) waited for, and got or not, its slot of the per-second budget. */
  'budget.slot': { account: AccountRef; granted: boolean; waitedMs: number };
  /** The budget's count moved: to Redis, away from it (each replica then keeps to its share), back. */
  'budget.mode': { mode: BudgetMode; replicas: number; message: string };
  'gateway.retry': { account: AccountRef; reason: GatewayRetryReason };
  'gateway.local_answer': { account: AccountRef; client: string; endpoint: 'token' | 'revoke' | 'approval' };
  /** Refused before a client and an account it may use were known; never carries what was presented. */
  'gateway.refused': { reason: GatewayRefusalReason; remoteAddress: string | undefined };
  /** The real-time endpoint's upstream session changed state; `reason` says why one ended. */
  'realtime.session': { account: AccountRef; state: RealtimeUpstreamState; reason: RealtimeEndReason | null; message: string | null };
  /** An upstream session is being opened, and why (the first, or the end of the one before). */
  'realtime.connect': { account: AccountRef; reason: RealtimeConnectReason };
  /** A client of the real-time endpoint connected or was closed (`left`: it closed itself). */
  'realtime.client': {
    account: AccountRef | null;
    client: string | null;
    change: 'opened' | 'closed';
    reason: RealtimeClientCloseReason | null;
    /** Bytes it still had queued when the endpoint closed it. */
    queuedBytes: number;
  };
  /** A client's request refused (never carries what was presented); `code` is the broker's code it was answered with. */
  'realtime.refused': { account: AccountRef | null; client: string | null; reason: RealtimeRefusalReason; code: string };
  /** A session's gauges and its frame counts since the last snapshot: once a second while anything changes. */
  'realtime.snapshot': RealtimeSnapshot;
  /** With replicas: this replica's hold on the account's one session changed (`detail` says more, never a secret). */
  'realtime.lease': { account: AccountRef; change: RealtimeLeaseChange; detail: string | null };
  /** With replicas: this replica's part in the deployment's session, once a second. */
  'realtime.relay': RealtimeRelaySnapshot;
}

/** Where the call budget is counted: in this process alone (no shared store), in Redis, alone while Redis is out of reach, or back in Redis while the replicas return. */
export const BUDGET_MODES = ['local', 'shared', 'fallback', 'rejoining'] as const;
export type BudgetMode = (typeof BUDGET_MODES)[number];

export const GATEWAY_CALL_RESULTS = ['ok', 'broker_error', 'token_fault', 'rate_limited', 'budget_exhausted', 'upstream_error'] as const;
export type GatewayCallResult = (typeof GATEWAY_CALL_RESULTS)[number];
export const GATEWAY_RETRY_REASONS = ['token_fault', 'rate_limited'] as const;
export type GatewayRetryReason = (typeof GATEWAY_RETRY_REASONS)[number];
/** Refused before a client was known and allowed: bad credentials, an account it may not use, no such account, a request no broker takes (a malformed path, a token path the broker does not have), a body too large or too slow. */
export const GATEWAY_REFUSAL_REASONS = [
  'unauthenticated',
  'forbidden_account',
  'unknown_account',
  'bad_request',
  'not_found',
  'too_large',
  'too_slow',
] as const;
export type GatewayRefusalReason = (typeof GATEWAY_REFUSAL_REASONS)[number];

type SidecarEventName = keyof SidecarEvents;
type Listener<K extends SidecarEventName> = (payload: SidecarEvents[K]) => void;

export class EventBus {
  private readonly emitter = new EventEmitter();

  constructor(private readonly onListenerError: (event: string, error: unknown) => void = () => undefined) {
    this.emitter.setMaxListeners(50);
  }

  emit<K extends SidecarEventName>(event: K, payload: SidecarEvents[K]): void {
    this.emitter.emit(event, payload);
  }

  /** How many listeners are attached, in all: the soak test checks it does not grow. */
  listenerTotal(): number {
    return this.emitter.eventNames().reduce((n, name) => n + this.emitter.listenerCount(name), 0);
  }

  /** A throwing listener is reported and skipped: a broken subscriber must not break a renewal. */
  on<K extends SidecarEventName>(event: K, listener: Listener<K>): () => void {
    const guarded = (payload: SidecarEvents[K]): void => {
      try {
        listener(payload);
      } catch (error) {
        this.onListenerError(event, error);
      }
    };
    this.emitter.on(event, guarded);
    return () => this.emitter.off(event, guarded);
  }
}

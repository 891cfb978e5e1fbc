import { collectDefaultMetrics, type Registry } from 'prom-client';
import {
  ADMIN_AUTH_FAILURE_REASONS,
  CONNECTION_DROP_REASONS,
  PROOF_RESULTS,
  RENEWAL_FAILURE_REASONS,
  SINK_REPAIR_REASONS,
  SINK_WRITE_FAILURE_REASONS,
  STATE_ERROR_REASONS,
} from '../core/errors';
import { TOKEN_STATUSES } from '../lifecycle/policy';
import { CounterFamily, GaugeFamily, HistogramFamily, type OnFamilyChange } from './families';

/**
 * Every metric the sidecar exports: names, help, labels and the closed sets of label values, in this one
 * file. docs/metrics.md documents the same list, and a test checks the two agree, as do the dashboards and
 * alert rules that query them.
 */

const PREFIX = 'broker_token_';
const ACCOUNT_LABELS = ['account', 'provider', 'env'] as const;
const SINK_LABELS = [...ACCOUNT_LABELS, 'sink', 'format'] as const;

export {
  ADMIN_AUTH_FAILURE_REASONS,
  CONNECTION_DROP_REASONS,
  PROOF_RESULTS,
  RENEWAL_FAILURE_REASONS,
  SINK_REPAIR_REASONS,
  SINK_WRITE_FAILURE_REASONS,
  STATE_ERROR_REASONS,
  TOKEN_STATUSES,
};

// Token requests take tens of milliseconds to seconds; the top buckets catch timeouts (15 s by default).
const DURATION_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30];
// Gateway calls: a broker answers in tens of milliseconds; the budget's wait is bounded by `gateway.maxWait` (2 s).
const GATEWAY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10];

/** Every family, registered in `registry`; each change of a value is reported to `onChange` (see families.ts). */
export function createCatalogue(registry: Registry, onChange: OnFamilyChange) {
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new GaugeFamily<L>({ name: PREFIX + name, help, labelNames, registry, onChange });
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new CounterFamily<L>({ name: PREFIX + name, help, labelNames, registry, onChange });
  const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new HistogramFamily<L>({ name: PREFIX + name, help, labelNames, buckets: DURATION_BUCKETS, registry, onChange });

  return {
    // Points in time: alerts compute `- time()` themselves, so a stale scrape never shows a wrong "time left".
    expiry: gauge('expiry_timestamp_seconds', "When the current token expires (Unix time; from the broker's KST expiry).", ACCOUNT_LABELS),
    issued: gauge('issued_timestamp_seconds', 'When the broker issued the current token (Unix time).', ACCOUNT_LABELS),
    lastRenewal: gauge('last_renewal_timestamp_seconds', 'When the last new token was received (Unix time).', ACCOUNT_LABELS),
    nextRenewal: gauge('next_renewal_timestamp_seconds', 'When the next issuance attempt is planned (Unix time).', ACCOUNT_LABELS),
    lastProof: gauge(
      'last_proof_timestamp_seconds',
      "When the token was last checked against the broker's API, whatever the result (Unix time).",
      ACCOUNT_LABELS,
    ),
    lastProofSuccess: gauge('last_proof_success_timestamp_seconds', 'When the current token last passed a proof (Unix time).', ACCOUNT_LABELS),

    // Current state.
    state: gauge('state', 'Token state as a state set: 1 for the current state, 0 for the others.', [...ACCOUNT_LABELS, 'state']),
    usable: gauge('usable', '1 when the current token can be used now (valid or expiring), else 0.', ACCOUNT_LABELS),
    ready: gauge('ready', '1 when every sink of the account holds the current token, complete and private.', ACCOUNT_LABELS),
    consecutiveFailures: gauge('consecutive_failures', 'Issuance attempts that failed in a row (0 after a success).', ACCOUNT_LABELS),
    credentialsRejected: gauge(
      'credentials_rejected',
      "1 while the broker's rejection of the app key or secret holds further requests back until the credentials change.",
      ACCOUNT_LABELS,
    ),

    // Counters.
    renewalAttempts: counter('renewal_attempts_total', 'Issuance requests sent to the broker.', ACCOUNT_LABELS),
    renewalFailures: counter('renewal_failures_total', 'Issuance attempts that failed, by reason.', [...ACCOUNT_LABELS, 'reason']),
    issuances: counter(
      'issuances_total',
      "New tokens received from the broker: what the broker's once-a-day rule and the KakaoTalk notices count.",
      ACCOUNT_LABELS,
    ),
    sameToken: counter('same_token_total', 'Issuance requests the broker answered with the token it had already given (no renewal).', ACCOUNT_LABELS),
    rateLimited: counter('rate_limited_total', 'Issuance requests the broker refused as too frequent (KIS EGW00133).', ACCOUNT_LABELS),
    proofs: counter('proofs_total', "Token proofs against the broker's API, by result.", [...ACCOUNT_LABELS, 'result']),
    invalidations: counter('invalidations_total', 'Tokens the broker refused although the state called them valid (died server-side).', ACCOUNT_LABELS),
    adoptions: counter('adoptions_total', 'Still-valid tokens taken over from existing sink files instead of issuing.', ACCOUNT_LABELS),
    expiryClamped: counter(
      'expiry_clamped_total',
      'Tokens whose expiry from the broker lay beyond the longest plausible lifetime and was cut down to it.',
      ACCOUNT_LABELS,
    ),
    stateErrors: counter('state_errors_total', "Problems with the sidecar's own state file, by reason.", [...ACCOUNT_LABELS, 'reason']),
    approvalKeys: counter('approval_key_requests_total', 'WebSocket approval key requests, by result.', [...ACCOUNT_LABELS, 'result']),

    // Durations.
    renewalDuration: histogram('renewal_duration_seconds', 'Time taken by issuance requests, whatever their outcome.', ACCOUNT_LABELS),
    proofDuration: histogram('proof_duration_seconds', 'Time taken by token proofs.', ACCOUNT_LABELS),

    // Sink files.
    sinkPresent: gauge('sink_file_present', '1 when every file of the sink exists (a kis-auth sink keeps one per date its readers may compute).', SINK_LABELS),
    sinkHealthy: gauge('sink_file_healthy', '1 when every file of the sink holds exactly the current token with the configured mode and owner.', SINK_LABELS),
    sinkModeOk: gauge(
      'sink_file_mode_ok',
      '1 when every file of the sink has the configured mode (0600 unless configured), 0 when one does not, whatever the content.',
      SINK_LABELS,
    ),
    sinkStuck: gauge(
      'sink_stuck',
      '1 while an operation on the sink (a read, a write) has run far longer than it ever should: the file system stopped answering. /healthz fails too.',
      SINK_LABELS,
    ),
    sinkLastWrite: gauge('sink_last_write_timestamp_seconds', 'When the sink file was last written (Unix time).', SINK_LABELS),
    sinkWrites: counter(
      'sink_writes_total',
      "Sink file writes that are not repairs: a new token, start-up, a new day's kis_auth.py file (written ahead of a reader zone's midnight).",
      [...SINK_LABELS, 'cause'],
    ),
    sinkRepairs: counter('sink_repairs_total', 'Sink files rewritten from the state because they were damaged, by what was wrong.', [...SINK_LABELS, 'reason']),
    sinkWriteFailures: counter('sink_write_failures_total', 'Failed sink file writes, by reason.', [...SINK_LABELS, 'reason']),
    sinkFilesCleaned: counter('sink_files_cleaned_total', 'Old daily token files removed (kis-auth sinks, past keepDays).', SINK_LABELS),
    sinkNotifyFailures: counter('sink_notify_failures_total', 'Failed notifications to applications after a sink changed.', SINK_LABELS),

    // Optional custom probe of a local application.
    probeUp: gauge('probe_up', "1 when the last custom probe of the account's application succeeded.", ACCOUNT_LABELS),
    probeDuration: histogram('probe_duration_seconds', 'Time taken by custom probes.', ACCOUNT_LABELS),

    // Slack notifications sent by the sidecar itself.
    slackNotifications: counter(
      'slack_notifications_total',
      'Slack deliveries by result: sent, retried (an attempt failed, another follows), failed (given up), dropped (queue full).',
      ['result'],
    ),
    slackQueueLength: gauge('slack_queue_length', 'Slack messages waiting to be delivered.', []),

    // Where the states live: 1 while the store (the state directory, or Redis shared by replicas) is reachable.
    storeUp: gauge(
      'store_up',
      '1 while the state store is reachable (always 1 for files); a replica without its shared store serves its local token and issues nothing.',
      ['store'],
    ),

    // Configuration reloads (SIGHUP or a change of the file), as Prometheus itself reports its own.
    configReloads: counter('config_reloads_total', 'Configuration reloads by result: applied, or failed (the running configuration is kept).', ['result']),
    configLastReloadSuccessful: gauge(
      'config_last_reload_successful',
      '1 when the last configuration reload was applied (or none was tried), 0 when it failed.',
      [],
    ),

    // The HTTP surface: who knocks on the admin endpoint without the token, and connections closed to protect descriptors.
    adminAuthFailures: counter(
      'admin_auth_failures_total',
      'Admin requests refused for their bearer token, by reason: missing (none, or another scheme) or wrong.',
      ['reason'],
    ),
    httpConnectionsDropped: counter(
      'http_connections_dropped_total',
      'HTTP connections closed before an answer to keep descriptors for the token files, by reason: silent (nothing sent in time), evicted (idle, its place needed), refused (the limit reached, every connection busy).',
      ['reason'],
    ),

    // The gateway (off unless configured): calls by client and API, the shared per-second budget, local answers.
    gatewayCalls: counter(
      'gateway_calls_total',
      "Client calls through the gateway, after any retry, by result and the broker's code (api and code from closed lists, else `other`).",
      [...ACCOUNT_LABELS, 'client', 'api', 'result', 'code'],
    ),
    gatewayCallDuration: new HistogramFamily({
      name: `${PREFIX}gateway_call_duration_seconds`,
      help: "Client calls through the gateway, from arrival to the answer's headers, the wait for the budget included.",
      labelNames: [...ACCOUNT_LABELS, 'result'],
      buckets: GATEWAY_BUCKETS,
      registry,
      onChange,
    }),
    gatewayQueueWait: new HistogramFamily({
      name: `${PREFIX}gateway_queue_wait_seconds`,
      help: "How long a call waited for its slot of the account's per-second budget (granted or not).",
      labelNames: ACCOUNT_LABELS,
      buckets: GATEWAY_BUCKETS,
      registry,
      onChange,
    }),
    gatewayBudgetLimit: gauge(
      'gateway_budget_limit',
      'Calls per second the gateway allows, per app key (scope app_key, KIS) or per app key and api-id (scope api_id, Kiwoom).',
      [...ACCOUNT_LABELS, 'scope'],
    ),
    gatewayBudgetGranted: counter(
      'gateway_budget_granted_total',
      'Budget slots granted: calls sent to the broker, retries and proofs included.',
      ACCOUNT_LABELS,
    ),
    gatewayQueueLength: gauge('gateway_queue_length', 'Calls waiting for a budget slot now.', ACCOUNT_LABELS),
    gatewayBudgetMode: gauge(
      'gateway_budget_mode',
      'Where the per-second call budget is counted (1 for the current mode): local (one process), shared (Redis, every replica), fallback (Redis out of reach: this replica keeps to its share), rejoining (back in Redis, still keeping to its share while the others return).',
      ['mode'],
    ),
    gatewayBudgetFallbacks: counter(
      'gateway_budget_fallbacks_total',
      'Times this replica lost the shared budget in Redis and fell back to counting its share alone.',
      [],
    ),
    gatewayRetries: counter(
      'gateway_retries_total',
      'Calls sent a second time: token_fault (the token was found dead and replaced), rate_limited (EGW00201: a program outside the gateway spends the budget).',
      [...ACCOUNT_LABELS, 'reason'],
    ),
    gatewayLocalAnswers: counter(
      'gateway_local_answers_total',
      'Token endpoint requests (token, revoke, approval) answered by the gateway, never sent to the broker.',
      [...ACCOUNT_LABELS, 'client', 'endpoint'],
    ),
    gatewayRefused: counter('gateway_refused_total', 'Requests the gateway refused before a client and an account it may use were known, by reason.', [
      'reason',
    ]),

    // The real-time endpoint (off unless configured): one WebSocket session per app key, shared by the gateway's clients.
    realtimeUpstreamState: gauge(
      'realtime_upstream_state',
      "The account's WebSocket session at the broker as a state set (1 for the current state): idle (none needed), connecting, open, down (waiting to reconnect).",
      [...ACCOUNT_LABELS, 'state'],
    ),
    realtimeUpstreamConnects: counter(
      'realtime_upstream_connects_total',
      'WebSocket sessions opened at the broker, by why: first (nothing failed before it), or how the one before ended (closed, dropped, stalled, key_in_use, approval_refused, replaced, login_failed, connect_failed, no_credential).',
      [...ACCOUNT_LABELS, 'reason'],
    ),
    realtimeUpstreamLastFrame: gauge(
      'realtime_upstream_last_frame_timestamp_seconds',
      'When the last frame of any kind (data, keep-alive, pong) came from the broker (Unix time); 0 before the first.',
      ACCOUNT_LABELS,
    ),
    realtimeRegistrations: gauge(
      'realtime_registrations',
      "Registrations the session holds or is getting (the union of the clients', each counted once), against realtime_registration_limit.",
      ACCOUNT_LABELS,
    ),
    realtimeRegistrationLimit: gauge(
      'realtime_registration_limit',
      "Registrations one session may hold: KIS's 41 (all products together); Kiwoom, the endpoint's own bound of 100.",
      ACCOUNT_LABELS,
    ),
    realtimeClients: gauge('realtime_clients', "Client connections on the account's session now.", ACCOUNT_LABELS),
    realtimeFramesReceived: counter('realtime_frames_received_total', 'Data frames received from the broker.', ACCOUNT_LABELS),
    realtimeFramesSent: counter('realtime_frames_sent_total', 'Data frames handed to clients (one per client a frame goes to).', ACCOUNT_LABELS),
    realtimeClientQueueBytes: gauge(
      'realtime_client_queue_bytes',
      "Bytes waiting in the sidecar for the client's connection that is furthest behind (past realtime.client.maxQueueBytes it is closed).",
      [...ACCOUNT_LABELS, 'client'],
    ),
    realtimeClientCloses: counter(
      'realtime_client_closes_total',
      'Client connections ended, by reason: left (the client closed), slow (past its queue bound), silent, refused (never a good credential), evicted, shutdown.',
      ['reason'],
    ),
    realtimeRefusals: counter(
      'realtime_refusals_total',
      "Client requests refused in the broker's words: unauthenticated, forbidden, budget_full (OPSP0008 answered locally), fills_not_allowed, malformed, broker (the broker's own refusal relayed), full (no place for the connection).",
      ['reason'],
    ),
    // With replicas (a Redis store): each replica's part in the deployment's one KIS session.
    realtimeLeaseHolder: gauge(
      'realtime_lease_holder',
      "1 on the replica that holds the lease on the app key's one session (and so the session at the broker), 0 on the others.",
      ACCOUNT_LABELS,
    ),
    realtimeLeaseAcquired: gauge(
      'realtime_lease_acquired_timestamp_seconds',
      'When this replica took the lease (Unix time); 0 while it does not hold it. Lease age: time() - this.',
      ACCOUNT_LABELS,
    ),
    realtimeLeaseChanges: counter(
      'realtime_lease_changes_total',
      "This replica's hold on the session: acquired, retaken (after Redis lost it), lost, released; Redis outage and reachable.",
      [...ACCOUNT_LABELS, 'change'],
    ),
    realtimeRelayRedisUp: gauge('realtime_relay_redis_up', 'Whether this replica reaches Redis for the session relay (1) or not (0).', ACCOUNT_LABELS),
    realtimeRelayFrames: counter(
      'realtime_relay_frames_total',
      "Frames through Redis: published (by the holder, once per frame), received (by a replica from another's session).",
      [...ACCOUNT_LABELS, 'direction'],
    ),
    realtimeRelayLag: new HistogramFamily({
      name: `${PREFIX}realtime_relay_lag_seconds`,
      help: "A relayed frame's time from the holder's publish to its arrival through Redis at this replica, the holder included (a sample of at most 256 a second).",
      labelNames: ACCOUNT_LABELS,
      buckets: GATEWAY_BUCKETS,
      registry,
      onChange,
    }),
    realtimeRelayWants: gauge('realtime_relay_wants', "Distinct registrations this replica's clients want, as published to the holder.", ACCOUNT_LABELS),
    realtimeRelayWantsPublished: counter(
      'realtime_relay_wants_published_total',
      'Times this replica published its wants to Redis (each second as its heartbeat, and at each change).',
      ACCOUNT_LABELS,
    ),

    buildInfo: gauge('build_info', 'Build information; always 1.', ['version', 'node_version']),
  };
}

export type Catalogue = ReturnType<typeof createCatalogue>;

export const SINK_WRITE_CAUSES = ['token', 'start', 'rollover'] as const;
export const APPROVAL_KEY_RESULTS = ['ok', 'error'] as const;
export const SLACK_RESULTS = ['sent', 'retried', 'failed', 'dropped'] as const;

/** prom-client's process metrics: memory, CPU, file descriptors, event loop lag. */
export function registerProcessMetrics(registry: Registry): void {
  // Unprefixed (process_*, nodejs_*), as every Node.js dashboard expects them.
  collectDefaultMetrics({ register: registry });
  // prom-client names three gauges *_total, which `promtool check metrics` rejects: they are left out.
  for (const metric of registry.getMetricsAsArray()) {
    if (metric.name.endsWith('_total') && String(metric.type) !== 'counter') registry.removeSingleMetric(metric.name);
  }
}

/** The first system's names, for its existing dashboards: off unless `metrics.compat` asks for them. */
export function createCompatMetrics(registry: Registry, onChange: OnFamilyChange) {
  return {
    ageHours: new GaugeFamily({
      name: 'kis_token_age_hours',
      help: 'Hours since the current token was issued (compatibility name of the first system).',
      labelNames: ['account'],
      registry,
      onChange,
    }),
    renewals: new CounterFamily({
      name: 'kis_token_renewals_total',
      help: 'New tokens received (compatibility name of the first system; same as broker_token_issuances_total).',
      labelNames: ['account'],
      registry,
      onChange,
    }),
  };
}

import { Registry } from 'prom-client';
import type { SinkConfig } from '../config/types';
import { BUDGET_MODES, GATEWAY_REFUSAL_REASONS, GATEWAY_RETRY_REASONS, type AccountRef, type BudgetMode, type EventBus } from '../core/events';
import {
  REALTIME_CLIENT_CLOSE_REASONS,
  REALTIME_CONNECT_REASONS,
  REALTIME_LEASE_CHANGES,
  REALTIME_REFUSAL_REASONS,
  REALTIME_RELAY_DIRECTIONS,
  REALTIME_UPSTREAM_STATES,
} from '../core/realtime-vocabulary';
import type { AccountView } from '../lifecycle/views';
import type { StoreHealth } from '../store/state-store';
import {
  ADMIN_AUTH_FAILURE_REASONS,
  APPROVAL_KEY_RESULTS,
  CONNECTION_DROP_REASONS,
  PROOF_RESULTS,
  RENEWAL_FAILURE_REASONS,
  SINK_REPAIR_REASONS,
  SINK_WRITE_CAUSES,
  SLACK_RESULTS,
  SINK_WRITE_FAILURE_REASONS,
  STATE_ERROR_REASONS,
  TOKEN_STATUSES,
  createCatalogue,
  createCompatMetrics,
  registerProcessMetrics,
  type Catalogue,
} from './catalogue';
import { CounterFamily, type AnyFamily, type GaugeFamily, type Labels } from './families';
import { ExpositionCache } from './exposition';

interface MetricsOptions {
  version: string;
  /** Also export the first system's kis_token_* names. */
  compat: boolean;
  processMetrics?: boolean;
  slackQueueLength?: () => number;
  store?: { type: string; health: () => StoreHealth };
  /** The per-second call budget, read at each scrape: where it is counted, and each account's limit and waiting calls. */
  budget?: () => { mode: BudgetMode; accounts: BudgetView[] };
  /** The gateway serves clients: its counters start at 0 for every account. */
  gateway?: boolean;
}

// How stale a time-driven gauge may be: well under any scrape interval.
const GAUGE_REFRESH_MS = 1_000;

const seconds = (ms: number | null | undefined): number => (ms === null || ms === undefined ? 0 : ms / 1000);

/**
 * Turns events into counters and snapshots into gauges. Counters for every closed reason are created at 0 as
 * soon as an account is known, so `increase()` and `rate()` work from the first scrape and a reason that
 * never happened reads 0 instead of "no data".
 */
export interface BudgetView {
  ref: AccountRef;
  scope: 'app_key' | 'api_id';
  limit: number;
  waiting: number;
}

export class MetricsExporter {
  /** The sidecar's own families, each rendered again only when something in it changed. */
  private readonly registry = new Registry();
  /** prom-client's process metrics, which change all the time: rendered at most once a second. */
  private readonly processRegistry = new Registry();
  private readonly exposition: ExpositionCache;
  private readonly lastGauge = new Map<string, number>();
  private refreshedAt = 0;
  private readonly m: Catalogue;
  private readonly compat: ReturnType<typeof createCompatMetrics> | undefined;
  private readonly sinkFormats = new Map<string, SinkConfig['format']>();
  private readonly probeUp = new Map<string, number>();
  private readonly slackQueueLength: () => number;
  private readonly store: MetricsOptions['store'];
  private readonly budget: MetricsOptions['budget'];
  private readonly gateway: boolean;

  constructor(
    bus: EventBus,
    private readonly accounts: () => AccountView[],
    private readonly now: () => number,
    options: MetricsOptions,
  ) {
    this.exposition = new ExpositionCache(this.registry, this.processRegistry, (changed, now) => {
      // Counters hold their sums until a render (families.ts): every render takes them first.
      for (const family of this.families()) if (family instanceof CounterFamily) family.flush();
      if (changed || now - this.refreshedAt >= GAUGE_REFRESH_MS) {
        this.refreshGauges();
        this.refreshedAt = now;
      }
    });
    // The one way a family is marked changed: its every change reports itself here (see families.ts).
    const changed = (family: string) => this.exposition.changed(family);
    this.m = createCatalogue(this.registry, changed);
    this.compat = options.compat ? createCompatMetrics(this.registry, changed) : undefined;
    if (options.processMetrics ?? true) registerProcessMetrics(this.processRegistry);
    this.m.buildInfo.set({ version: options.version, node_version: process.version }, 1);
    for (const result of SLACK_RESULTS) this.m.slackNotifications.inc({ result }, 0);
    for (const result of ['applied', 'failed']) this.m.configReloads.inc({ result }, 0);
    for (const reason of ADMIN_AUTH_FAILURE_REASONS) this.m.adminAuthFailures.inc({ reason }, 0);
    for (const reason of CONNECTION_DROP_REASONS) this.m.httpConnectionsDropped.inc({ reason }, 0);
    this.m.configLastReloadSuccessful.set({}, 1);
    this.slackQueueLength = options.slackQueueLength ?? (() => 0);
    this.store = options.store;
    this.budget = options.budget;
    this.gateway = options.gateway ?? false;
    if (this.gateway) for (const reason of GATEWAY_REFUSAL_REASONS) this.m.gatewayRefused.inc({ reason }, 0);
    this.m.gatewayBudgetFallbacks.inc({}, 0);
    this.subscribe(bus);
  }

  private static labels(ref: AccountRef) {
    return { account: ref.name, provider: ref.provider, env: ref.env };
  }

  private sinkLabels(ref: AccountRef, sink: string) {
    return { ...MetricsExporter.labels(ref), sink, format: this.sinkFormats.get(`${ref.name}\0${sink}`) ?? 'unknown' };
  }

  /** Sets a gauge series only when its value changed, so an unchanged family keeps its rendered text. */
  private setGauge<L extends string>(gauge: GaugeFamily<L>, labels: Labels<L>, value: number): void {
    const key = `${gauge.name}|${Object.values(labels).join('|')}`;
    if (this.lastGauge.get(key) === value) return;
    this.lastGauge.set(key, value);
    gauge.set(labels, value);
  }

  addAccount(ref: AccountRef, sinks: SinkConfig[]): void {
    const labels = MetricsExporter.labels(ref);
    const m = this.m;
    for (const c of [m.renewalAttempts, m.issuances, m.sameToken, m.rateLimited, m.invalidations, m.adoptions, m.expiryClamped]) c.inc(labels, 0);
    for (const reason of RENEWAL_FAILURE_REASONS) m.renewalFailures.inc({ ...labels, reason }, 0);
    for (const result of PROOF_RESULTS) m.proofs.inc({ ...labels, result }, 0);
    for (const reason of STATE_ERROR_REASONS) m.stateErrors.inc({ ...labels, reason }, 0);
    if (this.compat) this.compat.renewals.inc({ account: ref.name }, 0);
    // Counters of closed label sets start at 0, so the first retry or refusal after a start is an increase.
    m.gatewayBudgetGranted.inc(labels, 0);
    if (this.gateway) for (const reason of GATEWAY_RETRY_REASONS) m.gatewayRetries.inc({ ...labels, reason }, 0);
    if (sinks.some((s) => s.format === 'approval-key')) {
      for (const result of APPROVAL_KEY_RESULTS) m.approvalKeys.inc({ ...labels, result }, 0);
    }
    for (const sink of sinks) {
      this.sinkFormats.set(`${ref.name}\0${sink.name}`, sink.format);
      const sl = this.sinkLabels(ref, sink.name);
      for (const cause of SINK_WRITE_CAUSES) m.sinkWrites.inc({ ...sl, cause }, 0);
      for (const reason of SINK_REPAIR_REASONS) m.sinkRepairs.inc({ ...sl, reason }, 0);
      for (const reason of SINK_WRITE_FAILURE_REASONS) m.sinkWriteFailures.inc({ ...sl, reason }, 0);
      m.sinkFilesCleaned.inc(sl, 0);
      m.sinkNotifyFailures.inc(sl, 0);
    }
  }

  /** Forgets an account removed by a config reload, so its series stop instead of going stale. */
  private families(): AnyFamily[] {
    return [...Object.values(this.m), ...Object.values(this.compat ?? {})] as AnyFamily[];
  }

  async removeAccount(ref: AccountRef, sinks: SinkConfig[]): Promise<void> {
    for (const family of this.families()) await family.removeAccount(ref.name);
    for (const sink of sinks) this.sinkFormats.delete(`${ref.name}\0${sink.name}`);
    this.probeUp.delete(ref.name);
    for (const key of this.lastGauge.keys()) if (key.split('|')[1] === ref.name) this.lastGauge.delete(key);
  }

  private subscribe(bus: EventBus): void {
    const m = this.m;
    const L: typeof MetricsExporter.labels = (ref) => MetricsExporter.labels(ref);
    bus.on('state.loaded', ({ account, issuances }) => {
      // Continue the count across restarts, so increase() sees a token issued before the first scrape.
      m.issuances.inc(L(account), issuances);
      if (this.compat) this.compat.renewals.inc({ account: account.name }, issuances);
    });
    bus.on('issuance.attempt', ({ account }) => m.renewalAttempts.inc(L(account)));
    bus.on('issuance.issued', ({ account, durationMs, expiryClamped }) => {
      m.issuances.inc(L(account));
      if (expiryClamped) m.expiryClamped.inc(L(account));
      m.renewalDuration.observe(L(account), durationMs / 1000);
      if (this.compat) this.compat.renewals.inc({ account: account.name });
    });
    bus.on('issuance.same_token', ({ account, durationMs }) => {
      m.sameToken.inc(L(account));
      m.renewalDuration.observe(L(account), durationMs / 1000);
    });
    bus.on('issuance.failed', ({ account, reason, durationMs }) => {
      m.renewalFailures.inc({ ...L(account), reason });
      if (reason === 'rate_limited') m.rateLimited.inc(L(account));
      if (durationMs > 0) m.renewalDuration.observe(L(account), durationMs / 1000);
    });
    bus.on('proof.done', ({ account, result, durationMs }) => {
      m.proofs.inc({ ...L(account), result });
      m.proofDuration.observe(L(account), durationMs / 1000);
    });
    bus.on('token.invalidated', ({ account }) => m.invalidations.inc(L(account)));
    bus.on('token.adopted', ({ account }) => m.adoptions.inc(L(account)));
    bus.on('state.error', ({ account, reason }) => m.stateErrors.inc({ ...L(account), reason }));
    bus.on('approval_key.issued', ({ account }) => m.approvalKeys.inc({ ...L(account), result: 'ok' }));
    bus.on('approval_key.failed', ({ account }) => m.approvalKeys.inc({ ...L(account), result: 'error' }));
    bus.on('sink.written', ({ account, sink, cause }) => m.sinkWrites.inc({ ...this.sinkLabels(account, sink), cause }));
    bus.on('sink.repaired', ({ account, sink, reason }) => m.sinkRepairs.inc({ ...this.sinkLabels(account, sink), reason }));
    bus.on('sink.write_failed', ({ account, sink, reason }) => m.sinkWriteFailures.inc({ ...this.sinkLabels(account, sink), reason }));
    bus.on('sink.cleaned', ({ account, sink, files }) => m.sinkFilesCleaned.inc(this.sinkLabels(account, sink), files.length));
    bus.on('sink.notify_failed', ({ account, sink }) => m.sinkNotifyFailures.inc(this.sinkLabels(account, sink)));
    bus.on('slack.delivery', ({ result }) => m.slackNotifications.inc({ result }));
    bus.on('config.reloaded', () => {
      m.configReloads.inc({ result: 'applied' });
      this.setGauge(m.configLastReloadSuccessful, {}, 1);
    });
    bus.on('config.reload_failed', () => {
      m.configReloads.inc({ result: 'failed' });
      this.setGauge(m.configLastReloadSuccessful, {}, 0);
    });
    bus.on('http.admin_auth_failed', ({ reason }) => m.adminAuthFailures.inc({ reason }));
    bus.on('http.connection_dropped', ({ reason }) => m.httpConnectionsDropped.inc({ reason }));
    bus.on('gateway.call', ({ account, client, api, result, code, durationMs }) => {
      m.gatewayCalls.inc({ ...L(account), client, api, result, code });
      m.gatewayCallDuration.observe({ ...L(account), result }, durationMs / 1000);
    });
    bus.on('budget.slot', ({ account, granted, waitedMs }) => {
      m.gatewayQueueWait.observe(L(account), waitedMs / 1000);
      if (granted) m.gatewayBudgetGranted.inc(L(account));
    });
    bus.on('budget.mode', ({ mode }) => {
      if (mode === 'fallback') m.gatewayBudgetFallbacks.inc({});
    });
    bus.on('gateway.retry', ({ account, reason }) => m.gatewayRetries.inc({ ...L(account), reason }));
    bus.on('gateway.local_answer', ({ account, client, endpoint }) => m.gatewayLocalAnswers.inc({ ...L(account), client, endpoint }));
    bus.on('gateway.refused', ({ reason }) => m.gatewayRefused.inc({ reason }));
    this.subscribeRealtime(bus);
    bus.on('probe.done', ({ account, ok, durationMs }) => {
      this.probeUp.set(account.name, ok ? 1 : 0);
      m.probeDuration.observe(L(account), durationMs / 1000);
    });
  }

  /**
   * The real-time endpoint's families. Its sessions report a snapshot at start and whenever something changed: the
   * first one of an account sets its counters to 0 (and the endpoint-wide ones with the first of all), so the
   * families exist only where the endpoint runs.
   */
  private subscribeRealtime(bus: EventBus): void {
    const m = this.m;
    const L: typeof MetricsExporter.labels = (ref) => MetricsExporter.labels(ref);
    const known = new Set<string>();
    const queueClients = new Map<string, Set<string>>();
    let started = false;
    const start = (account: AccountRef) => {
      if (!started) {
        started = true;
        for (const reason of REALTIME_CLIENT_CLOSE_REASONS) m.realtimeClientCloses.inc({ reason }, 0);
        for (const reason of REALTIME_REFUSAL_REASONS) m.realtimeRefusals.inc({ reason }, 0);
      }
      if (known.has(account.name)) return;
      known.add(account.name);
      for (const reason of REALTIME_CONNECT_REASONS) m.realtimeUpstreamConnects.inc({ ...L(account), reason }, 0);
      m.realtimeFramesReceived.inc(L(account), 0);
      m.realtimeFramesSent.inc(L(account), 0);
    };
    bus.on('realtime.snapshot', (s) => {
      start(s.account);
      const labels = L(s.account);
      for (const state of REALTIME_UPSTREAM_STATES) this.setGauge(m.realtimeUpstreamState, { ...labels, state }, s.state === state ? 1 : 0);
      this.setGauge(m.realtimeRegistrations, labels, s.registrations);
      this.setGauge(m.realtimeRegistrationLimit, labels, s.limit);
      this.setGauge(m.realtimeClients, labels, s.clients);
      this.setGauge(m.realtimeUpstreamLastFrame, labels, seconds(s.lastFrameAt));
      if (s.framesIn > 0) m.realtimeFramesReceived.inc(labels, s.framesIn);
      if (s.framesOut > 0) m.realtimeFramesSent.inc(labels, s.framesOut);
      // A client seen before and gone now reads 0, not its last queue.
      const clients = queueClients.get(s.account.name) ?? new Set<string>();
      queueClients.set(s.account.name, clients);
      for (const client of Object.keys(s.queueBytes)) clients.add(client);
      for (const client of clients) this.setGauge(m.realtimeClientQueueBytes, { ...labels, client }, s.queueBytes[client] ?? 0);
    });
    bus.on('realtime.connect', ({ account, reason }) => {
      start(account);
      m.realtimeUpstreamConnects.inc({ ...L(account), reason });
    });
    bus.on('realtime.client', ({ change, reason }) => {
      if (change === 'closed' && reason !== null) m.realtimeClientCloses.inc({ reason });
    });
    bus.on('realtime.refused', ({ reason }) => m.realtimeRefusals.inc({ reason }));
    const relayKnown = new Set<string>();
    bus.on('realtime.relay', (s) => {
      const labels = L(s.account);
      if (!relayKnown.has(s.account.name)) {
        relayKnown.add(s.account.name);
        for (const change of REALTIME_LEASE_CHANGES) m.realtimeLeaseChanges.inc({ ...labels, change }, 0);
        for (const direction of REALTIME_RELAY_DIRECTIONS) m.realtimeRelayFrames.inc({ ...labels, direction }, 0);
        m.realtimeRelayWantsPublished.inc(labels, 0);
      }
      this.setGauge(m.realtimeLeaseHolder, labels, s.holder ? 1 : 0);
      this.setGauge(m.realtimeLeaseAcquired, labels, seconds(s.leaseAcquiredAt));
      this.setGauge(m.realtimeRelayRedisUp, labels, s.redisUp ? 1 : 0);
      this.setGauge(m.realtimeRelayWants, labels, s.wants);
      if (s.framesPublished > 0) m.realtimeRelayFrames.inc({ ...labels, direction: 'published' }, s.framesPublished);
      if (s.framesReceived > 0) m.realtimeRelayFrames.inc({ ...labels, direction: 'received' }, s.framesReceived);
      if (s.wantsPublished > 0) m.realtimeRelayWantsPublished.inc(labels, s.wantsPublished);
      for (const lag of s.lagsMs) m.realtimeRelayLag.observe(labels, lag / 1000);
    });
    bus.on('realtime.lease', ({ account, change }) => m.realtimeLeaseChanges.inc({ ...L(account), change }));
  }

  /** Sets every gauge from the current snapshots; called right before each scrape is rendered. */
  private refreshGauges(): void {
    const m = this.m;
    const now = this.now();
    this.setGauge(m.slackQueueLength, {}, this.slackQueueLength());
    if (this.store) this.setGauge(m.storeUp, { store: this.store.type }, this.store.health().up ? 1 : 0);
    const budget = this.budget?.();
    for (const { ref, scope, limit, waiting } of budget?.accounts ?? []) {
      const labels = MetricsExporter.labels(ref);
      this.setGauge(m.gatewayBudgetLimit, { ...labels, scope }, limit);
      this.setGauge(m.gatewayQueueLength, labels, waiting);
    }
    if (budget) for (const mode of BUDGET_MODES) this.setGauge(m.gatewayBudgetMode, { mode }, budget.mode === mode ? 1 : 0);
    for (const { snapshot, sinks, ready } of this.accounts()) {
      const labels = MetricsExporter.labels(snapshot.ref);
      const { state } = snapshot;
      const token = state.token;
      this.setGauge(m.expiry, labels, seconds(token?.expiresAt));
      this.setGauge(m.issued, labels, seconds(token?.issuedAt));
      this.setGauge(m.lastRenewal, labels, seconds(state.lastRenewalAt));
      this.setGauge(m.nextRenewal, labels, seconds(snapshot.nextAttemptAt));
      this.setGauge(m.lastProof, labels, seconds(state.lastProof?.at));
      this.setGauge(m.lastProofSuccess, labels, seconds(token?.provenAt));
      for (const status of TOKEN_STATUSES) this.setGauge(m.state, { ...labels, state: status }, snapshot.status === status ? 1 : 0);
      this.setGauge(m.usable, labels, snapshot.usable ? 1 : 0);
      this.setGauge(m.ready, labels, ready ? 1 : 0);
      this.setGauge(m.consecutiveFailures, labels, state.consecutiveFailures);
      this.setGauge(m.credentialsRejected, labels, state.authBlock ? 1 : 0);
      const probe = this.probeUp.get(snapshot.ref.name);
      if (probe !== undefined) this.setGauge(m.probeUp, labels, probe);
      for (const sink of sinks) {
        const sl = this.sinkLabels(snapshot.ref, sink.name);
        this.setGauge(m.sinkPresent, sl, sink.present ? 1 : 0);
        this.setGauge(m.sinkHealthy, sl, sink.healthy ? 1 : 0);
        this.setGauge(m.sinkModeOk, sl, sink.mode === sink.expectedMode ? 1 : 0);
        this.setGauge(m.sinkLastWrite, sl, seconds(sink.lastWriteAt));
        this.setGauge(m.sinkStuck, sl, sink.stuckSince === null ? 0 : 1);
      }
      if (this.compat) this.setGauge(this.compat.ageHours, { account: snapshot.ref.name }, token ? Math.max(0, now - token.issuedAt) / 3_600_000 : 0);
    }
  }

  /**
   * The exposition, in the Prometheus text format or, when the scraper asks for it, OpenMetrics, in two parts: the
   * sidecar's own families and prom-client's process metrics (exposition.ts keeps them rendered). Gauges are
   * refreshed when something happened since the last scrape, or at most once a second otherwise (the time-driven
   * ones: a token becoming "expiring").
   */
  renderParts(openMetrics: boolean): Promise<{ contentType: string; parts: Buffer[] }> {
    return this.exposition.renderParts(openMetrics);
  }

  renderGzip(openMetrics: boolean): Promise<{ contentType: string; body: Buffer }> {
    return this.exposition.renderGzip(openMetrics);
  }

  /** The whole exposition as one string (tests, and anyone who wants it in one piece). */
  async render(openMetrics: boolean): Promise<{ contentType: string; body: string }> {
    const { contentType, parts } = await this.renderParts(openMetrics);
    return { contentType, body: Buffer.concat(parts).toString() };
  }
}

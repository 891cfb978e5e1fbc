import { Registry, type Counter, type Gauge, type Histogram } from 'prom-client';
import type { SinkConfig } from '../config/types';
import type { AccountRef, EventBus } from '../core/events';
import { Serial } from '../core/serial';
import type { AccountSnapshot } from '../lifecycle/account';
import type { SinkStatus } from '../sinks/supervisor';
import type { StoreHealth } from '../store/store';
import {
  APPROVAL_KEY_RESULTS,
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

/** What the exporter reads at scrape time: the same view /status shows. */
export interface AccountView {
  snapshot: AccountSnapshot;
  sinks: SinkStatus[];
  ready: boolean;
}

export interface MetricsOptions {
  version: string;
  /** Also export the first system's kis_token_* names. */
  compat: boolean;
  processMetrics?: boolean;
  slackQueueLength?: () => number;
  store?: { type: string; health: () => StoreHealth };
}

const seconds = (ms: number | null | undefined): number => (ms === null || ms === undefined ? 0 : ms / 1000);

/**
 * Turns events into counters and snapshots into gauges. Counters for every closed reason are created at 0 as
 * soon as an account is known, so `increase()` and `rate()` work from the first scrape and a reason that
 * never happened reads 0 instead of "no data".
 */
export class MetricsExporter {
  readonly registry = new Registry();
  private readonly m: Catalogue;
  private readonly compat: ReturnType<typeof createCompatMetrics> | undefined;
  private readonly sinkFormats = new Map<string, SinkConfig['format']>();
  private readonly probeUp = new Map<string, number>();
  private readonly renderSerial = new Serial();
  private readonly slackQueueLength: () => number;
  private readonly store: MetricsOptions['store'];

  constructor(
    bus: EventBus,
    private readonly accounts: () => AccountView[],
    private readonly now: () => number,
    options: MetricsOptions,
  ) {
    this.m = createCatalogue(this.registry);
    this.compat = options.compat ? createCompatMetrics(this.registry) : undefined;
    if (options.processMetrics ?? true) registerProcessMetrics(this.registry);
    this.m.buildInfo.set({ version: options.version, node_version: process.version }, 1);
    for (const result of SLACK_RESULTS) this.m.slackNotifications.inc({ result }, 0);
    for (const result of ['applied', 'failed']) this.m.configReloads.inc({ result }, 0);
    this.m.configLastReloadSuccessful.set(1);
    this.slackQueueLength = options.slackQueueLength ?? (() => 0);
    this.store = options.store;
    this.subscribe(bus);
  }

  private static labels(ref: AccountRef) {
    return { account: ref.name, provider: ref.provider, env: ref.env };
  }

  private sinkLabels(ref: AccountRef, sink: string) {
    return { ...MetricsExporter.labels(ref), sink, format: this.sinkFormats.get(`${ref.name}\0${sink}`) ?? 'unknown' };
  }

  addAccount(ref: AccountRef, sinks: SinkConfig[]): void {
    const labels = MetricsExporter.labels(ref);
    const m = this.m;
    for (const c of [m.renewalAttempts, m.issuances, m.sameToken, m.rateLimited, m.invalidations, m.adoptions, m.expiryClamped]) c.inc(labels, 0);
    for (const reason of RENEWAL_FAILURE_REASONS) m.renewalFailures.inc({ ...labels, reason }, 0);
    for (const result of PROOF_RESULTS) m.proofs.inc({ ...labels, result }, 0);
    for (const reason of STATE_ERROR_REASONS) m.stateErrors.inc({ ...labels, reason }, 0);
    this.compat?.renewals.inc({ account: ref.name }, 0);
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
  async removeAccount(ref: AccountRef, sinks: SinkConfig[]): Promise<void> {
    const metrics: Array<Counter | Gauge | Histogram> = [...Object.values(this.m), ...Object.values(this.compat ?? {})];
    for (const metric of metrics) {
      const { values } = await metric.get();
      for (const { labels } of values) {
        // A histogram lists a value per bucket; removing its label set once removes them all.
        if (labels.account === ref.name && labels.le === undefined) metric.remove(labels as Record<string, string>);
      }
    }
    for (const sink of sinks) this.sinkFormats.delete(`${ref.name}\0${sink.name}`);
    this.probeUp.delete(ref.name);
  }

  private subscribe(bus: EventBus): void {
    const m = this.m;
    const L = MetricsExporter.labels;
    bus.on('state.loaded', ({ account, issuances }) => {
      // Continue the count across restarts, so increase() sees a token issued before the first scrape.
      m.issuances.inc(L(account), issuances);
      this.compat?.renewals.inc({ account: account.name }, issuances);
    });
    bus.on('issuance.attempt', ({ account }) => m.renewalAttempts.inc(L(account)));
    bus.on('issuance.issued', ({ account, durationMs, expiryClamped }) => {
      m.issuances.inc(L(account));
      if (expiryClamped) m.expiryClamped.inc(L(account));
      m.renewalDuration.observe(L(account), durationMs / 1000);
      this.compat?.renewals.inc({ account: account.name });
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
      m.configLastReloadSuccessful.set(1);
    });
    bus.on('config.reload_failed', () => {
      m.configReloads.inc({ result: 'failed' });
      m.configLastReloadSuccessful.set(0);
    });
    bus.on('probe.done', ({ account, ok, durationMs }) => {
      this.probeUp.set(account.name, ok ? 1 : 0);
      m.probeDuration.observe(L(account), durationMs / 1000);
    });
  }

  /** Sets every gauge from the current snapshots; called right before each scrape is rendered. */
  private refreshGauges(): void {
    const m = this.m;
    const now = this.now();
    m.slackQueueLength.set(this.slackQueueLength());
    if (this.store) m.storeUp.set({ store: this.store.type }, this.store.health().up ? 1 : 0);
    for (const { snapshot, sinks, ready } of this.accounts()) {
      const labels = MetricsExporter.labels(snapshot.ref);
      const { state } = snapshot;
      const token = state.token;
      m.expiry.set(labels, seconds(token?.expiresAt));
      m.issued.set(labels, seconds(token?.issuedAt));
      m.lastRenewal.set(labels, seconds(state.lastRenewalAt));
      m.nextRenewal.set(labels, seconds(snapshot.nextAttemptAt));
      m.lastProof.set(labels, seconds(state.lastProof?.at));
      m.lastProofSuccess.set(labels, seconds(token?.provenAt));
      for (const status of TOKEN_STATUSES) m.state.set({ ...labels, state: status }, snapshot.status === status ? 1 : 0);
      m.usable.set(labels, snapshot.usable ? 1 : 0);
      m.ready.set(labels, ready ? 1 : 0);
      m.consecutiveFailures.set(labels, state.consecutiveFailures);
      m.credentialsRejected.set(labels, state.authBlock ? 1 : 0);
      const probe = this.probeUp.get(snapshot.ref.name);
      if (probe !== undefined) m.probeUp.set(labels, probe);
      for (const sink of sinks) {
        const sl = this.sinkLabels(snapshot.ref, sink.name);
        m.sinkPresent.set(sl, sink.present ? 1 : 0);
        m.sinkHealthy.set(sl, sink.healthy ? 1 : 0);
        m.sinkModeOk.set(sl, sink.mode === sink.expectedMode ? 1 : 0);
        m.sinkLastWrite.set(sl, seconds(sink.lastWriteAt));
      }
      if (this.compat) this.compat.ageHours.set({ account: snapshot.ref.name }, token ? Math.max(0, now - token.issuedAt) / 3_600_000 : 0);
    }
  }

  /**
   * The exposition, in the Prometheus text format or, when the scraper asks for it, OpenMetrics. Renders run
   * one at a time, since the registry's output format is switched for the duration of one.
   */
  render(openMetrics: boolean): Promise<{ contentType: string; body: string }> {
    return this.renderSerial.run(async () => {
      this.refreshGauges();
      const contentType = openMetrics ? Registry.OPENMETRICS_CONTENT_TYPE : Registry.PROMETHEUS_CONTENT_TYPE;
      this.registry.setContentType(contentType as typeof Registry.PROMETHEUS_CONTENT_TYPE);
      try {
        return { contentType, body: await this.registry.metrics() };
      } finally {
        this.registry.setContentType(Registry.PROMETHEUS_CONTENT_TYPE);
      }
    });
  }
}

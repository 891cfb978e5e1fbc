import { promisify } from 'node:util';
import { constants as zlibConstants, gzip } from 'node:zlib';
import { Registry, type Counter, type Gauge, type Histogram } from 'prom-client';
import type { SinkConfig } from '../config/types';
import type { AccountRef, EventBus } from '../core/events';
import { Serial } from '../core/serial';
import type { AccountView } from '../lifecycle/views';
import type { StoreHealth } from '../store/store';
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

export interface MetricsOptions {
  version: string;
  /** Also export the first system's kis_token_* names. */
  compat: boolean;
  processMetrics?: boolean;
  slackQueueLength?: () => number;
  store?: { type: string; health: () => StoreHealth };
}

// How stale a time-driven gauge, or a process metric, may be: well under any scrape interval. Rendering the
// process metrics costs ~0.4 ms (the event-loop-lag percentiles most of it), more than serving the bytes.
const GAUGE_REFRESH_MS = 1_000;
const PROCESS_REFRESH_MS = 1_000;

const gzipAsync = promisify(gzip);

const seconds = (ms: number | null | undefined): number => (ms === null || ms === undefined ? 0 : ms / 1000);

/**
 * Turns events into counters and snapshots into gauges. Counters for every closed reason are created at 0 as
 * soon as an account is known, so `increase()` and `rate()` work from the first scrape and a reason that
 * never happened reads 0 instead of "no data".
 */
export class MetricsExporter {
  /** The sidecar's own families, each rendered again only when something in it changed. */
  private readonly registry = new Registry();
  /** prom-client's process metrics, which change all the time: rendered at most once a second. */
  private readonly processRegistry = new Registry();
  private processPart: { at: number; text: Buffer; openMetrics?: Buffer } | undefined;
  private readonly rendered = new Map<string, { text: Buffer; openMetrics: Buffer | undefined; source: string }>();
  private readonly dirty = new Set<string>();
  private readonly lastGauge = new Map<string, number>();
  private refreshedAt = 0;
  /** All the families in one piece, per format, until one of them changes. */
  private body: { text?: Buffer; openMetrics?: Buffer } = {};
  private readonly m: Catalogue;
  private readonly compat: ReturnType<typeof createCompatMetrics> | undefined;
  private readonly sinkFormats = new Map<string, SinkConfig['format']>();
  private readonly probeUp = new Map<string, number>();
  private readonly renderSerial = new Serial();
  /** The last compressed answer per format, with the parts it was made from (same bytes, same objects). */
  private readonly compressed = new Map<boolean, { parts: Buffer[]; body: Promise<Buffer> }>();
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
    if (options.processMetrics ?? true) registerProcessMetrics(this.processRegistry);
    this.m.buildInfo.set({ version: options.version, node_version: process.version }, 1);
    for (const result of SLACK_RESULTS) this.m.slackNotifications.inc({ result }, 0);
    for (const result of ['applied', 'failed']) this.m.configReloads.inc({ result }, 0);
    for (const reason of ADMIN_AUTH_FAILURE_REASONS) this.m.adminAuthFailures.inc({ reason }, 0);
    for (const reason of CONNECTION_DROP_REASONS) this.m.httpConnectionsDropped.inc({ reason }, 0);
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

  /** Marks a family to be rendered again at the next scrape. */
  private touch(metric: Counter | Gauge | Histogram): void {
    this.dirty.add((metric as unknown as { name: string }).name);
  }

  private inc<L extends string>(counter: Counter<L>, labels: Partial<Record<L, string>>, by = 1): void {
    counter.inc(labels, by);
    this.touch(counter as unknown as Counter);
  }

  private observe<L extends string>(histogram: Histogram<L>, labels: Partial<Record<L, string>>, value: number): void {
    histogram.observe(labels, value);
    this.touch(histogram as unknown as Histogram);
  }

  /** Sets a gauge series only when its value changed, so an unchanged family keeps its rendered text. */
  private setGauge<L extends string>(gauge: Gauge<L>, labels: Partial<Record<L, string>>, value: number): void {
    const name = (gauge as unknown as { name: string }).name;
    const key = `${name}|${Object.values(labels).join('|')}`;
    if (this.lastGauge.get(key) === value) return;
    this.lastGauge.set(key, value);
    gauge.set(labels, value);
    this.dirty.add(name);
  }

  addAccount(ref: AccountRef, sinks: SinkConfig[]): void {
    const labels = MetricsExporter.labels(ref);
    const m = this.m;
    for (const c of [m.renewalAttempts, m.issuances, m.sameToken, m.rateLimited, m.invalidations, m.adoptions, m.expiryClamped]) this.inc(c, labels, 0);
    for (const reason of RENEWAL_FAILURE_REASONS) this.inc(m.renewalFailures, { ...labels, reason }, 0);
    for (const result of PROOF_RESULTS) this.inc(m.proofs, { ...labels, result }, 0);
    for (const reason of STATE_ERROR_REASONS) this.inc(m.stateErrors, { ...labels, reason }, 0);
    if (this.compat) this.inc(this.compat.renewals, { account: ref.name }, 0);
    if (sinks.some((s) => s.format === 'approval-key')) {
      for (const result of APPROVAL_KEY_RESULTS) this.inc(m.approvalKeys, { ...labels, result }, 0);
    }
    for (const sink of sinks) {
      this.sinkFormats.set(`${ref.name}\0${sink.name}`, sink.format);
      const sl = this.sinkLabels(ref, sink.name);
      for (const cause of SINK_WRITE_CAUSES) this.inc(m.sinkWrites, { ...sl, cause }, 0);
      for (const reason of SINK_REPAIR_REASONS) this.inc(m.sinkRepairs, { ...sl, reason }, 0);
      for (const reason of SINK_WRITE_FAILURE_REASONS) this.inc(m.sinkWriteFailures, { ...sl, reason }, 0);
      this.inc(m.sinkFilesCleaned, sl, 0);
      this.inc(m.sinkNotifyFailures, sl, 0);
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
    for (const key of this.lastGauge.keys()) if (key.split('|')[1] === ref.name) this.lastGauge.delete(key);
    for (const metric of metrics) this.touch(metric);
  }

  private subscribe(bus: EventBus): void {
    const m = this.m;
    const L = MetricsExporter.labels;
    bus.on('state.loaded', ({ account, issuances }) => {
      // Continue the count across restarts, so increase() sees a token issued before the first scrape.
      this.inc(m.issuances, L(account), issuances);
      if (this.compat) this.inc(this.compat.renewals, { account: account.name }, issuances);
    });
    bus.on('issuance.attempt', ({ account }) => this.inc(m.renewalAttempts, L(account)));
    bus.on('issuance.issued', ({ account, durationMs, expiryClamped }) => {
      this.inc(m.issuances, L(account));
      if (expiryClamped) this.inc(m.expiryClamped, L(account));
      this.observe(m.renewalDuration, L(account), durationMs / 1000);
      if (this.compat) this.inc(this.compat.renewals, { account: account.name });
    });
    bus.on('issuance.same_token', ({ account, durationMs }) => {
      this.inc(m.sameToken, L(account));
      this.observe(m.renewalDuration, L(account), durationMs / 1000);
    });
    bus.on('issuance.failed', ({ account, reason, durationMs }) => {
      this.inc(m.renewalFailures, { ...L(account), reason });
      if (reason === 'rate_limited') this.inc(m.rateLimited, L(account));
      if (durationMs > 0) this.observe(m.renewalDuration, L(account), durationMs / 1000);
    });
    bus.on('proof.done', ({ account, result, durationMs }) => {
      this.inc(m.proofs, { ...L(account), result });
      this.observe(m.proofDuration, L(account), durationMs / 1000);
    });
    bus.on('token.invalidated', ({ account }) => this.inc(m.invalidations, L(account)));
    bus.on('token.adopted', ({ account }) => this.inc(m.adoptions, L(account)));
    bus.on('state.error', ({ account, reason }) => this.inc(m.stateErrors, { ...L(account), reason }));
    bus.on('approval_key.issued', ({ account }) => this.inc(m.approvalKeys, { ...L(account), result: 'ok' }));
    bus.on('approval_key.failed', ({ account }) => this.inc(m.approvalKeys, { ...L(account), result: 'error' }));
    bus.on('sink.written', ({ account, sink, cause }) => this.inc(m.sinkWrites, { ...this.sinkLabels(account, sink), cause }));
    bus.on('sink.repaired', ({ account, sink, reason }) => this.inc(m.sinkRepairs, { ...this.sinkLabels(account, sink), reason }));
    bus.on('sink.write_failed', ({ account, sink, reason }) => this.inc(m.sinkWriteFailures, { ...this.sinkLabels(account, sink), reason }));
    bus.on('sink.cleaned', ({ account, sink, files }) => this.inc(m.sinkFilesCleaned, this.sinkLabels(account, sink), files.length));
    bus.on('sink.notify_failed', ({ account, sink }) => this.inc(m.sinkNotifyFailures, this.sinkLabels(account, sink)));
    bus.on('slack.delivery', ({ result }) => this.inc(m.slackNotifications, { result }));
    bus.on('config.reloaded', () => {
      this.inc(m.configReloads, { result: 'applied' });
      this.setGauge(m.configLastReloadSuccessful, {}, 1);
    });
    bus.on('config.reload_failed', () => {
      this.inc(m.configReloads, { result: 'failed' });
      this.setGauge(m.configLastReloadSuccessful, {}, 0);
    });
    bus.on('http.admin_auth_failed', ({ reason }) => this.inc(m.adminAuthFailures, { reason }));
    bus.on('http.connection_dropped', ({ reason }) => this.inc(m.httpConnectionsDropped, { reason }));
    bus.on('probe.done', ({ account, ok, durationMs }) => {
      this.probeUp.set(account.name, ok ? 1 : 0);
      this.observe(m.probeDuration, L(account), durationMs / 1000);
    });
  }

  /** Sets every gauge from the current snapshots; called right before each scrape is rendered. */
  private refreshGauges(): void {
    const m = this.m;
    const now = this.now();
    this.setGauge(m.slackQueueLength, {}, this.slackQueueLength());
    if (this.store) this.setGauge(m.storeUp, { store: this.store.type }, this.store.health().up ? 1 : 0);
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
   * The exposition, in the Prometheus text format or, when the scraper asks for it, OpenMetrics, in two parts:
   * the sidecar's own families, kept rendered (as text and as bytes) until something in them changes, and
   * prom-client's process metrics, rendered at most once a second. At a thousand accounts rendering everything
   * takes prom-client ~200 ms; a scrape where nothing changed costs little more than the copy to the socket.
   * Gauges are refreshed when something happened since the last scrape, or at most once a second otherwise
   * (the time-driven ones: a token becoming "expiring"). Renders run one at a time.
   */
  renderParts(openMetrics: boolean): Promise<{ contentType: string; parts: Buffer[] }> {
    return this.renderSerial.run(async () => {
      const now = Date.now();
      if (this.dirty.size > 0 || now - this.refreshedAt >= GAUGE_REFRESH_MS) {
        this.refreshGauges();
        this.refreshedAt = now;
      }
      // Every change goes through inc/observe/setGauge/touch, which mark the family: nothing marked, nothing to do.
      for (const metric of this.dirty.size > 0 || this.rendered.size === 0 ? this.registry.getMetricsAsArray() : []) {
        const family = this.rendered.get(metric.name);
        if (family && !this.dirty.has(metric.name)) continue;
        const text = await this.registry.getSingleMetricAsString(metric.name);
        this.rendered.set(metric.name, { text: Buffer.from(`${text}\n\n`), openMetrics: undefined, source: text });
        this.body = {};
      }
      this.dirty.clear();
      const families = [...this.rendered.values()];
      const processFamilies = await this.processMetrics(now);
      if (!openMetrics) {
        this.body.text ??= Buffer.concat(families.map((family) => family.text));
        return { contentType: Registry.PROMETHEUS_CONTENT_TYPE, parts: [this.body.text, processFamilies.text] };
      }
      this.body.openMetrics ??= Buffer.concat(families.map((family) => (family.openMetrics ??= Buffer.from(familyToOpenMetrics(family.source)))));
      processFamilies.openMetrics ??= Buffer.from(`${processFamilies.text.toString().split('\n\n').filter((block) => block.trim() !== '').map(familyToOpenMetrics).join('')}# EOF\n`);
      return { contentType: Registry.OPENMETRICS_CONTENT_TYPE, parts: [this.body.openMetrics, processFamilies.openMetrics] };
    });
  }

  /** prom-client's process metrics, rendered again once they are a second old. */
  private async processMetrics(now: number): Promise<{ text: Buffer; openMetrics?: Buffer }> {
    if (!this.processPart || now - this.processPart.at >= PROCESS_REFRESH_MS) {
      this.processPart = { at: now, text: Buffer.from(await this.processRegistry.metrics()) };
    }
    return this.processPart;
  }

  /**
   * The exposition gzipped, as Prometheus asks for it: at a thousand accounts 8 MiB of text become a few hundred
   * KiB on the wire. Compressed off the event loop (zlib's thread pool), at the fastest level because the body
   * can change every second, and only again when the parts changed; scrapes that arrive meanwhile share it.
   */
  async renderGzip(openMetrics: boolean): Promise<{ contentType: string; body: Buffer }> {
    const { contentType, parts } = await this.renderParts(openMetrics);
    let last = this.compressed.get(openMetrics);
    if (!last || last.parts.length !== parts.length || last.parts.some((part, i) => part !== parts[i])) {
      last = { parts, body: gzipAsync(Buffer.concat(parts), { level: zlibConstants.Z_BEST_SPEED }) };
      this.compressed.set(openMetrics, last);
    }
    return { contentType, body: await last.body };
  }

  /** The whole exposition as one string (tests, and anyone who wants it in one piece). */
  async render(openMetrics: boolean): Promise<{ contentType: string; body: string }> {
    const { contentType, parts } = await this.renderParts(openMetrics);
    return { contentType, body: Buffer.concat(parts).toString() };
  }
}

/**
 * One metric family of the Prometheus text exposition in the OpenMetrics form: a counter family is named without
 * its `_total` (its samples keep it) and no line is blank; the exposition ends with `# EOF`. Done here because
 * prom-client's own OpenMetrics mode renames every counter in place (dropping `_total`), which corrupts every
 * later scrape in the text format.
 */
export function familyToOpenMetrics(block: string): string {
  const lines = block.split('\n').filter((line) => line !== '');
  const isCounter = lines.some((line) => line.startsWith('# TYPE ') && line.endsWith(' counter'));
  return lines.map((line) => (isCounter && line.startsWith('# ') ? line.replace(/^(# (?:HELP|TYPE) \S+)_total\b/, '$1') : line)).join('\n') + '\n';
}

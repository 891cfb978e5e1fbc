import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Dispatcher } from 'undici';
import type { SlackConfig } from '../config/types';
import { systemClock, type Clock } from '../core/clock';
import type { EventBus } from '../core/events';
import { describeError } from '../core/errors';
import type { SecretRegistry } from '../core/secrets';
import { Serial } from '../core/serial';
import type { FileSystem } from '../core/atomic-file';
import type { AccountView } from '../lifecycle/views';
import { evaluateAlerts, type ActiveAlert } from './conditions';
import { SlackDelivery } from './delivery';
import { renderAlert, renderNotice, type MessageContext, type Phase, type SlackMessage } from './messages';
import { AlertStore, type AlertFile, type OpenAlert } from './outbox-store';
import type { Severity } from './kinds';
import type { StoreHealth } from '../store/state-store';
import type { RealtimeSnapshot } from '../core/realtime-vocabulary';

/**
 * Slack alerts from the sidecar itself. Decides from the current state which alerts hold (conditions.ts),
 * sends one message when an alert starts, a reminder every `repeatInterval` while it lasts and one when it
 * clears. Decisions and the outbox are persisted before anything is sent, so a crash loop repeats nothing and
 * loses nothing; delivery runs on its own, so a slow or dead Slack never holds up a renewal or a repair.
 */
interface NotifierDeps {
  config: SlackConfig;
  stateDir: string;
  views: () => AccountView[];
  /** The sidecar's clock: when alerts start, repeat and show times. */
  clock: Clock;
  /** Real time for waiting on Slack between attempts. */
  deliveryClock?: Clock;
  bus: EventBus;
  secrets: SecretRegistry;
  version: string;
  dispatcher?: Dispatcher;
  fs?: FileSystem;
  storeHealth?: () => StoreHealth;
}

export class SlackNotifier {
  private file: AlertFile = { version: 1, alerts: {}, outbox: [], unusableSince: {} };
  private readonly store: AlertStore;
  private readonly delivery: SlackDelivery;
  private readonly saves = new Serial();
  private readonly stopWorker = new AbortController();
  private workerWake = new AbortController();
  private worker: Promise<void> | undefined;
  private inFlight: string | undefined;
  private unsubscribe: Array<() => void> = [];
  /** Each account's last real-time snapshot (src/realtime/ emits one a second while anything changes). */
  private readonly realtime = new Map<string, RealtimeSnapshot>();

  constructor(private readonly deps: NotifierDeps) {
    this.store = new AlertStore(deps.stateDir, deps.fs);
    deps.secrets.add(deps.config.webhookUrl);
    deps.secrets.add(deps.config.criticalWebhookUrl);
    this.delivery = new SlackDelivery({
      webhookUrl: deps.config.webhookUrl,
      criticalWebhookUrl: deps.config.criticalWebhookUrl,
      timeoutMs: deps.config.timeoutMs,
      retry: deps.config.retry,
      dispatcher: deps.dispatcher,
      clock: deps.deliveryClock ?? systemClock,
      secrets: deps.secrets,
      onAttempt: (result, detail) => deps.bus.emit('slack.delivery', { result, detail }),
    });
  }

  get queueLength(): number {
    return this.file.outbox.length;
  }

  private context(): MessageContext {
    const { config, clock, version } = this.deps;
    return { language: config.language, runbookUrl: config.runbookUrl, dashboardUrl: config.dashboardUrl, host: hostname(), version, now: clock.now() };
  }

  /** Loads what was open and undelivered before, starts delivering, and listens for what needs a prompt look. */
  async start(): Promise<void> {
    const { file, problem } = await this.store.load();
    this.file = file;
    if (problem) this.deps.bus.emit('alerts.state_error', { message: problem });
    const { bus, config } = this.deps;
    const evaluate = () => this.evaluate();
    this.unsubscribe = [
      // Looked at the moment they happen: a token that dies and is replaced within a second still alerts.
      bus.on('token.invalidated', evaluate),
      bus.on('issuance.failed', evaluate),
      bus.on('issuance.issued', (e) => {
        if (config.notices.renewed)
          this.enqueue(renderNotice({ kind: 'renewed', account: e.account, expiresAt: e.expiresAt }, this.context()), 'info', `renewed:${e.account.name}`);
        evaluate();
      }),
      bus.on('issuance.blocked', evaluate),
      bus.on('sink.recovered', evaluate),
      bus.on('store.health', evaluate),
      bus.on('realtime.snapshot', (snapshot) => {
        const before = this.realtime.get(snapshot.account.name);
        this.realtime.set(snapshot.account.name, snapshot);
        // A session going down or filling up is looked at on the next evaluation (its grace runs from then).
        if (before?.downSince !== snapshot.downSince || before?.fullSince !== snapshot.fullSince) evaluate();
      }),
    ];
    this.worker = this.runWorker();
    if (config.notices.lifecycle) this.enqueue(renderNotice({ kind: 'started', accounts: this.accountNames() }, this.context()), 'info', 'started');
  }

  private accountNames(): string[] {
    return this.deps.views().map((v) => v.snapshot.ref.name);
  }

  /** One evaluation; the loop calls it every `evaluationInterval`. */
  async tick(): Promise<number> {
    this.evaluate();
    await this.saves.run(() => Promise.resolve());
    return this.deps.clock.now() + this.deps.config.evaluationIntervalMs;
  }

  /** Synchronous: decides and queues; the file is saved and the messages sent after. */
  evaluate(): void {
    const { config, clock, views } = this.deps;
    const now = clock.now();
    const current = views();
    let changed = this.trackUnusable(current, now);
    const active = evaluateAlerts(current, now, config.alerts, this.deps.storeHealth?.(), this.file.unusableSince, [...this.realtime.values()]);
    const activeKeys = new Set<string>();
    for (const alert of active) {
      activeKeys.add(alert.key);
      const open = this.file.alerts[alert.key];
      if (!open) {
        this.file.alerts[alert.key] = { ...alert, since: now, lastNotifiedAt: now };
        this.notify(alert, 'firing', now);
        changed = true;
      } else {
        const renotify = now - open.lastNotifiedAt >= config.repeatIntervalMs;
        Object.assign(open, { facts: alert.facts, severity: alert.severity, expiresAt: alert.expiresAt });
        if (renotify) {
          open.lastNotifiedAt = now;
          this.notify(alert, 'reminder', open.since);
          changed = true;
        }
      }
    }
    for (const [key, open] of Object.entries(this.file.alerts)) {
      if (activeKeys.has(key)) continue;
      delete this.file.alerts[key];
      this.notify(this.asActive(key, open), 'resolved', open.since);
      changed = true;
    }
    if (changed) this.persist();
  }

  /** Notes since when each account has had no usable token; true when that changed (the file is saved then). */
  private trackUnusable(views: AccountView[], now: number): boolean {
    const since = this.file.unusableSince;
    let changed = false;
    const names = new Set(views.map((v) => v.snapshot.ref.name));
    for (const name of Object.keys(since)) {
      if (!names.has(name)) {
        delete since[name];
        changed = true;
      }
    }
    for (const { snapshot } of views) {
      const name = snapshot.ref.name;
      if (snapshot.usable && since[name] !== undefined) {
        delete since[name];
        changed = true;
      } else if (!snapshot.usable && since[name] === undefined) {
        since[name] = now;
        changed = true;
      }
    }
    return changed;
  }

  private asActive(key: string, open: OpenAlert): ActiveAlert {
    return {
      key,
      kind: open.kind as ActiveAlert['kind'],
      severity: open.severity,
      account: open.account,
      ...(open.sink !== undefined ? { sink: open.sink } : {}),
      facts: open.facts,
      expiresAt: open.expiresAt,
    };
  }

  private notify(alert: ActiveAlert, phase: Phase, since: number): void {
    this.enqueue(renderAlert(alert, phase, since, this.context()), phase === 'resolved' ? 'info' : alert.severity, `${alert.key}:${phase}`);
    this.deps.bus.emit('alert.notified', { key: alert.key, kind: alert.kind, phase, severity: alert.severity, account: alert.account });
  }

  private enqueue(message: SlackMessage, severity: Severity, label: string): void {
    const { config, bus, secrets, clock } = this.deps;
    // Nothing secret is put in a message; this is the last line of defence regardless.
    const payload = secrets.redactDeep(message);
    this.file.outbox.push({ id: randomBytes(6).toString('hex'), severity, label, createdAt: clock.now(), payload });
    while (this.file.outbox.length > config.queueSize) {
      const index = this.file.outbox.findIndex((item) => item.id !== this.inFlight);
      const [dropped] = this.file.outbox.splice(index, 1);
      bus.emit('slack.delivery', { result: 'dropped', detail: `${dropped!.label}: queue full (${config.queueSize})` });
    }
    this.persist();
    this.workerWake.abort();
  }

  private persist(): void {
    const snapshot = structuredClone(this.file);
    void this.saves.run(() =>
      this.store
        .save(snapshot)
        .catch((error: unknown) => this.deps.bus.emit('alerts.state_error', { message: `cannot save alert state: ${describeError(error)}` })),
    );
  }

  private async runWorker(): Promise<void> {
    const signal = this.stopWorker.signal;
    while (!signal.aborted) {
      const item = this.file.outbox[0];
      if (!item) {
        await new Promise<void>((resolve) => {
          if (this.workerWake.signal.aborted || signal.aborted) return resolve();
          const done = () => resolve();
          this.workerWake.signal.addEventListener('abort', done, { once: true });
          signal.addEventListener('abort', done, { once: true });
        });
        this.workerWake = new AbortController();
        continue;
      }
      this.inFlight = item.id;
      await this.delivery.deliver(item, signal);
      this.inFlight = undefined;
      if (signal.aborted) break; // undelivered: stays in the outbox for the next start
      this.file.outbox = this.file.outbox.filter((queued) => queued.id !== item.id);
      this.persist();
    }
  }

  /** Sends the stop notice, gives the outbox up to `boundMs` to drain, then stops; what is left is kept. */
  async stop(boundMs = 3_000): Promise<void> {
    for (const off of this.unsubscribe) off();
    if (this.deps.config.notices.lifecycle && this.worker)
      this.enqueue(renderNotice({ kind: 'stopped', accounts: this.accountNames() }, this.context()), 'info', 'stopped');
    const deadline = Date.now() + boundMs;
    while (this.file.outbox.length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.stopWorker.abort();
    await this.worker;
    await this.saves.run(() => Promise.resolve());
  }

  /** Resolves when the outbox is empty (tests). */
  async drained(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.file.outbox.length > 0) {
      if (Date.now() > deadline) throw new Error(`outbox still holds ${this.file.outbox.length} message(s)`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await this.saves.run(() => Promise.resolve());
  }
}

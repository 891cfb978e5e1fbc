import type { AlertKind, SlackConfig } from '../config/types';
import type { AccountRef } from '../core/events';
import type { RealtimeSnapshot } from '../core/realtime-vocabulary';
import type { AccountView } from '../lifecycle/views';
import type { SinkStatus } from '../sinks/supervisor';
import type { StoreHealth } from '../store/state-store';
import { ALERT_KINDS, type Severity } from './kinds';

/**
 * Which alerts hold now, as a pure function of what /status shows. Evaluating state rather than counting
 * events is what makes alerts survive restarts: a condition that cleared while the sidecar was down is simply
 * not active at the next evaluation, and is resolved.
 */
export interface ActiveAlert {
  key: string;
  kind: AlertKind;
  severity: Severity;
  /** Absent for an alert about the whole sidecar (its shared store). */
  account: AccountRef | undefined;
  sink?: string;
  /** Facts for the message: the last failure reason, a broker code, a path, a mode. */
  facts: Record<string, string | number | null>;
  expiresAt: number | null;
}

export function alertKey(kind: AlertKind, account: string | undefined, sink?: string): string {
  if (account === undefined) return kind;
  return sink === undefined ? `${kind}:${account}` : `${kind}:${account}:${sink}`;
}

function sinkFacts(sink: SinkStatus) {
  return {
    path: sink.path,
    mode: sink.mode === null ? null : `0${sink.mode.toString(8)}`,
    expectedMode: `0${sink.expectedMode.toString(8)}`,
    reason: sink.lastError?.reason ?? (sink.present ? 'content' : 'missing'),
    message: sink.lastError?.message ?? null,
  };
}

/**
 * @param unusableSince when each account was first seen without a usable token (kept by the notifier: a token
 *   that never arrived has no instant of its own in the state).
 */
export function evaluateAlerts(
  views: AccountView[],
  now: number,
  rules: SlackConfig['alerts'],
  store?: StoreHealth,
  unusableSince: Readonly<Record<string, number>> = {},
  realtime: readonly RealtimeSnapshot[] = [],
): ActiveAlert[] {
  const active: ActiveAlert[] = [];
  if (rules.storeUnavailable.enabled && store && !store.up && store.downSince !== null && now - store.downSince >= rules.storeUnavailable.graceMs) {
    active.push({
      key: alertKey('store_unavailable', undefined),
      kind: 'store_unavailable',
      severity: 'warning',
      account: undefined,
      facts: { since: store.downSince, message: store.message },
      expiresAt: null,
    });
  }
  for (const { snapshot, sinks } of views) {
    const { state, ref } = snapshot;
    const expiresAt = state.token?.expiresAt ?? null;
    const add = (kind: AlertKind, facts: ActiveAlert['facts'], severity: Severity = ALERT_KINDS[kind].severity, sink?: string) =>
      active.push({ key: alertKey(kind, ref.name, sink), kind, severity, account: ref, ...(sink !== undefined ? { sink } : {}), facts, expiresAt });
    const failure = state.lastFailure;

    if (rules.credentialsRejected.enabled && state.authBlock) {
      add('credentials_rejected', { message: state.authBlock.message });
    }
    if (rules.renewalFailing.enabled && !state.authBlock && state.consecutiveFailures >= rules.renewalFailing.threshold) {
      add(
        'renewal_failing',
        { failures: state.consecutiveFailures, reason: failure?.reason ?? null, message: failure?.message ?? null },
        snapshot.usable ? 'warning' : 'critical',
      );
    }
    if (rules.rateLimited.enabled && state.consecutiveFailures > 0 && state.lastAttempt?.outcome === 'rate_limited') {
      add('rate_limited', { failures: state.consecutiveFailures, message: failure?.message ?? null });
    }
    if (rules.tokenInvalidated.enabled && state.invalidated) {
      add('token_invalidated', { brokerCode: state.invalidated.brokerCode, message: state.invalidated.message });
    }
    const since = unusableSince[ref.name];
    const noToken = rules.noUsableToken.enabled && !snapshot.usable && since !== undefined && now - since >= rules.noUsableToken.graceMs;
    if (noToken) {
      add('no_usable_token', {
        status: snapshot.status,
        since,
        reason: failure?.reason ?? null,
        message: failure?.message ?? null,
        nextAttemptAt: snapshot.nextAttemptAt,
      });
    }
    // An expired token is said by no_usable_token when that is on; the expiring-soon warning stays its own.
    if (rules.tokenExpiring.enabled && expiresAt !== null && !state.invalidated && !(noToken && expiresAt <= now)) {
      const left = expiresAt - now;
      if (left <= 0) add('token_expiring', { expired: 1, reason: failure?.reason ?? null });
      // A successful renewal replaces the token with one a day long: this close to expiry, none has succeeded.
      else if (left < rules.tokenExpiring.windowMs) add('token_expiring', { expired: 0, reason: failure?.reason ?? null });
    }
    for (const sink of sinks) {
      if (sink.healthy || sink.unhealthySince === null) continue;
      const brokenFor = now - sink.unhealthySince;
      const modeWrong = sink.present && sink.mode !== null && sink.mode !== sink.expectedMode;
      if (modeWrong && rules.fileModeNotPrivate.enabled && brokenFor >= rules.fileModeNotPrivate.graceMs) {
        add('file_mode_not_private', { ...sinkFacts(sink), since: sink.unhealthySince }, 'warning', sink.name);
      } else if (!modeWrong && rules.sinkUnrepairable.enabled && brokenFor >= rules.sinkUnrepairable.graceMs) {
        add('sink_unrepairable', { ...sinkFacts(sink), since: sink.unhealthySince }, 'critical', sink.name);
      }
    }
  }
  for (const session of realtime) {
    const add = (kind: AlertKind, facts: ActiveAlert['facts']) =>
      active.push({ key: alertKey(kind, session.account.name), kind, severity: ALERT_KINDS[kind].severity, account: session.account, facts, expiresAt: null });
    // Clients wait on it (it has registrations to carry) and it has not been open for the grace: every one of them is without data.
    if (rules.realtimeSessionDown.enabled && session.downSince !== null && now - session.downSince >= rules.realtimeSessionDown.graceMs) {
      add('realtime_session_down', { since: session.downSince, state: session.state, reason: session.lastEnd, registrations: session.registrations });
    }
    if (rules.realtimeRegistrationsFull.enabled && session.fullSince !== null && now - session.fullSince >= rules.realtimeRegistrationsFull.graceMs) {
      add('realtime_registrations_full', { since: session.fullSince, registrations: session.registrations, limit: session.limit });
    }
  }
  return active;
}

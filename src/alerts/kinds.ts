import type { AlertKind } from '../config/types';

/**
 * Each Slack alert kind, with the Prometheus alert (alerts/rules.yml) that watches the same condition: its
 * name is the runbook section both link to, so a Slack message and an Alertmanager page lead to one page.
 */
export const ALERT_KINDS: Record<AlertKind, { rule: string; severity: 'critical' | 'warning' }> = {
  renewal_failing: { rule: 'BrokerTokenRenewalFailing', severity: 'warning' },
  sink_unrepairable: { rule: 'BrokerTokenSinkFileMissing', severity: 'critical' },
  token_expiring: { rule: 'BrokerTokenExpiringWithoutRenewal', severity: 'critical' },
  token_invalidated: { rule: 'BrokerTokenDiedServerSide', severity: 'warning' },
  rate_limited: { rule: 'BrokerTokenRateLimited', severity: 'warning' },
  credentials_rejected: { rule: 'BrokerTokenCredentialsRejected', severity: 'critical' },
  file_mode_not_private: { rule: 'BrokerTokenSinkFileNotPrivate', severity: 'warning' },
  store_unavailable: { rule: 'BrokerTokenStoreUnavailable', severity: 'warning' },
  no_usable_token: { rule: 'BrokerTokenNotUsable', severity: 'critical' },
  realtime_session_down: { rule: 'BrokerTokenRealtimeSessionDown', severity: 'critical' },
  realtime_registrations_full: { rule: 'BrokerTokenRealtimeRegistrationsFull', severity: 'warning' },
};

export type Severity = 'critical' | 'warning' | 'info';

/** GitHub's anchor for a heading: lower-case, punctuation dropped. */
export function runbookLink(base: string, rule: string): string {
  return `${base}#${rule.toLowerCase()}`;
}

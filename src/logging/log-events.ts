import type { Clock } from '../core/clock';
import type { AdminAuthFailureReason, ConnectionDropReason } from '../core/errors';
import type { EventBus } from '../core/events';
import type { Logger } from './logger';
import { formatIsoInZone } from '../core/time';
import { LogThrottle } from './log-throttle';

/** Events that can come thousands of times a minute are logged once, then summarised at most this often. */
const REPEATED_EVENT_SUMMARY_MS = 60_000;

const DROP_EXPLAINED: Record<ConnectionDropReason, string> = {
  silent: 'it sent nothing within the first-byte timeout',
  evicted: 'it was idle and the connection limit was reached',
  refused: 'the connection limit was reached with every connection serving a request',
};

/**
 * Every event logged once, with the account and (where there is one) the reason, at a level an operator can
 * filter on; the HTTP events that a client or a scan can repeat at will are logged through a LogThrottle
 * (`clock` times it, `signal` ends it at shutdown). Secrets cannot reach these lines: events carry token ids,
 * never tokens, and the logger redacts every registered secret besides.
 */
export function logEvents(bus: EventBus, log: Logger, clock: Clock, signal: AbortSignal): void {
  const who = (account: { name: string; provider: string; env: string }) => ({ account: account.name, provider: account.provider, env: account.env });
  const kst = (ms: number | null) => (ms === null ? null : formatIsoInZone(ms));

  bus.on('issuance.attempt', (e) => log.info({ ...who(e.account), why: e.why }, 'requesting a token from the broker'));
  bus.on('issuance.issued', (e) =>
    log.info(
      { ...who(e.account), tokenId: e.tokenId, expiresAt: kst(e.expiresAt), durationMs: Math.round(e.durationMs), expiryClamped: e.expiryClamped || undefined },
      'new token received',
    ),
  );
  bus.on('issuance.same_token', (e) =>
    log.warn(
      { ...who(e.account), tokenId: e.tokenId, nextAttemptAt: kst(e.nextAttemptAt) },
      'the broker answered with the token it had already issued; not a renewal',
    ),
  );
  bus.on('issuance.failed', (e) =>
    log[e.reason === 'auth_rejected' ? 'error' : 'warn'](
      { ...who(e.account), reason: e.reason, consecutiveFailures: e.consecutiveFailures, nextAttemptAt: kst(e.nextAttemptAt) },
      `token request failed: ${e.message}`,
    ),
  );
  bus.on('issuance.blocked', (e) =>
    log.error(
      { ...who(e.account), reason: 'auth_rejected' },
      'credentials rejected by the broker; no further requests until the app key or secret changes (or renew --force)',
    ),
  );
  bus.on('token.adopted', (e) =>
    log.info(
      { ...who(e.account), from: e.from, tokenId: e.tokenId, expiresAt: kst(e.expiresAt) },
      'adopted a still-valid token from an existing file; no issuance',
    ),
  );
  bus.on('token.shared', (e) =>
    log.info({ ...who(e.account), tokenId: e.tokenId, expiresAt: kst(e.expiresAt) }, 'took up the token another replica issued (shared store)'),
  );
  bus.on('state.offered', (e) =>
    log.info({ ...who(e.account), revision: e.revision }, "offered this replica's state to the shared store, which had none or an older one"),
  );
  bus.on('store.health', (e) =>
    e.up
      ? log.info('shared state store reachable again')
      : log.error({ reason: e.message }, 'shared state store unreachable: serving the last good token from the local state, issuing nothing until it is back'),
  );
  // Each change once: the budget reports a change of mode, never every call that meets it.
  bus.on('budget.mode', (e) =>
    e.mode === 'fallback' ? log.warn({ mode: e.mode, replicas: e.replicas }, e.message) : log.info({ mode: e.mode, replicas: e.replicas }, e.message),
  );
  bus.on('config.reloaded', (e) =>
    log.info(
      { added: e.added, removed: e.removed, changed: e.changed, unchanged: e.unchanged, needsRestart: e.needsRestart.length > 0 ? e.needsRestart : undefined },
      e.needsRestart.length > 0 ? `configuration reloaded; a restart is needed to apply: ${e.needsRestart.join(', ')}` : 'configuration reloaded',
    ),
  );
  bus.on('config.reload_failed', (e) => log.error({ problems: e.problems }, 'configuration reload failed; the running configuration is kept'));
  bus.on('token.invalidated', (e) =>
    log.warn({ ...who(e.account), tokenId: e.tokenId, brokerCode: e.brokerCode }, `the broker refused the token: ${e.message}`),
  );
  bus.on('token.revoked', (e) => log.info({ ...who(e.account), tokenId: e.tokenId }, 'token revoked at the broker'));
  bus.on('approval_key.issued', (e) => log.info(who(e.account), 'WebSocket approval key received'));
  bus.on('approval_key.failed', (e) => log.warn({ ...who(e.account), reason: e.reason }, `approval key request failed: ${e.message}`));
  bus.on('proof.done', (e) => {
    if (e.result === 'ok') log.debug({ ...who(e.account), result: e.result, durationMs: Math.round(e.durationMs) }, 'token proven');
    else log.warn({ ...who(e.account), result: e.result }, `token proof ${e.result}: ${e.message ?? ''}`);
  });
  bus.on('probe.done', (e) => {
    if (!e.ok) log.warn(who(e.account), `custom probe failed: ${e.message}`);
  });
  bus.on('state.error', (e) => log.error({ ...who(e.account), reason: e.reason }, e.message));
  bus.on('sink.written', (e) => log.info({ ...who(e.account), sink: e.sink, path: e.path, cause: e.cause }, 'token file written'));
  bus.on('sink.repaired', (e) =>
    log.warn({ ...who(e.account), sink: e.sink, path: e.path, reason: e.reason }, 'token file repaired from the state (no issuance)'),
  );
  bus.on('sink.write_failed', (e) =>
    log[e.consecutiveFailures === 1 ? 'error' : 'warn'](
      { ...who(e.account), sink: e.sink, path: e.path, reason: e.reason, consecutiveFailures: e.consecutiveFailures },
      e.message,
    ),
  );
  bus.on('sink.recovered', (e) => log.info({ ...who(e.account), sink: e.sink, path: e.path }, 'token file writable again'));
  bus.on('sink.cleaned', (e) => log.info({ ...who(e.account), sink: e.sink, files: e.files }, 'old daily token files removed'));
  bus.on('sink.notify_failed', (e) => log.warn({ ...who(e.account), sink: e.sink }, e.message));
  bus.on('alert.notified', (e) =>
    log[e.phase === 'resolved' ? 'info' : 'warn'](
      { ...(e.account ? who(e.account) : {}), alert: e.kind, phase: e.phase, severity: e.severity },
      `alert ${e.phase}: ${e.key}`,
    ),
  );
  bus.on('slack.delivery', (e) => {
    if (e.result === 'sent') log.debug({ result: e.result }, `Slack message delivered: ${e.detail}`);
    else log[e.result === 'retried' ? 'info' : 'warn']({ result: e.result }, `Slack delivery ${e.result}: ${e.detail}`);
  });
  bus.on('alerts.state_error', (e) => log.error(e.message));

  // The admin token presented is never in the event, so it cannot be logged; the remote address says who.
  const adminFailures = new LogThrottle<AdminAuthFailureReason>(
    clock,
    REPEATED_EVENT_SUMMARY_MS,
    signal,
    (reason, remoteAddress) =>
      log.warn(
        { reason, remoteAddress },
        `admin request refused: ${reason === 'missing' ? 'no' : 'wrong'} bearer token; further refusals are summarised once a minute`,
      ),
    ({ count, reasons, sources }) =>
      log.warn({ count, reasons, remoteAddresses: sources }, `${count} more admin requests refused in the last minute (no or wrong bearer token)`),
  );
  bus.on('http.admin_auth_failed', (e) => adminFailures.record(e.reason, e.remoteAddress));
  const droppedConnections = new LogThrottle<ConnectionDropReason>(
    clock,
    REPEATED_EVENT_SUMMARY_MS,
    signal,
    (reason, remoteAddress) =>
      log.warn(
        { reason, remoteAddress },
        `HTTP connection closed to keep descriptors for the token files: ${DROP_EXPLAINED[reason]}; further ones are summarised once a minute`,
      ),
    ({ count, reasons, sources }) =>
      log.warn(
        { count, reasons, remoteAddresses: sources },
        `${count} more HTTP connections closed in the last minute to keep descriptors for the token files`,
      ),
  );
  bus.on('http.connection_dropped', (e) => droppedConnections.record(e.reason, e.remoteAddress));
}

/**
 * The endpoint's log lines, one per event that an operator acts on: the upstream session's changes (an end with
 * its reason), and, through a LogThrottle, refusals and clients closed, which a misbehaving client can repeat at
 * will. Frames and registrations are counted (metrics), not logged; no line carries a credential or a frame.
 */
import type { Clock } from '../core/clock';
import type { EventBus } from '../core/events';
import type { Logger } from '../logging/logger';
import { LogThrottle } from '../logging/log-throttle';

const SUMMARY_MS = 60_000;

export function logRealtimeEvents(bus: EventBus, log: Logger, clock: Clock, signal: AbortSignal): () => void {
  const who = (account: { name: string; provider: string; env: string } | null) =>
    account ? { account: account.name, provider: account.provider, env: account.env } : {};
  const refusals = new LogThrottle<string>(
    clock,
    SUMMARY_MS,
    signal,
    (reason, source) => log.warn({ reason, client: source }, "real-time endpoint refused a client request; the client was answered in the broker's words"),
    (summary) => log.warn({ count: summary.count, reasons: summary.reasons, clients: summary.sources }, 'real-time endpoint refusals since the last line'),
  );
  const closes = new LogThrottle<string>(
    clock,
    SUMMARY_MS,
    signal,
    (reason, source) => log.warn({ reason, client: source }, 'real-time endpoint closed a client'),
    (summary) => log.warn({ count: summary.count, reasons: summary.reasons, clients: summary.sources }, 'real-time clients closed since the last line'),
  );
  const off = [
    bus.on('realtime.session', (e) => {
      if (e.state === 'open') log.info(who(e.account), 'real-time session open at the broker');
      else if (e.reason === 'idle') log.info(who(e.account), 'real-time session closed: nothing registered');
      else if (e.reason !== null && e.reason !== 'shutdown')
        log.warn({ ...who(e.account), reason: e.reason, detail: e.message }, 'real-time session ended; reconnecting within the pacing rules');
    }),
    bus.on('realtime.lease', (e) => {
      const line = { ...who(e.account), change: e.change, detail: e.detail };
      if (e.change === 'acquired' || e.change === 'retaken' || e.change === 'released' || e.change === 'reachable')
        log.info(line, "this replica's hold on the deployment's real-time session changed");
      else log.warn(line, "this replica's hold on the deployment's real-time session changed: Redis out of reach, or the lease lost");
    }),
    bus.on('realtime.refused', (e) => {
      if (e.reason !== 'broker') refusals.record(e.reason, e.client ?? undefined);
    }),
    bus.on('realtime.client', (e) => {
      if (e.change === 'closed' && e.reason !== null && e.reason !== 'left' && e.reason !== 'shutdown') closes.record(e.reason, e.client ?? undefined);
    }),
  ];
  return () => off.forEach((unsubscribe) => unsubscribe());
}

/**
 * When the upstream session may be opened again: the one owner of reconnect timing, pure, so tests pin it.
 *
 * - Connect and close at least `MIN_GAP_MS` apart, either way (the notice's pacing, docs/brokers.md#kis-pacing):
 *   no connection opens within a second of the last one opening or closing, whatever the clients do.
 * - After an unhealthy session (one that ended within `HEALTHY_AFTER_MS` of opening, or never opened), the wait
 *   doubles from `initialDelay` up to `maxDelay`, with ±20 % jitter, never under `initialDelay`: a broker that
 *   refuses or drops every session sees one attempt per step, never a loop.
 * - A session that lived long enough resets the count: a session killed after an hour comes back in about a second.
 */

const MIN_GAP_MS = 1_000;
/** A session open this long was a good one: its end starts the backoff over. */
export const HEALTHY_AFTER_MS = 10_000;
const JITTER = 0.2;

export interface ReconnectPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
}

/** The wait after `failures` unhealthy sessions in a row (1 for the first end), before the gap rule. */
export function reconnectDelayMs(failures: number, policy: ReconnectPolicy, random: () => number): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, failures - 1));
  const jittered = Math.round(base * (1 + JITTER * (2 * random() - 1)));
  return Math.min(Math.max(jittered, policy.initialDelayMs, MIN_GAP_MS), Math.max(policy.maxDelayMs, MIN_GAP_MS));
}

/** The earliest instant a connection may open: the delay after the last close, and the gap after the last connect. */
export function earliestConnectAt(now: number, delayMs: number, lastConnectAt: number | undefined, lastCloseAt: number | undefined): number {
  let at = now;
  if (lastCloseAt !== undefined) at = Math.max(at, lastCloseAt + Math.max(delayMs, MIN_GAP_MS));
  if (lastConnectAt !== undefined) at = Math.max(at, lastConnectAt + MIN_GAP_MS);
  return at;
}

/** The earliest instant the sidecar may close a session it opened (idle, stalled): a second after it opened. */
export function earliestCloseAt(openedAt: number): number {
  return openedAt + MIN_GAP_MS;
}

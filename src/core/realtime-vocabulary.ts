import type { Env, Provider } from './brokers';

/**
 * The real-time endpoint's (src/realtime/) closed sets and its snapshot, here so that the events, the metrics and
 * the alerts below it can name them. The closed sets: the upstream session's states, why it ended (and so why
 * the next one is opened), why a client is closed, why a client's request is refused. Metrics pre-set every value
 * to 0, logs and alerts name them; nothing here comes from what a client sends.
 */

/** idle: no session needed; connecting: opening (or logging in); open: registrations can be made; down: waiting to reconnect. */
export const REALTIME_UPSTREAM_STATES = ['idle', 'connecting', 'open', 'down'] as const;
export type RealtimeUpstreamState = (typeof REALTIME_UPSTREAM_STATES)[number];

/**
 * Why an upstream session ended: the broker closed it (closed), the socket was cut or failed (dropped), no frame
 * came within the stall timeout (stalled), another session holds the app key (key_in_use, KIS OPSP8996), the
 * broker refused the approval key (approval_refused, OPSP0011), another login took the key (replaced, Kiwoom
 * R10001), the broker refused the login (login_failed), no connection could be made (connect_failed), the sidecar
 * had no approval key or token to offer (no_credential); or the sidecar closed it: nothing registered (idle), stopping (shutdown).
 */
export const REALTIME_END_REASONS = [
  'closed',
  'dropped',
  'stalled',
  'key_in_use',
  'approval_refused',
  'replaced',
  'login_failed',
  'connect_failed',
  'no_credential',
  'idle',
  'shutdown',
] as const;
export type RealtimeEndReason = (typeof REALTIME_END_REASONS)[number];

/** Why a session is opened: the first (nothing failed before it), or the unexpected end of the one before. */
export const REALTIME_CONNECT_REASONS = ['first', ...REALTIME_END_REASONS.filter((r) => r !== 'idle' && r !== 'shutdown')] as const;
export type RealtimeConnectReason = 'first' | Exclude<RealtimeEndReason, 'idle' | 'shutdown'>;

/**
 * Why the endpoint closed a client: it fell behind its queue's bound (slow), it went silent (silent: no valid
 * message after connecting, or no answer to the keep-alive), it never authenticated after a refusal (refused), its
 * place was needed (evicted), the sidecar stopped (shutdown). A client closing itself is `left`.
 */
export const REALTIME_CLIENT_CLOSE_REASONS = ['left', 'slow', 'silent', 'refused', 'evicted', 'shutdown'] as const;
export type RealtimeClientCloseReason = (typeof REALTIME_CLIENT_CLOSE_REASONS)[number];

/**
 * A client's request refused: unknown or wrong credential (unauthenticated), an account it may not use
 * (forbidden), the registration budget full (budget_full, KIS OPSP0008 answered locally), fill notices of an HTS id
 * it may not receive (fills_not_allowed), a message no broker takes (malformed), the broker's own refusal relayed
 * (broker), no place for the connection (full).
 */
export const REALTIME_REFUSAL_REASONS = ['unauthenticated', 'forbidden', 'budget_full', 'fills_not_allowed', 'malformed', 'broker', 'full'] as const;
export type RealtimeRefusalReason = (typeof REALTIME_REFUSAL_REASONS)[number];

/** What the metrics and the alerts read of a real-time session, once a second (and at each change). */
export interface RealtimeSnapshot {
  /** The account's labels (an AccountRef). */
  account: { name: string; provider: Provider; env: Env };
  state: RealtimeUpstreamState;
  /** Registrations counting against the limit now (wanted, or still at the broker). */
  registrations: number;
  limit: number;
  clients: number;
  /** Per client name: the most any of its connections has queued, in bytes. */
  queueBytes: Record<string, number>;
  /** Wall clock, epoch ms; null before the first frame. */
  lastFrameAt: number | null;
  /** Since when the session has been wanted and not open (wall clock), null while open or not wanted. */
  downSince: number | null;
  /** Since when every registration has been in use, null when not. */
  fullSince: number | null;
  /** Why the last session ended, if one did. */
  lastEnd: RealtimeEndReason | null;
  /** Frames from the broker, and frames handed to clients, since the last snapshot. */
  framesIn: number;
  framesOut: number;
}

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
 * had no approval key or token to offer (no_credential); or the sidecar closed it: nothing registered (idle), stopping
 * (shutdown). With replicas: the replica gave the session up because it no longer holds (or cannot prove) the lease
 * (lease_lost); on a replica relaying another's session, that holder's session ended or the holder went away (holder_lost).
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
  'lease_lost',
  'holder_lost',
] as const;
export type RealtimeEndReason = (typeof REALTIME_END_REASONS)[number];

/** Ends that are no reason to open a session again: the sidecar's own decisions, and a relayed session's ends. */
type NoReconnect = 'idle' | 'shutdown' | 'lease_lost' | 'holder_lost';
const noReconnect = (r: RealtimeEndReason): r is NoReconnect => r === 'idle' || r === 'shutdown' || r === 'lease_lost' || r === 'holder_lost';

/**
 * Why a session is opened: the first (nothing failed before it), the first of a replica that took the lease over
 * from another (takeover), or the unexpected end of the one before.
 */
export const REALTIME_CONNECT_REASONS = ['first', 'takeover', ...REALTIME_END_REASONS.filter((r) => !noReconnect(r))] as const;
export type RealtimeConnectReason = 'first' | 'takeover' | Exclude<RealtimeEndReason, NoReconnect>;

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

/**
 * With replicas, what happened to this replica's hold on an app key's one session (replicas.ts): it took the lease
 * (acquired), took it back after Redis lost it (retaken), lost it to another replica or could not prove it past the
 * outage hold (lost), gave it up when stopping (released); Redis out of reach (outage) and back (reachable).
 */
export const REALTIME_LEASE_CHANGES = ['acquired', 'retaken', 'lost', 'released', 'outage', 'reachable'] as const;
export type RealtimeLeaseChange = (typeof REALTIME_LEASE_CHANGES)[number];

/** Which way a frame went through Redis: published by the holder, or received by a replica relaying it. */
export const REALTIME_RELAY_DIRECTIONS = ['published', 'received'] as const;

/** A replica's part in its deployment's session, once a second: the metrics read it. */
export interface RealtimeRelaySnapshot {
  account: { name: string; provider: Provider; env: Env };
  /** This replica holds the lease (and so the session at the broker). */
  holder: boolean;
  /** Wall clock, epoch ms: when this replica took the lease (null while it does not hold it). */
  leaseAcquiredAt: number | null;
  /** This replica reaches Redis for the relay. */
  redisUp: boolean;
  /** Distinct registrations this replica's clients want, as last published to the holder. */
  wants: number;
  /** Since the last snapshot: frames published (holder), frames received through Redis, wants published. */
  framesPublished: number;
  framesReceived: number;
  wantsPublished: number;
  /** Since the last snapshot: each received frame's time from the holder's publish to its arrival here, ms (a sample when many). */
  lagsMs: number[];
}

/**
 * The vocabulary of the simulated real-time sessions (KIS and Kiwoom WebSockets): options, what the control API
 * lists and counts. Kept apart from the logic so the control API, the tests and the CLI share one definition.
 */
import type { Provider as SimulatedProvider } from '../../core/brokers';

export interface RealtimeOptions {
  /**
   * Data frames per second for each registered stream (a KIS (tr_id, tr_key), a Kiwoom (type, item)). Default 2;
   * 0 pauses the market. Changed at run time through `setFrameRate` or `POST /_sim/realtime/rate`.
   */
  framesPerSecond?: number;
  /** Records in each KIS data frame (its 3-digit count). Default 1, the usual count for a quote or a trade. */
  recordsPerFrame?: number;
  /** Between two KIS PINGPONG / Kiwoom PING messages. Default 110 s (third-party, docs/brokers.md#kis-pingpong). */
  pingIntervalMs?: number;
  /**
   * Consecutive pings left unanswered, a full interval each, after which the session is dropped. Default 2
   * (simulator choice: stricter than the broker, which drops a silent session only "overnight").
   */
  pingUnansweredLimit?: number;
  /** KIS registrations per session, all products together. Default 41 (docs/brokers.md#kis-real-time-session). */
  maxRegistrations?: number;
  /** A key's connection opened sooner than this after its previous one closed counts as a rapid reconnect. Default 1 s. */
  reconnectSpacingMs?: number;
  /** A session whose unsent bytes exceed this is dropped as too slow. Default 4 MiB (simulator choice). */
  maxBufferedBytes?: number;
}

export type ResolvedRealtimeOptions = Required<RealtimeOptions>;

/** Why the simulator ended a session (its own decisions; a client closing is 'client'). */
export const REALTIME_DROP_REASONS = ['client', 'refused', 'pingpong', 'killed', 'replaced', 'slow', 'reset'] as const;
export type RealtimeDropReason = (typeof REALTIME_DROP_REASONS)[number];

export interface RealtimeStats {
  /** WebSocket upgrades accepted on a broker path. */
  connects: number;
  /** Connections that became an app key's session (KIS: first accepted message; Kiwoom: LOGIN accepted). */
  sessions: number;
  /** Refusals by the broker's code: KIS `OPSP8996`, `OPSP0008`, `OPSP0011`, ...; Kiwoom LOGIN `8005`, ... */
  refusals: Record<string, number>;
  /** Registrations accepted (KIS OPSP0000; Kiwoom one per (type, item) of a REG). */
  registrations: number;
  unregistrations: number;
  /** The most registrations one session held at once. */
  peakRegistrations: number;
  /** Data frames sent (KIS market data and fill notices, Kiwoom REAL). */
  framesSent: number;
  /** Records in those frames. */
  recordsSent: number;
  /** Encrypted KIS fill notices among the frames. */
  fillNoticesSent: number;
  pingsSent: number;
  pingsAnswered: number;
  /** Sessions (or refused connections) ended, by who ended them and why. */
  closes: Record<RealtimeDropReason, number>;
  /** Connections of a key opened within `reconnectSpacingMs` of its previous connection closing. */
  rapidReconnects: number;
  /** The most sessions one app key held at the same time: 1 whenever the broker's rule held. */
  peakConcurrentSessions: number;
}

export interface RealtimeRegistration {
  /** KIS tr_id or Kiwoom type. */
  id: string;
  /** KIS tr_key or Kiwoom item. */
  key: string;
  /** Kiwoom only: the group it was registered in. */
  group?: string;
}

export interface RealtimeSessionInfo {
  id: number;
  provider: SimulatedProvider;
  /** Known once the connection is bound (KIS: its first accepted message; Kiwoom: LOGIN). */
  appKey?: string;
  openedAt: number;
  boundAt?: number;
  closedAt?: number;
  closedBy?: RealtimeDropReason;
  registrations: RealtimeRegistration[];
}

import type { HttpClientPolicy, ProofPolicy, RenewalPolicy } from './types';

/**
 * Built-in defaults, chosen from the broker's rules (docs/brokers.md) and the first system's settings.
 * The README's configuration reference documents each one; change them here and there together.
 */
export const DEFAULT_RENEWAL: RenewalPolicy = {
  // Renew one hour before expiry: the day's single issuance stays ~23 hours after the last one, far past
  // KIS's 6-hour same-token window, and the retries below all fit in that hour.
  renewBeforeMs: 60 * 60_000,
  jitterMs: 10 * 60_000,
  spacingMs: 60_000, // the strictest reading of "once per minute" (docs/brokers.md#kis-issuance-policy)
  schedule: undefined,
  scheduleMinAgeMs: 4.5 * 60 * 60_000, // the first system's age threshold, used only with `schedule`
  sameTokenWindowMs: 6 * 60 * 60_000,
  maxLifetimeMs: 24 * 60 * 60_000,
  retry: {
    attempts: 3, // as the first system: three attempts five minutes apart,
    initialDelayMs: 5 * 60_000,
    multiplier: 2, // then doubling,
    maxDelayMs: 60 * 60_000, // up to an hour between attempts.
    jitter: 0.1,
  },
};

export const DEFAULT_PROOF: ProofPolicy = {
  enabled: true,
  // One call each half hour costs 48 of the per-second quota a day and finds a token killed by broker
  // maintenance long before the next market open.
  intervalMs: 30 * 60_000,
};

export const DEFAULT_HTTP_CLIENT: HttpClientPolicy = {
  connectTimeoutMs: 5_000,
  timeoutMs: 15_000,
};

export const DEFAULT_PROBE_INTERVAL_MS = 60_000;
export const DEFAULT_PROBE_TIMEOUT_MS = 5_000;
export const DEFAULT_NOTIFY_TIMEOUT_MS = 10_000;
export const DEFAULT_FILE_MODE = 0o600;
export const DEFAULT_DIR_MODE = 0o700;
export const DEFAULT_KEEP_DAYS = 7; // as the first system
export const DEFAULT_SINK_TIME_ZONE = 'Asia/Seoul';
/**
 * The clocks kis_auth.py readers run on: KST hosts, containers (UTC unless told otherwise), and this host's own
 * zone (added when it differs), for a bot started beside the sidecar.
 */
export const DEFAULT_READER_TIME_ZONES = ['Asia/Seoul', 'UTC'];
/** The next day's kis_auth.py file is written this long before each reader zone's midnight. */
export const DEFAULT_WRITE_AHEAD_MS = 10 * 60_000;
export const DEFAULT_STATE_DIR = 'data/state';
export const DEFAULT_SERVER = { enabled: true, host: '127.0.0.1', port: 9464, requestTimeoutMs: 10_000 };

/**
 * The gateway: off unless asked; loopback, the port after the metrics one. A call waits at most 2 s for its place in
 * the budget (a bot's own HTTP timeout is usually 5-10 s), and the budget counts one-second windows 50 ms wide
 * more, for the network between the grant and the broker's count.
 */
export const DEFAULT_GATEWAY = { host: '127.0.0.1', port: 9465, maxWaitMs: 2_000, windowMarginMs: 50 };
/**
 * The brokers' per-second call limits per app key (docs/brokers.md#kis-call-limits, #kiwoom-call-limits). Kiwoom
 * publishes none; its clients' authors measured about 1 per second per api-id, so that is the default there.
 */
export const DEFAULT_CALLS_PER_SECOND = { kis: { real: 18, mock: 1 }, kiwoom: { real: 1, mock: 1 } } as const;

/** Exact credential lengths KIS issues (docs/brokers.md#kis-credentials); a wrong one is usually a pasted newline. */
export const KIS_APP_KEY_LENGTH = 36;
export const KIS_APP_SECRET_LENGTH = 180;
export const MIN_ADMIN_TOKEN_LENGTH = 16;

/** Where runbook links point unless `slack.runbookUrl` names a copy of docs/runbooks.md of one's own. */
export const DEFAULT_RUNBOOK_URL = 'https://github.com/broker-token-sidecar/broker-token-sidecar/blob/main/docs/runbooks.md';

export const DEFAULT_SLACK = {
  language: 'en' as const,
  repeatIntervalMs: 4 * 60 * 60_000, // as Alertmanager's default repeat_interval
  evaluationIntervalMs: 10_000,
  timeoutMs: 10_000,
  queueSize: 100,
  retry: { attempts: 5, initialDelayMs: 1_000, maxDelayMs: 5 * 60_000 },
  renewalFailingThreshold: 3, // as the first system
  // A file deleted and repaired within this never alerts; one still broken after it does.
  sinkGraceMs: 30_000,
  // Every program beside the sidecar is without a token: a first issuance takes seconds, so a minute without
  // one (at first start too) is worth waking someone.
  noUsableTokenGraceMs: 60_000,
  // Renewal starts 60-70 minutes before expiry: with less than 45 left, it has been failing for a while.
  tokenExpiringWindowMs: 45 * 60_000,
  // Clients wait on a session that is down: a reconnect takes a second or two, a minute of it is an outage.
  realtimeSessionDownGraceMs: 60_000,
  // Full for a moment is a client registering its 41st; full for five minutes, someone is being refused.
  realtimeRegistrationsFullGraceMs: 5 * 60_000,
};

export const DEFAULT_REDIS = {
  keyPrefix: 'broker-token-sidecar:',
  lockTtlMs: 30_000, // twice the default request timeout
  connectTimeoutMs: 5_000,
};
/** A thousand accounts starting at once ask the broker eight at a time. */
export const DEFAULT_MAX_CONCURRENT_REQUESTS = 8;

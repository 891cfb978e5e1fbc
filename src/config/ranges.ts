/**
 * The range every duration key of the config accepts, in one table so that the schema, the README's
 * configuration reference and the tests read the same numbers. A value outside its range is refused at load,
 * naming the key and the bound, rather than breaking a timer or `/status` hours later (a spacing of 999999999
 * days overflows every timer and every date). The brokers' own floors (docs/brokers.md) come on top of these,
 * where the account talks to a broker's own host: see floors.ts.
 */

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/**
 * Node's setTimeout fires at once (with a warning) for any delay above 2^31-1 ms, about 24.8 days: a longer
 * duration used as a timer becomes a busy loop. Every maximum below stays under it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

interface DurationRange {
  minMs: number;
  maxMs: number;
}

const range = (minMs: number, maxMs: number): DurationRange => ({ minMs, maxMs });

// A token lives 24 hours (docs/brokers.md#kis-issuance-policy): a margin, an age or a window longer than that is
// past the life of any token, and a retry or an alert that far off comes after the token is gone.
const TOKEN_LIFE = range(0, 24 * HOUR);
// A network request: 0 would fail every request (or, to some clients, mean "no timeout"); nothing answers
// in under 100 ms, and a request still open after 5 minutes holds its issuance lease for nothing.
const REQUEST_TIMEOUT = range(100, 5 * MINUTE);
// Grace periods of alerts: 0 alerts at once; beyond a token's life the alert could never fire in time.
const ALERT_GRACE = TOKEN_LIFE;

export const DURATION_RANGES = {
  'renewal.renewBefore': TOKEN_LIFE,
  'renewal.jitter': TOKEN_LIFE,
  // The strictest reading the brokers publish is 5 minutes; an hour between two requests for one app key would
  // leave the default hour of renewal margin no room for a retry.
  'renewal.spacing': range(0, HOUR),
  'renewal.scheduleMinAge': TOKEN_LIFE,
  'renewal.sameTokenWindow': TOKEN_LIFE,
  // A broker expiry is capped at this: under a minute no token could be used, over a day none is issued.
  'renewal.maxLifetime': range(MINUTE, 24 * HOUR),
  // Between failed attempts: an hour is the default ceiling of the whole backoff; a day, a token's life.
  'renewal.retry.initialDelay': range(0, HOUR),
  'renewal.retry.maxDelay': TOKEN_LIFE,
  // 0 would prove (or probe) in a busy loop, even against the simulator: at most once a second.
  'proof.interval': range(SECOND, 24 * HOUR),
  'probe.interval': range(SECOND, 24 * HOUR),
  'probe.timeout': REQUEST_TIMEOUT,
  'http.connectTimeout': REQUEST_TIMEOUT,
  'http.timeout': REQUEST_TIMEOUT,
  // A notify command restarts or signals a bot: 10 minutes is more than any restart should take.
  'notify.timeout': range(100, 10 * MINUTE),
  // The next day's kis_auth.py file is written at most half a day ahead, while today's is still in use.
  'sink.writeAhead': range(0, 12 * HOUR),
  // 0 means "no timeout" to Node's HTTP server; a scrape or an admin call is answered in seconds.
  'server.requestTimeout': range(SECOND, 10 * MINUTE),
  // A reminder more often than each minute floods the channel; less often than weekly is forgotten.
  'slack.repeatInterval': range(MINUTE, 7 * 24 * HOUR),
  // How often alert conditions are evaluated: 0 is a busy loop; 10 minutes late is too late for an alert.
  'slack.evaluationInterval': range(100, 10 * MINUTE),
  'slack.timeout': REQUEST_TIMEOUT,
  // Slack, not the broker: short delays are harmless, and the attempts are capped.
  'slack.retry.initialDelay': range(10, HOUR),
  'slack.retry.maxDelay': range(10, 24 * HOUR),
  'slack.alerts.sinkUnrepairable.grace': ALERT_GRACE,
  'slack.alerts.tokenExpiring.window': ALERT_GRACE,
  'slack.alerts.fileModeNotPrivate.grace': ALERT_GRACE,
  'slack.alerts.storeUnavailable.grace': ALERT_GRACE,
  'slack.alerts.noUsableToken.grace': ALERT_GRACE,
  'slack.alerts.realtimeSessionDown.grace': ALERT_GRACE,
  'slack.alerts.realtimeRegistrationsFull.grace': ALERT_GRACE,
  // An issuance lease must outlive any request (checked against the timeouts); an hour-long lease left by a
  // dead holder would block issuance for that long.
  'store.lockTtl': range(SECOND, HOUR),
  'store.connectTimeout': REQUEST_TIMEOUT,
  // A call waits this long at most for its place in the per-second budget; 0 refuses at once when the budget is spent.
  'gateway.maxWait': range(0, MINUTE),
  // Between the budget's grant and the broker's count lie the network and the broker's own clock: the window
  // the gateway counts is one second plus this margin. Over a second would halve the budget.
  'gateway.windowMargin': range(0, SECOND),
  // The real-time endpoint (config/realtime.ts). An upstream session held open for nothing costs the broker a
  // session; closed at once, the next registration pays a reconnect: between the two, up to a day.
  'realtime.idleClose': range(SECOND, 24 * HOUR),
  // Between two registrations sent upstream: the notice asks for them spaced; a second each would take 41 s to
  // replay a full set after a reconnect.
  'realtime.registrationSpacing': range(0, SECOND),
  // No frame (data, PINGPONG, pong) for this long: the session is stalled. The endpoint pings at a third of it.
  'realtime.stallTimeout': range(3 * SECOND, 10 * MINUTE),
  // The notice's pacing: connect and close at least 1 s apart, so no reconnect comes sooner.
  'realtime.reconnect.initialDelay': range(SECOND, MINUTE),
  'realtime.reconnect.maxDelay': range(SECOND, HOUR),
  // Kiwoom: after another login took the key (R10001), the wait before taking it back.
  'realtime.afterReplaced': range(SECOND, 24 * HOUR),
  // With replicas: the lease on the app key's one session. A holder SIGKILLed is replaced within about a lease and a
  // second; under a second, a busy host's pause would hand the session around; over 30 s, an outage of that length.
  'realtime.replicas.leaseTtl': range(SECOND, 30 * SECOND),
  // How long a holder that cannot reach Redis keeps its session for its own clients (0: only while its lease is
  // proven). After Redis returns, the others wait as long for it before one of them opens a session of its own.
  'realtime.replicas.outageHold': range(0, HOUR),
  // A client this far behind is closed: under a second closes a client for a hiccup, over a minute is no longer real time.
  'realtime.client.maxQueueDelay': range(100, MINUTE),
  'realtime.client.pingInterval': range(SECOND, 10 * MINUTE),
} as const satisfies Record<string, DurationRange>;

export type DurationKey = keyof typeof DURATION_RANGES;

/** Largest uid or gid: 2^32-1 is (uid_t)-1, "no change" to chown. */
export const MAX_ID = 2 ** 32 - 2;

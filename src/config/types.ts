/** The validated, fully defaulted configuration everything inside the sidecar trusts. */

import type { Env, Provider } from '../core/brokers';

export type { Env, Provider };
export type JsonLayout = 'kis-client' | 'overseas-cache' | 'kiwoom-token' | 'raw';

export interface RetryPolicy {
  /** Attempts made `initialDelayMs` apart before the delay starts to grow. */
  attempts: number;
  initialDelayMs: number;
  multiplier: number;
  maxDelayMs: number;
  /** Fraction of each delay drawn at random, so replicas and accounts do not retry in lockstep. */
  jitter: number;
}

export interface RenewalPolicy {
  /** Renew when less than this is left before expiry. */
  renewBeforeMs: number;
  /** Renew up to this much earlier still, drawn once per token. */
  jitterMs: number;
  /** Never two issuance requests for one app key closer than this. */
  spacingMs: number;
  /** Optional cron expression (Asia/Seoul) for renewals of tokens older than `scheduleMinAgeMs`. */
  schedule: string | undefined;
  scheduleMinAgeMs: number;
  /** KIS answers with the same token when asked again within this long of an issuance. */
  sameTokenWindowMs: number;
  /** The longest a token is believed to live, whatever the broker's expiry says. */
  maxLifetimeMs: number;
  retry: RetryPolicy;
}

export interface ProofPolicy {
  enabled: boolean;
  intervalMs: number;
}

export interface HttpClientPolicy {
  connectTimeoutMs: number;
  timeoutMs: number;
}

export interface ProbeConfig {
  url: string;
  intervalMs: number;
  timeoutMs: number;
}

export interface FileAccess {
  mode: number;
  dirMode: number;
  owner: number | undefined;
  group: number | undefined;
  followSymlinks: boolean;
}

export interface NotifyConfig {
  command: string[] | undefined;
  signal: NodeJS.Signals | undefined;
  pidFile: string | undefined;
  timeoutMs: number;
}

interface SinkCommon {
  name: string;
  access: FileAccess;
  notify: NotifyConfig | undefined;
}

export interface KisAuthSinkConfig extends SinkCommon {
  format: 'kis-auth';
  dir: string;
  /**
   * Zones whose calendar date may name the daily file: kis_auth.py uses the reader's own local date, so the
   * file is kept under the date of each (deduplicated, never empty).
   */
  readerTimeZones: string[];
  /** How long before each reader zone's midnight the next day's file is written. */
  writeAheadMs: number;
  /** Zone whose wall clock `valid-date` is written in (kis_auth.py compares it with the reader's local clock). */
  validDateTimeZone: string;
  keepDays: number;
}

export interface JsonSinkConfig extends SinkCommon {
  format: 'json';
  path: string;
  layout: JsonLayout;
  timeZone: string;
}

export interface ApprovalKeySinkConfig extends SinkCommon {
  format: 'approval-key';
  path: string;
}

/** The file python-kis keeps with `keep_token=DIR`, under the name it computes itself. */
export interface PythonKisSinkConfig extends SinkCommon {
  format: 'python-kis';
  dir: string;
  /** `dir` joined with python-kis's own file name (see pythonKisFileName); computed once, at load. */
  path: string;
}

export type SinkConfig = KisAuthSinkConfig | JsonSinkConfig | ApprovalKeySinkConfig | PythonKisSinkConfig;

export interface AccountConfig {
  name: string;
  provider: Provider;
  env: Env;
  appKey: string;
  appSecret: string;
  baseUrl: string;
  /** The broker's WebSocket host (KIS `ops`, Kiwoom's socket host), without a path: the real-time endpoint's upstream. */
  websocketUrl: string;
  renewal: RenewalPolicy;
  proof: ProofPolicy;
  http: HttpClientPolicy;
  probe: ProbeConfig | undefined;
  sinks: SinkConfig[];
}

export interface ServerConfig {
  enabled: boolean;
  host: string;
  port: number;
  adminToken: string | undefined;
  requestTimeoutMs: number;
}

export interface GatewayClientConfig {
  name: string;
  accounts: string[];
  /** The local app key the client sends (KIS: in every call's `appkey` header; both: in its token request). */
  appKey: string;
  /** SHA-256 of the local app secret: the gateway compares digests, so it never holds a client's secret. */
  appSecretSha256: Buffer;
}

export interface GatewayConfig {
  enabled: boolean;
  host: string;
  port: number;
  maxWaitMs: number;
  windowMarginMs: number;
  /** Per account name; accounts not listed use the broker's published limit (defaults.ts). */
  callsPerSecond: Record<string, number>;
  clients: GatewayClientConfig[];
  /** Where the key that signs local tokens lives (generated there, mode 0600, when missing). */
  tokenKeyFile: string;
}

/** The real-time endpoint (src/realtime/): one WebSocket session per app key, shared by the gateway's clients. */
export interface RealtimeConfig {
  enabled: boolean;
  host: string;
  port: number;
  /** Client connections at once, all accounts together (each a descriptor). */
  maxClients: number;
  /** Hold the upstream session open with no registration; otherwise it opens at the first and closes `idleCloseMs` after the last. */
  keepOpen: boolean;
  idleCloseMs: number;
  /** Between two registrations sent to the broker (a replay after a reconnect included). */
  registrationSpacingMs: number;
  /** No frame from the broker for this long: the session is stalled, and replaced. */
  stallTimeoutMs: number;
  reconnect: { initialDelayMs: number; maxDelayMs: number };
  /** Kiwoom: how long to leave the key to whoever logged in with it (R10001) before logging in again. */
  afterReplacedMs: number;
  /**
   * With a Redis store, the replicas hold one session per app key between them (src/realtime/replicas.ts): the
   * holder's lease lives `leaseTtlMs` past its last renewal; cut off from Redis, it keeps its session `outageHoldMs`.
   */
  replicas: { leaseTtlMs: number; outageHoldMs: number };
  /** The bound of each client's queue: past either, the client is closed (never the others delayed). */
  client: { maxQueueBytes: number; maxQueueDelayMs: number; pingIntervalMs: number };
  /** Client name → the HTS ids whose fill notices it may receive. */
  fills: Record<string, string[]>;
}

export type AlertKind =
  | 'renewal_failing'
  | 'sink_unrepairable'
  | 'token_expiring'
  | 'token_invalidated'
  | 'rate_limited'
  | 'credentials_rejected'
  | 'file_mode_not_private'
  | 'store_unavailable'
  | 'no_usable_token'
  | 'realtime_session_down'
  | 'realtime_registrations_full';

export interface SlackConfig {
  webhookUrl: string;
  /** Critical alerts go here instead, when set. */
  criticalWebhookUrl: string | undefined;
  language: 'en' | 'ko';
  repeatIntervalMs: number;
  evaluationIntervalMs: number;
  runbookUrl: string;
  dashboardUrl: string | undefined;
  timeoutMs: number;
  queueSize: number;
  retry: { attempts: number; initialDelayMs: number; maxDelayMs: number };
  alerts: {
    renewalFailing: { enabled: boolean; threshold: number };
    sinkUnrepairable: { enabled: boolean; graceMs: number };
    tokenExpiring: { enabled: boolean; windowMs: number };
    tokenInvalidated: { enabled: boolean };
    rateLimited: { enabled: boolean };
    credentialsRejected: { enabled: boolean };
    fileModeNotPrivate: { enabled: boolean; graceMs: number };
    storeUnavailable: { enabled: boolean; graceMs: number };
    noUsableToken: { enabled: boolean; graceMs: number };
    realtimeSessionDown: { enabled: boolean; graceMs: number };
    realtimeRegistrationsFull: { enabled: boolean; graceMs: number };
  };
  notices: { renewed: boolean; lifecycle: boolean };
}

export interface RedisStoreConfig {
  type: 'redis';
  url: string;
  username: string | undefined;
  password: string | undefined;
  tls: { ca: string | undefined; rejectUnauthorized: boolean } | undefined;
  keyPrefix: string;
  /** How long an issuance lock lives if its holder dies: longer than any request can take. */
  lockTtlMs: number;
  connectTimeoutMs: number;
}

export type StoreConfig = { type: 'file' } | RedisStoreConfig;

export interface SidecarConfig {
  /** The file this was read from (absolute), or a description for an embedded config. */
  source: string;
  stateDir: string;
  /** `timeZone`: of the pretty form's timestamps (the JSON form's are UTC, for machines). */
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent'; format: 'json' | 'pretty'; timeZone: string };
  server: ServerConfig;
  /** Also export the first system's kis_token_age_hours and kis_token_renewals_total. */
  metrics: { compat: boolean };
  slack: SlackConfig | undefined;
  store: StoreConfig;
  gateway: GatewayConfig;
  realtime: RealtimeConfig;
  /** Broker requests (issuance, proofs, approval keys, revokes) in flight at once, across all accounts. */
  limits: { maxConcurrentRequests: number };
  accounts: AccountConfig[];
}

import { z } from 'zod';
import { formatDuration, parseDuration } from '../core/duration';
import { DURATION_RANGES, MAX_ID, type DurationKey } from './ranges';

/**
 * The config file's shape. Every object is strict (an unknown key is an error, since a misspelt key silently
 * ignored is a setting the user believes in and does not have). Fields that have a sensible default are
 * optional here and filled in by `resolve.ts`, so `defaults:` and each account share one schema.
 */

const DURATION_RULE = 'must be a duration such as 90s, 5m or 4h30m';

/**
 * A duration within its key's range (ranges.ts). Messages give the rule and the bound, never the value: a secret
 * pasted into the wrong key must not be printed back.
 */
const duration = (key: DurationKey) =>
  z.unknown().transform((value, ctx) => {
    const ms = typeof value === 'string' || typeof value === 'number' ? parseDuration(value) : undefined;
    const { minMs, maxMs } = DURATION_RANGES[key];
    if (ms === undefined) ctx.addIssue({ code: 'custom', message: DURATION_RULE });
    else if (ms < minMs) ctx.addIssue({ code: 'custom', message: `must be at least ${formatDuration(minMs)}` });
    else if (ms > maxMs) ctx.addIssue({ code: 'custom', message: `must be at most ${formatDuration(maxMs)}` });
    else return ms;
    return z.NEVER;
  });

// YAML 1.2 reads 0640 as the decimal 640, so a mode must be quoted to mean what it says.
// A value from \${ENV} is always text; numbers and booleans written that way are read as what they say.
const numberFromText = (value: unknown) => (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : value);
const booleanFromText = (value: unknown) => (value === 'true' ? true : value === 'false' ? false : value);
const int = () => z.preprocess(numberFromText, z.number().int());
const num = () => z.preprocess(numberFromText, z.number());
const bool = () => z.preprocess(booleanFromText, z.boolean());

const octalMode = z.unknown().transform((value, ctx) => {
  if (typeof value !== 'string' || !/^0?[0-7]{3}$/.test(value)) {
    ctx.addIssue({ code: 'custom', message: 'must be an octal string in quotes, such as "0600"' });
    return z.NEVER;
  }
  return parseInt(value, 8);
});
const id = int().pipe(z.number().min(0).max(MAX_ID));
const nonEmpty = z.string().min(1, 'must not be empty');

const retrySchema = z.strictObject({
  attempts: int().pipe(z.number().min(1).max(100)).optional(),
  initialDelay: duration('renewal.retry.initialDelay').optional(),
  multiplier: num().pipe(z.number().min(1).max(10)).optional(),
  maxDelay: duration('renewal.retry.maxDelay').optional(),
  jitter: num().pipe(z.number().min(0).max(1)).optional(),
});

export const renewalSchema = z.strictObject({
  renewBefore: duration('renewal.renewBefore').optional(),
  jitter: duration('renewal.jitter').optional(),
  spacing: duration('renewal.spacing').optional(),
  schedule: z.string().optional(),
  scheduleMinAge: duration('renewal.scheduleMinAge').optional(),
  sameTokenWindow: duration('renewal.sameTokenWindow').optional(),
  maxLifetime: duration('renewal.maxLifetime').optional(),
  retry: retrySchema.optional(),
});

const proofSchema = z.strictObject({
  enabled: bool().optional(),
  interval: duration('proof.interval').optional(),
});

const httpClientSchema = z.strictObject({
  connectTimeout: duration('http.connectTimeout').optional(),
  timeout: duration('http.timeout').optional(),
});

const fileAccess = {
  mode: octalMode.optional(),
  dirMode: octalMode.optional(),
  owner: id.optional(),
  group: id.optional(),
  followSymlinks: bool().optional(),
};

const notifySchema = z.strictObject({
  command: z.union([nonEmpty, z.array(nonEmpty).min(1, 'must have at least 1 item')]).optional(),
  signal: z
    .string()
    .regex(/^SIG[A-Z0-9]+$/, 'must be a signal name such as SIGHUP')
    .optional(),
  pidFile: nonEmpty.optional(),
  timeout: duration('notify.timeout').optional(),
});

const JSON_LAYOUTS = ['kis-client', 'overseas-cache', 'kiwoom-token', 'raw'] as const;

export const sinkSchema = z.discriminatedUnion('format', [
  z.strictObject({
    format: z.literal('kis-auth'),
    name: nonEmpty.optional(),
    dir: nonEmpty,
    readerTimeZones: z.array(nonEmpty).min(1, 'must list at least 1 zone').max(16).optional(),
    writeAhead: duration('sink.writeAhead').optional(),
    timeZone: nonEmpty.optional(),
    validDateTimeZone: nonEmpty.optional(),
    keepDays: int().pipe(z.number().min(0).max(3650)).optional(),
    notify: notifySchema.optional(),
    ...fileAccess,
  }),
  z.strictObject({
    format: z.literal('json'),
    name: nonEmpty.optional(),
    path: nonEmpty,
    layout: z.enum(JSON_LAYOUTS).optional(),
    timeZone: nonEmpty.optional(),
    notify: notifySchema.optional(),
    ...fileAccess,
  }),
  z.strictObject({
    format: z.literal('python-kis'),
    name: nonEmpty.optional(),
    dir: nonEmpty,
    htsId: nonEmpty,
    notify: notifySchema.optional(),
    ...fileAccess,
  }),
  z.strictObject({
    format: z.literal('approval-key'),
    name: nonEmpty.optional(),
    path: nonEmpty,
    notify: notifySchema.optional(),
    ...fileAccess,
  }),
]);

const probeSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
  interval: duration('probe.interval').optional(),
  timeout: duration('probe.timeout').optional(),
});

export const PROVIDERS = ['kis', 'kiwoom'] as const;
export const ENVS = ['real', 'mock'] as const;

export const accountSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be 1-63 lower-case letters, digits, "-" or "_"'),
  provider: z.enum(PROVIDERS),
  env: z.enum(ENVS).optional(),
  appKey: z.string().optional(),
  appKeyFile: nonEmpty.optional(),
  appSecret: z.string().optional(),
  appSecretFile: nonEmpty.optional(),
  baseUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  /** The broker's WebSocket host, for the real-time endpoint's one session (config/realtime.ts has the default). */
  websocketUrl: z.url({ protocol: /^wss?$/, error: 'must be a ws(s) URL' }).optional(),
  renewal: renewalSchema.optional(),
  proof: proofSchema.optional(),
  http: httpClientSchema.optional(),
  probe: probeSchema.optional(),
  // At least one, unless the gateway serves the account (checked with the gateway, config/gateway.ts).
  sinks: z.array(sinkSchema),
});

const alertToggle = z.strictObject({ enabled: bool().optional() });

const slackSchema = z.strictObject({
  webhookUrl: z.string().optional(),
  webhookUrlFile: nonEmpty.optional(),
  criticalWebhookUrl: z.string().optional(),
  criticalWebhookUrlFile: nonEmpty.optional(),
  language: z.enum(['en', 'ko']).optional(),
  repeatInterval: duration('slack.repeatInterval').optional(),
  evaluationInterval: duration('slack.evaluationInterval').optional(),
  runbookUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  dashboardUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  timeout: duration('slack.timeout').optional(),
  queueSize: int().pipe(z.number().min(1).max(10_000)).optional(),
  retry: z
    .strictObject({
      attempts: int().pipe(z.number().min(1).max(20)).optional(),
      initialDelay: duration('slack.retry.initialDelay').optional(),
      maxDelay: duration('slack.retry.maxDelay').optional(),
    })
    .optional(),
  alerts: z
    .strictObject({
      renewalFailing: z.strictObject({ enabled: bool().optional(), threshold: int().pipe(z.number().min(1).max(100)).optional() }).optional(),
      sinkUnrepairable: z.strictObject({ enabled: bool().optional(), grace: duration('slack.alerts.sinkUnrepairable.grace').optional() }).optional(),
      tokenExpiring: z.strictObject({ enabled: bool().optional(), window: duration('slack.alerts.tokenExpiring.window').optional() }).optional(),
      tokenInvalidated: alertToggle.optional(),
      rateLimited: alertToggle.optional(),
      credentialsRejected: alertToggle.optional(),
      fileModeNotPrivate: z.strictObject({ enabled: bool().optional(), grace: duration('slack.alerts.fileModeNotPrivate.grace').optional() }).optional(),
      storeUnavailable: z.strictObject({ enabled: bool().optional(), grace: duration('slack.alerts.storeUnavailable.grace').optional() }).optional(),
      noUsableToken: z.strictObject({ enabled: bool().optional(), grace: duration('slack.alerts.noUsableToken.grace').optional() }).optional(),
      realtimeSessionDown: z.strictObject({ enabled: bool().optional(), grace: duration('slack.alerts.realtimeSessionDown.grace').optional() }).optional(),
      realtimeRegistrationsFull: z
        .strictObject({ enabled: bool().optional(), grace: duration('slack.alerts.realtimeRegistrationsFull.grace').optional() })
        .optional(),
    })
    .optional(),
  notices: z.strictObject({ renewed: bool().optional(), lifecycle: bool().optional() }).optional(),
});

export const storeSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('file') }),
  z.strictObject({
    type: z.literal('redis'),
    url: z.string().regex(/^rediss?:\/\/[^\s]+$/, 'must be a redis:// or rediss:// URL'),
    username: z.string().optional(),
    password: z.string().optional(),
    passwordFile: nonEmpty.optional(),
    tls: z.strictObject({ caFile: nonEmpty.optional(), rejectUnauthorized: bool().optional() }).optional(),
    keyPrefix: nonEmpty.optional(),
    lockTtl: duration('store.lockTtl').optional(),
    connectTimeout: duration('store.connectTimeout').optional(),
  }),
]);

const gatewayClientSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, dots, dashes or underscores'),
  accounts: z.array(nonEmpty).min(1, 'must list at least 1 account'),
  appKey: nonEmpty,
  appSecret: z.string().optional(),
  appSecretFile: nonEmpty.optional(),
  /** The SHA-256 of the local secret (hex), as `gateway add-client` writes it: the config then holds no secret. */
  appSecretSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits')
    .optional(),
});

const gatewaySchema = z.strictObject({
  enabled: bool().optional(),
  host: nonEmpty.optional(),
  port: int().pipe(z.number().min(0).max(65535)).optional(),
  maxWait: duration('gateway.maxWait').optional(),
  windowMargin: duration('gateway.windowMargin').optional(),
  /** Calls per second per account, instead of the broker's published limit (lower, for a share kept outside). */
  callsPerSecond: z.record(z.string(), int().pipe(z.number().min(1).max(1_000_000))).optional(),
  clients: z.array(gatewayClientSchema).optional(),
  /**
   * A YAML file holding the list of clients instead of `clients` (config/clients-file.ts): `gateway add-client`
   * appends to it, so a client can be made before the rest of the config is complete.
   */
  clientsFile: nonEmpty.optional(),
  /** Signs the local tokens handed to clients; generated in the state directory when not given. */
  tokenKeyFile: nonEmpty.optional(),
});

/** The real-time endpoint (config/realtime.ts): one WebSocket session per app key, shared by the gateway's clients. */
const realtimeSchema = z.strictObject({
  enabled: bool().optional(),
  host: nonEmpty.optional(),
  port: int().pipe(z.number().min(0).max(65535)).optional(),
  maxClients: int().pipe(z.number().min(1).max(1_024)).optional(),
  keepOpen: bool().optional(),
  idleClose: duration('realtime.idleClose').optional(),
  registrationSpacing: duration('realtime.registrationSpacing').optional(),
  stallTimeout: duration('realtime.stallTimeout').optional(),
  reconnect: z
    .strictObject({
      initialDelay: duration('realtime.reconnect.initialDelay').optional(),
      maxDelay: duration('realtime.reconnect.maxDelay').optional(),
    })
    .optional(),
  afterReplaced: duration('realtime.afterReplaced').optional(),
  /** With a Redis store: how the replicas share the app key's one session (src/realtime/replicas.ts). */
  replicas: z
    .strictObject({
      leaseTtl: duration('realtime.replicas.leaseTtl').optional(),
      outageHold: duration('realtime.replicas.outageHold').optional(),
    })
    .optional(),
  client: z
    .strictObject({
      maxQueueBytes: int()
        .pipe(
          z
            .number()
            .min(16 * 1024)
            .max(64 * 1024 * 1024),
        )
        .optional(),
      maxQueueDelay: duration('realtime.client.maxQueueDelay').optional(),
      pingInterval: duration('realtime.client.pingInterval').optional(),
    })
    .optional(),
  /** Client name → the HTS ids whose fill notices (H0STCNI0/H0STCNI9) it may receive; nobody's otherwise. */
  fills: z.record(z.string(), z.array(z.string().regex(/^[\x21-\x7e]{1,40}$/, 'must be an HTS id (1-40 printable characters)'))).optional(),
});

export const configSchema = z.strictObject({
  stateDir: nonEmpty.optional(),
  log: z
    .strictObject({
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).optional(),
      format: z.enum(['json', 'pretty']).optional(),
      timeZone: nonEmpty.optional(),
    })
    .optional(),
  server: z
    .strictObject({
      enabled: bool().optional(),
      host: nonEmpty.optional(),
      port: int().pipe(z.number().min(0).max(65535)).optional(),
      adminToken: z.string().optional(),
      adminTokenFile: nonEmpty.optional(),
      requestTimeout: duration('server.requestTimeout').optional(),
    })
    .optional(),
  metrics: z
    .strictObject({
      compat: bool().optional(),
    })
    .optional(),
  slack: slackSchema.optional(),
  store: storeSchema.optional(),
  gateway: gatewaySchema.optional(),
  realtime: realtimeSchema.optional(),
  limits: z.strictObject({ maxConcurrentRequests: int().pipe(z.number().min(1).max(256)).optional() }).optional(),
  defaults: z
    .strictObject({
      renewal: renewalSchema.optional(),
      proof: proofSchema.optional(),
      http: httpClientSchema.optional(),
    })
    .optional(),
  accounts: z.array(accountSchema).min(1, 'must list at least 1 account'),
});

export type RawConfig = z.infer<typeof configSchema>;
export type RawAccount = z.infer<typeof accountSchema>;
export type RawSink = z.infer<typeof sinkSchema>;
export type RawGateway = z.infer<typeof gatewaySchema>;
export type RawRealtime = z.infer<typeof realtimeSchema>;
export type RawRenewal = z.infer<typeof renewalSchema>;

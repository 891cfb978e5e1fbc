import { constants as osConstants } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { DEFAULT_BASE_URLS } from '../providers/hosts';
import { isValidTimeZone } from '../core/time';
import { formatDuration } from '../core/duration';
import { isValidSchedule } from '../lifecycle/schedule';
import { pythonKisFileName } from '../sinks/formats';
import * as D from './defaults';
import { brokerFloorBreaches, type FloorKey } from './floors';
import { resolveGateway, servedByGateway } from './gateway';
import { formatPath, type Path } from './path';
import type { RawAccount, RawConfig, RawRenewal, RawSink } from './schema';
import { describeFileProblem, resolveSecret, type ReadText } from './secret-files';
import type { AccountConfig, FileAccess, NotifyConfig, RenewalPolicy, SidecarConfig, SinkConfig, SlackConfig, StoreConfig } from './types';

/**
 * Checks that need more than one field (credentials by provider, uniqueness, time zones, cron) and turns the
 * schema's output into the typed, defaulted SidecarConfig. Problems are collected, never thrown one by one.
 */
export class Problems {
  private readonly lines: string[] = [];
  /** One message per path: the first problem found there (an unset variable, say) explains the rest. */
  add(path: Path, message: string): void {
    this.addLine(`${formatPath(path)}: ${message}`);
  }
  addLine(line: string): void {
    const path = line.slice(0, line.indexOf(': ') + 2);
    if (!this.lines.some((existing) => existing.startsWith(path))) this.lines.push(line);
  }
  /** In path order (accounts[2] before accounts[10]), so related lines stand together. */
  get list(): string[] {
    return [...this.lines].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  }
  get empty(): boolean {
    return this.lines.length === 0;
  }
}

export interface ResolveContext {
  baseDir: string;
  readText: ReadText;
  problems: Problems;
  /** This host's zone: a default reader zone of kis-auth sinks. */
  hostTimeZone: string;
}

const PLACEHOLDER = /\{([^}]*)\}/g;
const PLACEHOLDERS = ['account', 'env', 'appKeyPrefix'];

/**
 * Every zone in the config is checked here, with one message (and one place to change it). Like every config
 * message it names the key, not the value: a secret once pasted into `timeZone` came back in the error.
 */
function checkTimeZone(path: Path, zone: string, ctx: ResolveContext): string {
  if (!isValidTimeZone(zone)) ctx.problems.add(path, 'must be an IANA time zone such as Asia/Seoul');
  return zone;
}

function defaultSinkName(sinks: RawSink[], index: number): string {
  const format = sinks[index]!.format;
  const sameBefore = sinks.slice(0, index).filter((s) => s.format === format).length;
  return sameBefore === 0 ? format : `${format}-${sameBefore + 1}`;
}

function mergeRenewal(defaults: RawRenewal | undefined, own: RawRenewal | undefined): RenewalPolicy {
  const pick = <K extends keyof RawRenewal>(key: K) => own?.[key] ?? defaults?.[key];
  const retry = { ...defaults?.retry, ...own?.retry };
  return {
    renewBeforeMs: pick('renewBefore') ?? D.DEFAULT_RENEWAL.renewBeforeMs,
    jitterMs: pick('jitter') ?? D.DEFAULT_RENEWAL.jitterMs,
    spacingMs: pick('spacing') ?? D.DEFAULT_RENEWAL.spacingMs,
    schedule: pick('schedule') ?? D.DEFAULT_RENEWAL.schedule,
    scheduleMinAgeMs: pick('scheduleMinAge') ?? D.DEFAULT_RENEWAL.scheduleMinAgeMs,
    sameTokenWindowMs: pick('sameTokenWindow') ?? D.DEFAULT_RENEWAL.sameTokenWindowMs,
    maxLifetimeMs: pick('maxLifetime') ?? D.DEFAULT_RENEWAL.maxLifetimeMs,
    retry: {
      attempts: retry.attempts ?? D.DEFAULT_RENEWAL.retry.attempts,
      initialDelayMs: retry.initialDelay ?? D.DEFAULT_RENEWAL.retry.initialDelayMs,
      multiplier: retry.multiplier ?? D.DEFAULT_RENEWAL.retry.multiplier,
      maxDelayMs: retry.maxDelay ?? D.DEFAULT_RENEWAL.retry.maxDelayMs,
      jitter: retry.jitter ?? D.DEFAULT_RENEWAL.retry.jitter,
    },
  };
}

/** Where a merged renewal setting came from, so its message names the line the user has to change. */
function renewalPath(index: number, account: RawAccount, key: keyof RawRenewal): Path {
  return account.renewal?.[key] !== undefined ? ['accounts', index, 'renewal', key] : ['defaults', 'renewal', key];
}

function checkRenewal(policy: RenewalPolicy, index: number, account: RawAccount, problems: Problems): void {
  const p = (key: keyof RawRenewal) => renewalPath(index, account, key);
  if (policy.schedule !== undefined) {
    if (!isValidSchedule(policy.schedule)) {
      problems.add(p('schedule'), 'must be a 5-field cron expression (minute hour day-of-month month day-of-week)');
    }
  }
  if (policy.renewBeforeMs + policy.jitterMs >= policy.maxLifetimeMs) {
    problems.add(
      p('renewBefore'),
      `renewBefore plus jitter (${formatDuration(policy.renewBeforeMs + policy.jitterMs)}) must be shorter than maxLifetime (${formatDuration(policy.maxLifetimeMs)})`,
    );
  }
  if (policy.maxLifetimeMs <= policy.sameTokenWindowMs + policy.spacingMs) {
    // Inside the window the broker answers with the token it already gave: a token believed to die first could
    // not be replaced before it is believed dead, and the sidecar would report a valid token expired for hours.
    problems.add(
      p('maxLifetime'),
      `must be longer than sameTokenWindow plus spacing (${formatDuration(policy.sameTokenWindowMs + policy.spacingMs)}): the broker gives the same token again within that window, so no renewal could come before the token is believed dead`,
    );
  }
  if (policy.retry.initialDelayMs > policy.retry.maxDelayMs) {
    const path =
      account.renewal?.retry?.maxDelay !== undefined ? ['accounts', index, 'renewal', 'retry', 'maxDelay'] : ['defaults', 'renewal', 'retry', 'maxDelay'];
    problems.add(path, `must not be shorter than initialDelay (${formatDuration(policy.retry.initialDelayMs)})`);
  }
}

function checkCredentials(account: RawAccount, index: number, ctx: ResolveContext): { appKey?: string; appSecret?: string } {
  const base: Path = ['accounts', index];
  const out: { appKey?: string; appSecret?: string } = {};
  for (const [field, fileField, length] of [
    ['appKey', 'appKeyFile', D.KIS_APP_KEY_LENGTH],
    ['appSecret', 'appSecretFile', D.KIS_APP_SECRET_LENGTH],
  ] as const) {
    const { value, problem } = resolveSecret(account[field], account[fileField], { inline: field, file: fileField }, ctx.baseDir, ctx.readText);
    if (problem) {
      ctx.problems.add([...base, problem.key], problem.message);
      continue;
    }
    const where = account[fileField] !== undefined ? fileField : field;
    if (value === undefined || value === '') {
      ctx.problems.add([...base, field], `required (inline, usually \${ENV_VAR}, or as ${fileField})`);
    } else if (/\s/.test(value)) {
      ctx.problems.add([...base, where], 'must not contain white space');
    } else if (account.provider === 'kis' && value.length !== length) {
      ctx.problems.add([...base, where], `must be ${length} characters (got ${value.length})`);
    } else {
      out[field] = value;
    }
  }
  return out;
}

function resolveAccess(sink: RawSink): FileAccess {
  return {
    mode: sink.mode ?? D.DEFAULT_FILE_MODE,
    dirMode: sink.dirMode ?? D.DEFAULT_DIR_MODE,
    owner: sink.owner,
    group: sink.group,
    followSymlinks: sink.followSymlinks ?? false,
  };
}

function resolveNotify(sink: RawSink, path: Path, ctx: ResolveContext): NotifyConfig | undefined {
  const notify = sink.notify;
  if (!notify) return undefined;
  if (notify.command === undefined && notify.signal === undefined) {
    ctx.problems.add([...path, 'notify'], 'set command, or signal with pidFile');
  }
  if (notify.signal !== undefined) {
    if (!(notify.signal in osConstants.signals)) ctx.problems.add([...path, 'notify', 'signal'], 'is not a signal this system knows');
    if (notify.pidFile === undefined) ctx.problems.add([...path, 'notify', 'pidFile'], 'required with signal');
  }
  const command = typeof notify.command === 'string' ? ['/bin/sh', '-c', notify.command] : notify.command;
  return {
    command,
    signal: notify.signal as NodeJS.Signals | undefined,
    pidFile: notify.pidFile !== undefined ? resolvePath(ctx.baseDir, notify.pidFile) : undefined,
    timeoutMs: notify.timeout ?? D.DEFAULT_NOTIFY_TIMEOUT_MS,
  };
}

/**
 * Only these characters may enter a path from a placeholder: a Kiwoom app key with "../" in it once wrote
 * outside the configured directory. Account names and envs are already limited to them by the schema; the
 * app key is whatever the broker issued.
 */
const SAFE_IN_PATH = /^[A-Za-z0-9_-]*$/;

function expandPath(template: string, account: RawAccount, appKey: string | undefined, path: Path, ctx: ResolveContext): string {
  const expanded = template.replace(PLACEHOLDER, (whole, name: string) => {
    if (name === 'appKeyPrefix' && appKey === undefined) {
      // Said once more here, at the path: a read-only command that goes without the app key cannot find this file.
      ctx.problems.add(path, '{appKeyPrefix} needs the app key, which is not available (see appKey)');
      return whole;
    }
    const value = placeholderValue(name, account, appKey);
    if (value === undefined) {
      ctx.problems.add(path, `has an unknown placeholder; use ${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}`);
      return whole;
    }
    if (!SAFE_IN_PATH.test(value)) {
      const source = name === 'appKeyPrefix' ? "the app key's first 10 characters hold others" : `the ${name} holds others`;
      ctx.problems.add(
        path,
        `{${name}} would put characters other than letters, digits, "-" and "_" into the path (${source}), which could lead out of its directory; use another placeholder or a fixed name`,
      );
      return whole;
    }
    return value;
  });
  return resolvePath(ctx.baseDir, expanded);
}

function placeholderValue(name: string, account: RawAccount, appKey: string | undefined): string | undefined {
  switch (name) {
    case 'account':
      return account.name;
    case 'env':
      return account.env ?? 'real';
    case 'appKeyPrefix':
      return (appKey ?? '').slice(0, 10);
    default:
      return undefined;
  }
}

/**
 * The zones a kis-auth sink names its daily files for, each with the config key it came from (for messages):
 * `readerTimeZones` as given, else Asia/Seoul, UTC and this host's zone. The older `timeZone` key, which once
 * named the one zone, now adds its zone to the list.
 */
function readerTimeZones(sink: Extract<RawSink, { format: 'kis-auth' }>, hostZone: string): Array<{ zone: string; key: Path }> {
  const listed = sink.readerTimeZones?.map((zone, i) => ({ zone, key: ['readerTimeZones', i] as Path }));
  const zones = listed ?? [...D.DEFAULT_READER_TIME_ZONES, hostZone].map((zone) => ({ zone, key: ['readerTimeZones'] as Path }));
  if (sink.timeZone !== undefined) zones.push({ zone: sink.timeZone, key: ['timeZone'] });
  return zones;
}

function resolveSinks(account: RawAccount, index: number, credentials: { appKey?: string; appSecret?: string }, ctx: ResolveContext): SinkConfig[] {
  const { appKey, appSecret } = credentials;
  const names = new Map<string, number>();
  return account.sinks.map((sink, s) => {
    const path: Path = ['accounts', index, 'sinks', s];
    const name = sink.name ?? defaultSinkName(account.sinks, s);
    const earlier = names.get(name);
    if (earlier !== undefined) ctx.problems.add([...path, 'name'], `already the name of sinks[${earlier}]`);
    names.set(name, s);
    const common = { name, access: resolveAccess(sink), notify: resolveNotify(sink, path, ctx) };
    switch (sink.format) {
      case 'kis-auth': {
        const zones = readerTimeZones(sink, ctx.hostTimeZone);
        zones.forEach(({ zone, key }) => checkTimeZone([...path, ...key], zone, ctx));
        const validDateTimeZone = checkTimeZone([...path, 'validDateTimeZone'], sink.validDateTimeZone ?? D.DEFAULT_SINK_TIME_ZONE, ctx);
        const writeAheadMs = sink.writeAhead ?? D.DEFAULT_WRITE_AHEAD_MS;
        if (account.provider !== 'kis') ctx.problems.add([...path, 'format'], 'kis-auth files are read by KIS clients only');
        return {
          ...common,
          format: 'kis-auth',
          dir: expandPath(sink.dir, account, appKey, [...path, 'dir'], ctx),
          readerTimeZones: [...new Set(zones.map(({ zone }) => zone))],
          writeAheadMs,
          validDateTimeZone,
          keepDays: sink.keepDays ?? D.DEFAULT_KEEP_DAYS,
        };
      }
      case 'python-kis': {
        if (account.provider !== 'kis') ctx.problems.add([...path, 'format'], 'python-kis is a KIS client');
        if (/[\\/]|^\.\.?$/.test(sink.htsId)) ctx.problems.add([...path, 'htsId'], 'must be an HTS id, with no "/" (it becomes part of a file name)');
        const dir = expandPath(sink.dir, account, appKey, [...path, 'dir'], ctx);
        // Without both credentials there is no name to compute; checkCredentials has said why, and it is said again
        // at the sink, for a read-only command that goes without them and so cannot find this file.
        if (appKey === undefined || appSecret === undefined) {
          ctx.problems.add([...path, 'htsId'], 'python-kis names its file after the app key and secret, which are not available (see appKey, appSecret)');
        }
        const name = appKey !== undefined && appSecret !== undefined ? pythonKisFileName(account.env ?? 'real', sink.htsId, appKey, appSecret) : 'unknown.json';
        return { ...common, format: 'python-kis', dir, path: join(dir, name) };
      }
      case 'json': {
        const timeZone = checkTimeZone([...path, 'timeZone'], sink.timeZone ?? D.DEFAULT_SINK_TIME_ZONE, ctx);
        return {
          ...common,
          format: 'json',
          path: expandPath(sink.path, account, appKey, [...path, 'path'], ctx),
          layout: sink.layout ?? (account.provider === 'kiwoom' ? 'kiwoom-token' : 'kis-client'),
          timeZone,
        };
      }
      case 'approval-key':
        if (account.provider !== 'kis') ctx.problems.add([...path, 'format'], 'approval keys exist for KIS only');
        return { ...common, format: 'approval-key', path: expandPath(sink.path, account, appKey, [...path, 'path'], ctx) };
    }
  });
}

/** Where a setting with a broker floor was written: the account's own key, else the one under `defaults:`. */
function floorPath(key: FloorKey, index: number, account: RawAccount): Path {
  const own: Path = ['accounts', index];
  switch (key) {
    case 'spacing':
      return renewalPath(index, account, 'spacing');
    case 'retry.initialDelay':
      return account.renewal?.retry?.initialDelay !== undefined
        ? [...own, 'renewal', 'retry', 'initialDelay']
        : ['defaults', 'renewal', 'retry', 'initialDelay'];
    case 'proof.interval':
      return account.proof?.interval !== undefined ? [...own, 'proof', 'interval'] : ['defaults', 'proof', 'interval'];
    case 'probe.interval':
      return [...own, 'probe', 'interval'];
  }
}

export function resolveAccount(raw: RawConfig, account: RawAccount, index: number, ctx: ResolveContext): AccountConfig {
  const config = buildAccount(raw, account, index, ctx);
  for (const { key, message } of brokerFloorBreaches(config)) ctx.problems.add(floorPath(key, index, account), message);
  return config;
}

function buildAccount(raw: RawConfig, account: RawAccount, index: number, ctx: ResolveContext): AccountConfig {
  const { appKey, appSecret } = checkCredentials(account, index, ctx);
  const renewal = mergeRenewal(raw.defaults?.renewal, account.renewal);
  checkRenewal(renewal, index, account, ctx.problems);
  const env = account.env ?? 'real';
  if (account.sinks.length === 0 && !servedByGateway(raw.gateway, account.name)) {
    ctx.problems.add(['accounts', index, 'sinks'], 'must list at least 1 sink (the files applications read), unless a gateway client uses the account');
  }
  return {
    name: account.name,
    provider: account.provider,
    env,
    appKey: appKey ?? '',
    appSecret: appSecret ?? '',
    baseUrl: (account.baseUrl ?? DEFAULT_BASE_URLS[account.provider][env]).replace(/\/+$/, ''),
    renewal,
    proof: {
      enabled: account.proof?.enabled ?? raw.defaults?.proof?.enabled ?? D.DEFAULT_PROOF.enabled,
      intervalMs: account.proof?.interval ?? raw.defaults?.proof?.interval ?? D.DEFAULT_PROOF.intervalMs,
    },
    http: {
      connectTimeoutMs: account.http?.connectTimeout ?? raw.defaults?.http?.connectTimeout ?? D.DEFAULT_HTTP_CLIENT.connectTimeoutMs,
      timeoutMs: account.http?.timeout ?? raw.defaults?.http?.timeout ?? D.DEFAULT_HTTP_CLIENT.timeoutMs,
    },
    probe: account.probe && {
      url: account.probe.url,
      intervalMs: account.probe.interval ?? D.DEFAULT_PROBE_INTERVAL_MS,
      timeoutMs: account.probe.timeout ?? D.DEFAULT_PROBE_TIMEOUT_MS,
    },
    sinks: resolveSinks(account, index, { appKey, appSecret }, ctx),
  };
}

/** Checks across accounts: unique names, one account per app key, no two sinks on one file. */
export function checkAcrossAccounts(accounts: Array<{ index: number; config: AccountConfig }>, problems: Problems): void {
  const names = new Map<string, number>();
  const appKeys = new Map<string, number>();
  const files = new Map<string, string>();
  for (const { index, config } of accounts) {
    const seenName = names.get(config.name);
    if (seenName !== undefined) problems.add(['accounts', index, 'name'], `already the name of accounts[${seenName}]`);
    else names.set(config.name, index);
    if (config.appKey !== '') {
      const seenKey = appKeys.get(config.appKey);
      if (seenKey !== undefined) {
        problems.add(
          ['accounts', index, 'appKey'],
          `same app key as accounts[${seenKey}]; an app key gets one token at a time, so list several sinks under one account instead`,
        );
      } else appKeys.set(config.appKey, index);
    }
    config.sinks.forEach((sink, s) => {
      const where = `accounts[${index}].sinks[${s}]`;
      const key = sink.format === 'kis-auth' ? `dir:${sink.dir}` : `file:${sink.path}`;
      const seen = files.get(key);
      if (seen !== undefined) {
        problems.add(
          ['accounts', index, 'sinks', s, sink.format === 'kis-auth' ? 'dir' : 'path'],
          sink.format === 'kis-auth'
            ? `directory already used by ${seen}; kis_auth.py's files are not keyed by account, so each account needs its own directory`
            : `file already written by ${seen}`,
        );
      } else files.set(key, where);
    });
  }
}

export function resolveConfig(raw: RawConfig, source: string, ctx: ResolveContext): SidecarConfig {
  const accounts = raw.accounts.map((account, index) => ({ index, config: resolveAccount(raw, account, index, ctx) }));
  checkAcrossAccounts(accounts, ctx.problems);
  const server = raw.server ?? {};
  const admin = resolveSecret(server.adminToken, server.adminTokenFile, { inline: 'adminToken', file: 'adminTokenFile' }, ctx.baseDir, ctx.readText);
  if (admin.problem) ctx.problems.add(['server', admin.problem.key], admin.problem.message);
  else if (admin.value !== undefined && admin.value.length < D.MIN_ADMIN_TOKEN_LENGTH) {
    ctx.problems.add(
      ['server', server.adminTokenFile !== undefined ? 'adminTokenFile' : 'adminToken'],
      `must be at least ${D.MIN_ADMIN_TOKEN_LENGTH} characters`,
    );
  }
  const slack = raw.slack && resolveSlack(raw.slack, ctx);
  const store = resolveStore(
    raw.store,
    accounts.map((a) => a.config),
    ctx,
  );
  const stateDir = resolvePath(ctx.baseDir, raw.stateDir ?? D.DEFAULT_STATE_DIR);
  return {
    source,
    stateDir,
    log: {
      level: raw.log?.level ?? 'info',
      format: raw.log?.format ?? 'json',
      timeZone: checkTimeZone(['log', 'timeZone'], raw.log?.timeZone ?? D.DEFAULT_SINK_TIME_ZONE, ctx),
    },
    server: {
      enabled: server.enabled ?? D.DEFAULT_SERVER.enabled,
      host: server.host ?? D.DEFAULT_SERVER.host,
      port: server.port ?? D.DEFAULT_SERVER.port,
      adminToken: admin.value || undefined,
      requestTimeoutMs: server.requestTimeout ?? D.DEFAULT_SERVER.requestTimeoutMs,
    },
    metrics: { compat: raw.metrics?.compat ?? false },
    slack,
    store,
    gateway: resolveGateway(
      raw.gateway,
      accounts.map((a) => a.config),
      stateDir,
      ctx,
    ),
    limits: { maxConcurrentRequests: raw.limits?.maxConcurrentRequests ?? D.DEFAULT_MAX_CONCURRENT_REQUESTS },
    accounts: accounts.map((a) => a.config),
  };
}

function resolveSlack(raw: NonNullable<RawConfig['slack']>, ctx: ResolveContext): SlackConfig | undefined {
  const url = (inline: string | undefined, file: string | undefined, names: { inline: string; file: string }, required: boolean) => {
    const { value, problem } = resolveSecret(inline, file, names, ctx.baseDir, ctx.readText);
    if (problem) ctx.problems.add(['slack', problem.key], problem.message);
    else if (value === undefined || value === '') {
      if (required) ctx.problems.add(['slack', names.inline], `required (inline, usually \${SLACK_WEBHOOK_URL}, or as ${names.file})`);
    } else if (!/^https?:\/\/[^\s]+$/.test(value)) {
      // The URL itself is a secret: the message names the key, never the value.
      ctx.problems.add(['slack', file !== undefined ? names.file : names.inline], 'must be an http(s) URL');
    } else return value;
    return undefined;
  };
  const webhookUrl = url(raw.webhookUrl, raw.webhookUrlFile, { inline: 'webhookUrl', file: 'webhookUrlFile' }, true);
  const criticalWebhookUrl = url(raw.criticalWebhookUrl, raw.criticalWebhookUrlFile, { inline: 'criticalWebhookUrl', file: 'criticalWebhookUrlFile' }, false);
  const alerts = raw.alerts ?? {};
  const retry = {
    attempts: raw.retry?.attempts ?? D.DEFAULT_SLACK.retry.attempts,
    initialDelayMs: raw.retry?.initialDelay ?? D.DEFAULT_SLACK.retry.initialDelayMs,
    maxDelayMs: raw.retry?.maxDelay ?? D.DEFAULT_SLACK.retry.maxDelayMs,
  };
  if (retry.initialDelayMs > retry.maxDelayMs)
    ctx.problems.add(['slack', 'retry', 'maxDelay'], `must not be shorter than initialDelay (${formatDuration(retry.initialDelayMs)})`);
  return {
    webhookUrl: webhookUrl ?? '',
    criticalWebhookUrl,
    language: raw.language ?? D.DEFAULT_SLACK.language,
    repeatIntervalMs: raw.repeatInterval ?? D.DEFAULT_SLACK.repeatIntervalMs,
    evaluationIntervalMs: raw.evaluationInterval ?? D.DEFAULT_SLACK.evaluationIntervalMs,
    runbookUrl: raw.runbookUrl ?? D.DEFAULT_RUNBOOK_URL,
    dashboardUrl: raw.dashboardUrl,
    timeoutMs: raw.timeout ?? D.DEFAULT_SLACK.timeoutMs,
    queueSize: raw.queueSize ?? D.DEFAULT_SLACK.queueSize,
    retry,
    alerts: {
      renewalFailing: {
        enabled: alerts.renewalFailing?.enabled ?? true,
        threshold: alerts.renewalFailing?.threshold ?? D.DEFAULT_SLACK.renewalFailingThreshold,
      },
      sinkUnrepairable: { enabled: alerts.sinkUnrepairable?.enabled ?? true, graceMs: alerts.sinkUnrepairable?.grace ?? D.DEFAULT_SLACK.sinkGraceMs },
      tokenExpiring: { enabled: alerts.tokenExpiring?.enabled ?? true, windowMs: alerts.tokenExpiring?.window ?? D.DEFAULT_SLACK.tokenExpiringWindowMs },
      tokenInvalidated: { enabled: alerts.tokenInvalidated?.enabled ?? true },
      rateLimited: { enabled: alerts.rateLimited?.enabled ?? true },
      credentialsRejected: { enabled: alerts.credentialsRejected?.enabled ?? true },
      fileModeNotPrivate: { enabled: alerts.fileModeNotPrivate?.enabled ?? true, graceMs: alerts.fileModeNotPrivate?.grace ?? D.DEFAULT_SLACK.sinkGraceMs },
      storeUnavailable: { enabled: alerts.storeUnavailable?.enabled ?? true, graceMs: alerts.storeUnavailable?.grace ?? D.DEFAULT_SLACK.sinkGraceMs },
      noUsableToken: { enabled: alerts.noUsableToken?.enabled ?? true, graceMs: alerts.noUsableToken?.grace ?? D.DEFAULT_SLACK.noUsableTokenGraceMs },
    },
    notices: { renewed: raw.notices?.renewed ?? false, lifecycle: raw.notices?.lifecycle ?? false },
  };
}

function resolveStore(raw: RawConfig['store'], accounts: AccountConfig[], ctx: ResolveContext): StoreConfig {
  if (!raw || raw.type === 'file') return { type: 'file' };
  const password = resolveSecret(raw.password, raw.passwordFile, { inline: 'password', file: 'passwordFile' }, ctx.baseDir, ctx.readText);
  if (password.problem) ctx.problems.add(['store', password.problem.key], password.problem.message);
  let ca: string | undefined;
  if (raw.tls?.caFile !== undefined) {
    const path = resolvePath(ctx.baseDir, raw.tls.caFile);
    try {
      ca = ctx.readText(path);
    } catch (error) {
      ctx.problems.add(['store', 'tls', 'caFile'], describeFileProblem(error, raw.tls.caFile, path));
    }
  }
  const lockTtlMs = raw.lockTtl ?? D.DEFAULT_REDIS.lockTtlMs;
  const slowest = Math.max(0, ...accounts.map((a) => a.http.timeoutMs));
  if (lockTtlMs <= slowest) {
    ctx.problems.add(
      ['store', 'lockTtl'],
      `must be longer than the longest request timeout (${formatDuration(slowest)}), or a lock could expire while its holder still waits for the broker`,
    );
  }
  return {
    type: 'redis',
    url: raw.url,
    username: raw.username,
    password: password.value || undefined,
    tls: raw.tls || raw.url.startsWith('rediss://') ? { ca, rejectUnauthorized: raw.tls?.rejectUnauthorized ?? true } : undefined,
    keyPrefix: raw.keyPrefix ?? D.DEFAULT_REDIS.keyPrefix,
    lockTtlMs,
    connectTimeoutMs: raw.connectTimeout ?? D.DEFAULT_REDIS.connectTimeoutMs,
  };
}

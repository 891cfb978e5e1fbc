import { resolve as resolvePath } from 'node:path';
import { formatDuration } from '../core/duration';
import * as D from './defaults';
import { resolveGateway } from './gateway';
import { resolveRealtime } from './realtime';
import { checkAcrossAccounts, resolveAccount } from './resolve-account';
import { checkTimeZone, type ResolveContext } from './resolve-context';
import type { RawConfig } from './schema';
import { describeFileProblem, resolveSecret } from './secret-files';
import type { AccountConfig, SidecarConfig, SlackConfig, StoreConfig } from './types';

/**
 * Checks that need more than one field (credentials by provider, uniqueness, time zones, cron) and turns the
 * schema's output into the typed, defaulted SidecarConfig, section by section (resolve-account.ts,
 * resolve-sinks.ts, gateway.ts, and the Slack and store sections here). Problems are collected, never thrown one
 * by one.
 */
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
    realtime: resolveRealtime(raw.realtime, raw.gateway, ctx),
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
      realtimeSessionDown: {
        enabled: alerts.realtimeSessionDown?.enabled ?? true,
        graceMs: alerts.realtimeSessionDown?.grace ?? D.DEFAULT_SLACK.realtimeSessionDownGraceMs,
      },
      realtimeRegistrationsFull: {
        enabled: alerts.realtimeRegistrationsFull?.enabled ?? true,
        graceMs: alerts.realtimeRegistrationsFull?.grace ?? D.DEFAULT_SLACK.realtimeRegistrationsFullGraceMs,
      },
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

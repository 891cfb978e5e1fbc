import { DEFAULT_BASE_URLS } from './hosts';
import { websocketUrlOf } from './realtime';
import { formatDuration } from '../core/duration';
import { isValidSchedule } from '../core/schedule';
import * as D from './defaults';
import { brokerFloorBreaches, type FloorKey } from './floors';
import { servedByGateway } from './gateway';
import type { Path } from './path';
import type { Problems, ResolveContext } from './resolve-context';
import { resolveSinks } from './resolve-sinks';
import type { RawAccount, RawConfig, RawRenewal } from './schema';
import { resolveSecret } from './secret-files';
import type { AccountConfig, RenewalPolicy } from './types';

/**
 * One account of the config: its credentials by provider, its renewal policy merged from `defaults:` and checked
 * against the brokers' floors, its sinks; and the checks across accounts.
 */
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
    websocketUrl: websocketUrlOf(account, env),
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

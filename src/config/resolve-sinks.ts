import { createHash } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import type { Env } from '../core/brokers';
import * as D from './defaults';
import type { Path } from './path';
import { checkTimeZone, type ResolveContext } from './resolve-context';
import type { RawAccount, RawSink } from './schema';
import type { FileAccess, NotifyConfig, SinkConfig } from './types';

/**
 * The `sinks:` of an account: each format's fields, defaulted, its path templates expanded ({account}, {env},
 * {appKeyPrefix}), its file access and notify settings; python-kis's file name as python-kis computes it.
 */
const PLACEHOLDER = /\{([^}]*)\}/g;
const PLACEHOLDERS = ['account', 'env', 'appKeyPrefix'];

function defaultSinkName(sinks: RawSink[], index: number): string {
  const format = sinks[index]!.format;
  const sameBefore = sinks.slice(0, index).filter((s) => s.format === format).length;
  return sameBefore === 0 ? format : `${format}-${sameBefore + 1}`;
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

/**
 * The file name python-kis computes for its kept token (`PyKis(..., keep_token=DIR)`): the HTS id in clear,
 * then a SHA-1 of the id, app key and app secret of the domain. The secret enters this digest only.
 */
export function pythonKisFileName(env: Env, htsId: string, appKey: string, appSecret: string): string {
  const digest = createHash('sha1').update(`pykis${htsId}${appKey}${appSecret}token`).digest('hex');
  return `token_${env === 'real' ? 'real' : 'virtual'}_${htsId}_${digest}.json`;
}

export function resolveSinks(account: RawAccount, index: number, credentials: { appKey?: string; appSecret?: string }, ctx: ResolveContext): SinkConfig[] {
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

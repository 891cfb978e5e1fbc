import { dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { JsonLayout, KisAuthSinkConfig, SinkConfig } from '../config/types';
import {
  formatIsoInZone,
  formatNaiveIso,
  formatWallClock,
  KST_ZONE,
  localDateStamp,
  nextLocalMidnight,
  parseDateTimeIn,
  parseKstCompact,
  parseKstWallClock,
} from '../core/time';

/**
 * What each sink file holds, as pure functions of the token: rendering is deterministic (the same token gives
 * the same bytes), so a file can be checked by comparing it with what it should be, and repaired by writing
 * that again. Formats come from docs/brokers.md#token-files.
 */

export interface TokenView {
  accessToken: string;
  tokenType: string;
  expiresAt: number;
  issuedAt: number;
  /** The broker's answer as received. */
  raw: Record<string, unknown>;
  approvalKey: string | undefined;
}

export interface TokenInFile {
  accessToken: string;
  expiresAt: number | undefined;
}

export const KIS_AUTH_FILE = /^KIS(\d{8})$/;

/**
 * The date stamps of the daily files a kis-auth sink keeps at `now`. kis_auth.py names its file after the date
 * on the reader's own clock, once, at import: a bot in a UTC container looks for the UTC date, one on a KST host
 * for the KST date, and the two differ every day from 00:00 to 09:00 KST. So the file exists under the date of
 * every reader zone, and under the next day's date from `writeAheadMs` before that zone's midnight, so that a
 * bot imported at 00:00:00 finds its file already there and never creates an empty one of its own.
 */
export function kisAuthStamps(sink: KisAuthSinkConfig, now: number): string[] {
  const stamps = new Set<string>();
  for (const zone of sink.readerTimeZones) {
    stamps.add(localDateStamp(now, zone));
    stamps.add(localDateStamp(now + sink.writeAheadMs, zone));
  }
  return [...stamps];
}

/** When the set of daily file names changes next: the earliest write-ahead instant before a reader zone's midnight. */
export function nextKisAuthChange(sink: KisAuthSinkConfig, now: number): number {
  return Math.min(...sink.readerTimeZones.map((zone) => nextLocalMidnight(now + sink.writeAheadMs, zone) - sink.writeAheadMs));
}

/** The files a sink keeps current at `now`: one, or for kis-auth one per date a reader may compute. */
export function sinkPaths(sink: SinkConfig, now: number): string[] {
  return sink.format === 'kis-auth' ? kisAuthStamps(sink, now).map((stamp) => join(sink.dir, `KIS${stamp}`)) : [sink.path];
}

/** The directory a sink's files live in (and that is watched for damage to them). */
export function sinkDirectory(sink: SinkConfig): string {
  return sink.format === 'kis-auth' ? sink.dir : dirname(sink.path);
}

/** The content a sink's file must hold, or undefined when there is nothing to write yet. */
export function renderSink(sink: SinkConfig, view: TokenView): string | undefined {
  switch (sink.format) {
    case 'kis-auth':
      // Exactly the two lines kis_auth.py writes: valid-date is the broker's KST expiry as a wall clock
      // (or another zone's, for readers whose clock is not KST).
      return `token: ${view.accessToken}\nvalid-date: ${formatWallClock(view.expiresAt, sink.validDateTimeZone)}\n`;
    case 'json':
      return `${JSON.stringify(jsonLayout(sink.layout, view, sink.timeZone), null, 2)}\n`;
    case 'python-kis':
      return `${JSON.stringify(pythonKisToken(view), null, 2)}\n`;
    case 'approval-key':
      return view.approvalKey === undefined ? undefined : `${view.approvalKey}\n`;
  }
}

function jsonLayout(layout: JsonLayout, view: TokenView, zone: string): Record<string, unknown> {
  switch (layout) {
    case 'kis-client':
      // That client writes and compares naive datetimes (datetime.now()), so times are naive wall clocks.
      return {
        access_token: view.accessToken,
        token_type: 'Bearer',
        expires_in: Math.round((view.expiresAt - view.issuedAt) / 1000),
        issued_at: formatNaiveIso(view.issuedAt, zone),
        expiry_datetime: formatNaiveIso(view.expiresAt, zone),
      };
    case 'overseas-cache':
      return {
        access_token: view.accessToken,
        expires_at: formatIsoInZone(view.expiresAt, zone),
        cached_at: formatIsoInZone(view.issuedAt, zone),
      };
    case 'kiwoom-token':
      return {
        access_token: view.accessToken,
        expires_at: formatIsoInZone(view.expiresAt, zone),
        created_at: formatIsoInZone(view.issuedAt, zone),
      };
    case 'raw':
      return view.raw;
  }
}

/**
 * The tokenP answer as python-kis keeps it. Its loader refuses a file missing any of these four fields (and
 * then issues a token of its own), so a field the broker's answer lacked is filled in from what the sidecar knows.
 */
function pythonKisToken(view: TokenView): Record<string, unknown> {
  return {
    ...view.raw,
    access_token: view.accessToken,
    token_type: typeof view.raw.token_type === 'string' ? view.raw.token_type : view.tokenType,
    expires_in: typeof view.raw.expires_in === 'number' ? view.raw.expires_in : Math.round((view.expiresAt - view.issuedAt) / 1000),
    access_token_token_expired: typeof view.raw.access_token_token_expired === 'string' ? view.raw.access_token_token_expired : formatWallClock(view.expiresAt),
  };
}

function parseJsonObject(content: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(content) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads the token back out of a sink file the way its consumer would, or undefined when the file does not
 * hold one. Used to adopt an existing token at first start and to tell "another token" from "garbage".
 */
export function readSinkToken(sink: SinkConfig, content: string): TokenInFile | undefined {
  switch (sink.format) {
    case 'kis-auth': {
      let doc: unknown;
      try {
        doc = parseYaml(content);
      } catch {
        return undefined;
      }
      const record = doc !== null && typeof doc === 'object' ? (doc as Record<string, unknown>) : undefined;
      const token = record?.token;
      const validDate = record?.['valid-date'];
      if (typeof token !== 'string' || token === '') return undefined;
      return { accessToken: token, expiresAt: typeof validDate === 'string' ? parseDateTimeIn(validDate, sink.validDateTimeZone) : undefined };
    }
    case 'json':
    case 'python-kis': {
      const body = parseJsonObject(content);
      if (!body) return undefined;
      const token = body.access_token ?? body.token;
      if (typeof token !== 'string' || token === '') return undefined;
      return sink.format === 'json'
        ? { accessToken: token, expiresAt: jsonExpiry(sink.layout, body, sink.timeZone) }
        : { accessToken: token, expiresAt: jsonExpiry('raw', body, KST_ZONE) };
    }
    case 'approval-key':
      return undefined;
  }
}

function jsonExpiry(layout: JsonLayout, body: Record<string, unknown>, zone: string): number | undefined {
  const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
  switch (layout) {
    case 'kis-client': {
      const expiry = text(body.expiry_datetime);
      return expiry === undefined ? undefined : parseDateTimeIn(expiry, zone);
    }
    case 'overseas-cache':
    case 'kiwoom-token': {
      const expiry = text(body.expires_at);
      return expiry === undefined ? undefined : parseDateTimeIn(expiry, zone);
    }
    case 'raw': {
      const kis = text(body.access_token_token_expired);
      if (kis !== undefined) return parseKstWallClock(kis);
      const kiwoom = text(body.expires_dt);
      return kiwoom === undefined ? undefined : parseKstCompact(kiwoom);
    }
  }
}

import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { JsonLayout, SinkConfig } from '../config/types';
import {
  formatIsoInZone,
  formatNaiveIso,
  formatWallClock,
  localDateStamp,
  parseDateTimeIn,
  parseKstCompact,
  parseKstWallClock,
} from '../core/time';

/**
 * What each sink file holds, as pure functions of the token: rendering is deterministic (the same token gives
 * the same bytes), so a file can be checked by comparing it with what it should be, and repaired by writing
 * that again. Formats come from broker-apis.md §1 and §4.
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

/** The file a sink keeps current at `now`. kis_auth.py names its file after the reader's local date. */
export function sinkPath(sink: SinkConfig, now: number): string {
  return sink.format === 'kis-auth' ? join(sink.dir, `KIS${localDateStamp(now, sink.timeZone)}`) : sink.path;
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
    case 'json': {
      const body = parseJsonObject(content);
      if (!body) return undefined;
      const token = body.access_token ?? body.token;
      if (typeof token !== 'string' || token === '') return undefined;
      return { accessToken: token, expiresAt: jsonExpiry(sink.layout, body, sink.timeZone) };
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

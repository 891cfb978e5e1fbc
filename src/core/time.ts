/**
 * Broker times are KST wall-clock strings with no zone. Converting them with the host's local zone is how a
 * UTC container comes to trust a token 9 hours after it died, so every conversion here names its zone.
 */
export const KST_ZONE = 'Asia/Seoul';
const KST_OFFSET_MS = 9 * 3_600_000; // Korea has kept UTC+9 without daylight saving since 1988.

function instantFromKstParts(y: number, mo: number, d: number, h: number, mi: number, s: number): number | undefined {
  const utc = Date.UTC(y, mo - 1, d, h, mi, s);
  const check = new Date(utc);
  // Reject dates that Date.UTC silently rolls over, such as 2024-02-30.
  if (
    check.getUTCFullYear() !== y ||
    check.getUTCMonth() !== mo - 1 ||
    check.getUTCDate() !== d ||
    check.getUTCHours() !== h ||
    check.getUTCMinutes() !== mi ||
    check.getUTCSeconds() !== s
  ) {
    return undefined;
  }
  return utc - KST_OFFSET_MS;
}

/** KIS `access_token_token_expired`: "YYYY-MM-DD HH:MM:SS" in KST. */
export function parseKstWallClock(text: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text);
  if (!m) return undefined;
  return instantFromKstParts(+m[1]!, +m[2]!, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}

/** Kiwoom `expires_dt`: "YYYYMMDDHHMMSS" in KST. */
export function parseKstCompact(text: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(text);
  if (!m) return undefined;
  return instantFromKstParts(+m[1]!, +m[2]!, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}

export interface WallClockParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(zone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(zone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(zone, formatter);
  }
  return formatter;
}

export function isValidTimeZone(zone: string): boolean {
  try {
    formatterFor(zone);
    return true;
  } catch {
    return false;
  }
}

export function wallClockIn(instant: number, zone: string): WallClockParts {
  const parts: Record<string, number> = {};
  for (const part of formatterFor(zone).formatToParts(new Date(instant))) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  return {
    year: parts.year!,
    month: parts.month!,
    day: parts.day!,
    hour: parts.hour!,
    minute: parts.minute!,
    second: parts.second!,
  };
}

/** Offset of `zone` from UTC at `instant`, in milliseconds (positive east of Greenwich). */
export function zoneOffsetMs(instant: number, zone: string): number {
  const w = wallClockIn(instant, zone);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return asUtc - Math.floor(instant / 1000) * 1000;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** "YYYY-MM-DD HH:MM:SS" as a wall clock in `zone` would show it: the form kis_auth.py's valid-date takes. */
export function formatWallClock(instant: number, zone: string = KST_ZONE): string {
  const w = wallClockIn(instant, zone);
  return `${w.year}-${pad(w.month)}-${pad(w.day)} ${pad(w.hour)}:${pad(w.minute)}:${pad(w.second)}`;
}

/** ISO 8601 with the zone's offset, e.g. 2026-11-22T08:16:59+09:00. */
export function formatIsoInZone(instant: number, zone: string = KST_ZONE): string {
  const offset = zoneOffsetMs(instant, zone);
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset) / 60_000;
  const offsetText = `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
  return `${formatWallClock(instant, zone).replace(' ', 'T')}${offsetText}`;
}

/** The local calendar date in `zone` as YYYYMMDD, the suffix of kis_auth.py's daily file. */
export function localDateStamp(instant: number, zone: string): string {
  const w = wallClockIn(instant, zone);
  return `${w.year}${pad(w.month)}${pad(w.day)}`;
}

/** The first instant of the calendar day after the one `instant` falls on, in `zone`. */
export function nextLocalMidnight(instant: number, zone: string): number {
  const w = wallClockIn(instant, zone);
  const midnightAsUtc = Date.UTC(w.year, w.month - 1, w.day + 1, 0, 0, 0);
  // Two passes settle the offset even when the next day starts across a daylight-saving change.
  let guess = midnightAsUtc - zoneOffsetMs(midnightAsUtc, zone);
  guess = midnightAsUtc - zoneOffsetMs(guess, zone);
  return guess;
}

/** The date stamp `days` calendar days before the one `instant` falls on in `zone`. */
export function dateStampDaysBefore(instant: number, zone: string, days: number): string {
  const w = wallClockIn(instant, zone);
  const shifted = new Date(Date.UTC(w.year, w.month - 1, w.day - days));
  return `${shifted.getUTCFullYear()}${pad(shifted.getUTCMonth() + 1)}${pad(shifted.getUTCDate())}`;
}

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

interface WallClockParts {
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

/** The zone this process's local clock is in (TZ, else /etc/localtime): what a naive local time here means. */
export function hostTimeZone(): string {
  const zone = new Intl.DateTimeFormat().resolvedOptions().timeZone;
  return zone && isValidTimeZone(zone) ? zone : 'UTC';
}

function wallClockIn(instant: number, zone: string): WallClockParts {
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
function zoneOffsetMs(instant: number, zone: string): number {
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

// Every zone's offset is a whole number of minutes, so a date can change only on a minute: the stamp of the
// last minute asked is kept per zone (the sink loop asks for each reader zone on every pass).
const lastStamp = new Map<string, { minute: number; stamp: string }>();

/** The local calendar date in `zone` as YYYYMMDD, the suffix of kis_auth.py's daily file. */
export function localDateStamp(instant: number, zone: string): string {
  const minute = Math.floor(instant / 60_000);
  const last = lastStamp.get(zone);
  if (last?.minute === minute) return last.stamp;
  const w = wallClockIn(instant, zone);
  const stamp = `${w.year}${pad(w.month)}${pad(w.day)}`;
  lastStamp.set(zone, { minute, stamp });
  return stamp;
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

/** The instant at which a wall clock in `zone` shows the given parts. */
function instantFromWallClock(w: WallClockParts, zone: string, ms = 0): number {
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second, ms);
  let guess = asUtc - zoneOffsetMs(asUtc, zone);
  guess = asUtc - zoneOffsetMs(guess, zone);
  return guess;
}

const ISO_LIKE = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$/;

/**
 * Reads the date-times token files hold: ISO 8601 with or without an offset, or "YYYY-MM-DD HH:MM:SS".
 * Without an offset the text is a wall clock in `zone`, which is how the file's consumers meant it.
 */
export function parseDateTimeIn(text: string, zone: string): number | undefined {
  const m = ISO_LIKE.exec(text.trim());
  if (!m) return undefined;
  const ms = m[7] ? Math.floor(Number(`0.${m[7]}`) * 1000) : 0;
  if (m[8]) {
    const parsed = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${String(ms).padStart(3, '0')}${m[8]}`);
    return Number.isNaN(parsed) ? undefined : parsed;
  }
  const parts = { year: +m[1]!, month: +m[2]!, day: +m[3]!, hour: +m[4]!, minute: +m[5]!, second: +m[6]! };
  const instant = instantFromWallClock(parts, zone, ms);
  const back = wallClockIn(instant, zone);
  return back.day === parts.day && back.hour === parts.hour && back.minute === parts.minute ? instant : undefined;
}

/** Python's naive `datetime.isoformat()` form as a wall clock in `zone`: 2025-11-03T19:45:30.123000. */
export function formatNaiveIso(instant: number, zone: string): string {
  const micros = String(((instant % 1000) + 1000) % 1000).padStart(3, '0') + '000';
  return `${formatWallClock(instant, zone).replace(' ', 'T')}.${micros}`;
}

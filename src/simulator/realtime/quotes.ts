/**
 * The simulated market behind both brokers' real-time records: one price path per stock and one volume that only
 * grows. Each record of a stream carries its sequence number n through the day's cumulative volume, n ×
 * VOLUME_STEP, so a client (or a test) can tell a gap from a repeat: consecutive records of a stream differ by
 * exactly one step. Values only need the shape and the signs the clients parse (docs/brokers.md#kis-real-time-data).
 */
import { kstCompact, kstTimeOfDay } from '../token-format';

/** Shares added to the day's cumulative volume by each record; the volume of record n is n × VOLUME_STEP. */
export const VOLUME_STEP = 10;

const TICK = 100;

/** What every record of one stock at one instant is made of. */
export interface Quote {
  /** The stock (KIS tr_key, Kiwoom item) as the client registered it. */
  code: string;
  /** The record's sequence number in its stream, from 1. */
  n: number;
  price: number;
  /** The day's open, high and low: fixed around a price of the stock's own, so the records never contradict them. */
  open: number;
  high: number;
  low: number;
  previousClose: number;
  /** Cumulative volume: n × VOLUME_STEP. */
  volume: number;
  /** KST wall clock of the record: "HHMMSS" and "YYYYMMDD". */
  time: string;
  date: string;
}

/** A stable price level per stock code, so two streams of one stock (trades and order book) agree. */
function basePrice(code: string): number {
  let hash = 0;
  for (const char of code) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return 10_000 + (hash % 90) * 1_000;
}

export function quoteAt(code: string, n: number, now: number): Quote {
  const base = basePrice(code);
  return {
    code,
    n,
    // Two ticks either side of the base, so the price moves and the signs of the differences vary.
    price: base + ((n % 5) - 2) * TICK,
    open: base - 2 * TICK,
    high: base + 3 * TICK,
    low: base - 3 * TICK,
    previousClose: base - 5 * TICK,
    volume: n * VOLUME_STEP,
    time: kstTimeOfDay(now),
    date: kstCompact(now).slice(0, 8),
  };
}

/** KIS's sign code of a difference: "2" rise, "3" unchanged, "5" fall (the codes clients map, 1 to 5). */
export function kisSign(difference: number): string {
  if (difference > 0) return '2';
  return difference < 0 ? '5' : '3';
}

/** Kiwoom prefixes prices and differences with their direction: "+71000", "-300" (third-party captures). */
export function kiwoomSigned(value: number, direction: number): string {
  const digits = String(Math.abs(value));
  if (direction > 0) return `+${digits}`;
  return direction < 0 ? `-${digits}` : digits;
}

export function percent(part: number, whole: number): string {
  return ((part / whole) * 100).toFixed(2);
}

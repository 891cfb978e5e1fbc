/**
 * The Kiwoom real-time types the simulator serves and the `values` (FID → text) of each REAL entry, shaped as
 * third-party captures show them: prices and differences carry their direction as a sign, FID 13 is the day's
 * cumulative volume (docs/brokers.md#kiwoom-real-time-session).
 */
import { kiwoomSigned, percent, quoteAt } from './quotes';

interface KiwoomRealType {
  name: string;
  values: (item: string, n: number, now: number) => Record<string, string>;
}

/** 0B 주식체결: a trade. The growing field is FID 13 (n × VOLUME_STEP). */
function tradeValues(item: string, n: number, now: number): Record<string, string> {
  const q = quoteAt(stockCode(item), n, now);
  const side = n % 2 === 1 ? 1 : -1; // FID 15: + a buy-side trade, - a sell-side one
  return {
    '20': q.time,
    '10': kiwoomSigned(q.price, q.price - q.previousClose),
    '11': kiwoomSigned(q.price - q.previousClose, q.price - q.previousClose),
    '12': kiwoomSigned(Number(percent(q.price - q.previousClose, q.previousClose)), q.price - q.previousClose),
    '27': kiwoomSigned(q.price + 100, 1),
    '28': kiwoomSigned(q.price, 1),
    '15': kiwoomSigned(q.volume / n, side),
    '13': String(q.volume),
    '14': String(Math.floor((q.volume * q.price) / 1_000_000)),
    '16': kiwoomSigned(q.open, q.open - q.previousClose),
    '17': kiwoomSigned(q.high, q.high - q.previousClose),
    '18': kiwoomSigned(q.low, q.low - q.previousClose),
    '228': '101.25',
  };
}

/** 0D 주식호가잔량: the ten best asks (41-50, quantities 61-70) and bids (51-60, quantities 71-80). */
function orderbookValues(item: string, n: number, now: number): Record<string, string> {
  const q = quoteAt(stockCode(item), n, now);
  const values: Record<string, string> = { '21': q.time, '121': '55000', '125': '65000' };
  for (let rank = 0; rank < 10; rank++) {
    values[String(41 + rank)] = kiwoomSigned(q.price + (rank + 1) * 100, 1);
    values[String(61 + rank)] = String(1000 * (rank + 1));
    values[String(51 + rank)] = kiwoomSigned(q.price - rank * 100, 1);
    values[String(71 + rank)] = String(1000 * (rank + 1) + 500);
  }
  return values;
}

/** KRX `005930`, NXT `005930_NX` and SOR `005930_AL` name one stock; its price path is the same. */
function stockCode(item: string): string {
  return item.replace(/_(NX|AL)$/, '');
}

/** Simulator choice: only these types are served; a REG naming another is refused (return_code 2). */
const KIWOOM_REAL_TYPES: Readonly<Record<string, KiwoomRealType>> = {
  '0B': { name: '주식체결', values: tradeValues },
  '0D': { name: '주식호가잔량', values: orderbookValues },
};

export function kiwoomRealType(type: string): KiwoomRealType | undefined {
  return Object.hasOwn(KIWOOM_REAL_TYPES, type) ? KIWOOM_REAL_TYPES[type] : undefined;
}

/**
 * The KIS real-time TRs the simulator serves and the records it sends for them, each with the full column list
 * of the official client (open-trading-api `examples_user/domestic_stock/domestic_stock_functions_ws.py`):
 * clients parse every record against that list (python-kis refuses a frame whose field count is not a multiple of
 * its own), so a short record would break them. docs/brokers.md#kis-real-time-data.
 */
import { kisSign, percent, quoteAt, type Quote } from './quotes';

/** What a TR carries; fill notices are encrypted and sent only when the control API fills an order. */
type KisTrKind = 'trade' | 'orderbook' | 'fill';

interface KisTrLayout {
  kind: KisTrKind;
  columns: readonly string[];
}

// ccnl_krx (H0STCNT0), 46 columns.
const TRADE_COLUMNS = [
  'MKSC_SHRN_ISCD', 'STCK_CNTG_HOUR', 'STCK_PRPR', 'PRDY_VRSS_SIGN', 'PRDY_VRSS', 'PRDY_CTRT', 'WGHN_AVRG_STCK_PRC',
  'STCK_OPRC', 'STCK_HGPR', 'STCK_LWPR', 'ASKP1', 'BIDP1', 'CNTG_VOL', 'ACML_VOL', 'ACML_TR_PBMN', 'SELN_CNTG_CSNU',
  'SHNU_CNTG_CSNU', 'NTBY_CNTG_CSNU', 'CTTR', 'SELN_CNTG_SMTN', 'SHNU_CNTG_SMTN', 'CCLD_DVSN', 'SHNU_RATE',
  'PRDY_VOL_VRSS_ACML_VOL_RATE', 'OPRC_HOUR', 'OPRC_VRSS_PRPR_SIGN', 'OPRC_VRSS_PRPR', 'HGPR_HOUR',
  'HGPR_VRSS_PRPR_SIGN', 'HGPR_VRSS_PRPR', 'LWPR_HOUR', 'LWPR_VRSS_PRPR_SIGN', 'LWPR_VRSS_PRPR', 'BSOP_DATE',
  'NEW_MKOP_CLS_CODE', 'TRHT_YN', 'ASKP_RSQN1', 'BIDP_RSQN1', 'TOTAL_ASKP_RSQN', 'TOTAL_BIDP_RSQN', 'VOL_TNRT',
  'PRDY_SMNS_HOUR_ACML_VOL', 'PRDY_SMNS_HOUR_ACML_VOL_RATE', 'HOUR_CLS_CODE', 'MRKT_TRTM_CLS_CODE', 'VI_STND_PRC',
] as const; // prettier-ignore

// ccnl_nxt (H0NXCNT0) and ccnl_total (H0UNCNT0): the same 46, column 21 named CNTG_CLS_CODE.
const NXT_TRADE_COLUMNS = TRADE_COLUMNS.map((c) => (c === 'CCLD_DVSN' ? 'CNTG_CLS_CODE' : c));

const ranks = (prefix: string): string[] => Array.from({ length: 10 }, (_, i) => `${prefix}${i + 1}`);

// asking_price_krx (H0STASP0), 59 columns.
const ORDERBOOK_COLUMNS = [
  'MKSC_SHRN_ISCD', 'BSOP_HOUR', 'HOUR_CLS_CODE', ...ranks('ASKP'), ...ranks('BIDP'), ...ranks('ASKP_RSQN'),
  ...ranks('BIDP_RSQN'), 'TOTAL_ASKP_RSQN', 'TOTAL_BIDP_RSQN', 'OVTM_TOTAL_ASKP_RSQN', 'OVTM_TOTAL_BIDP_RSQN',
  'ANTC_CNPR', 'ANTC_CNQN', 'ANTC_VOL', 'ANTC_CNTG_VRSS', 'ANTC_CNTG_VRSS_SIGN', 'ANTC_CNTG_PRDY_CTRT', 'ACML_VOL',
  'TOTAL_ASKP_RSQN_ICDC', 'TOTAL_BIDP_RSQN_ICDC', 'OVTM_TOTAL_ASKP_ICDC', 'OVTM_TOTAL_BIDP_ICDC', 'STCK_DEAL_CLS_CODE',
]; // prettier-ignore

// ccnl_notice (H0STCNI0 real, H0STCNI9 mock), 26 columns; tr_key is the HTS id.
const FILL_COLUMNS = [
  'CUST_ID', 'ACNT_NO', 'ODER_NO', 'OODER_NO', 'SELN_BYOV_CLS', 'RCTF_CLS', 'ODER_KIND', 'ODER_COND',
  'STCK_SHRN_ISCD', 'CNTG_QTY', 'CNTG_UNPR', 'STCK_CNTG_HOUR', 'RFUS_YN', 'CNTG_YN', 'ACPT_YN', 'BRNC_NO', 'ODER_QTY',
  'ACNT_NAME', 'ORD_COND_PRC', 'ORD_EXG_GB', 'POPUP_YN', 'FILLER', 'CRDT_CLS', 'CRDT_LOAN_DATE', 'CNTG_ISNM40',
  'ODER_PRC',
] as const; // prettier-ignore

/**
 * Simulator choice: only these tr_ids are served; any other answers OPSP8991 ("invalid tr_id"), though the real
 * broker knows many more (overseas, futures, index, NXT order books...).
 */
export const KIS_TR_LAYOUTS: Readonly<Record<string, KisTrLayout>> = {
  H0STCNT0: { kind: 'trade', columns: TRADE_COLUMNS },
  H0NXCNT0: { kind: 'trade', columns: NXT_TRADE_COLUMNS },
  H0UNCNT0: { kind: 'trade', columns: NXT_TRADE_COLUMNS },
  H0STASP0: { kind: 'orderbook', columns: ORDERBOOK_COLUMNS },
  H0STCNI0: { kind: 'fill', columns: FILL_COLUMNS },
  H0STCNI9: { kind: 'fill', columns: FILL_COLUMNS },
};

export function kisLayout(trId: string): KisTrLayout | undefined {
  return Object.hasOwn(KIS_TR_LAYOUTS, trId) ? KIS_TR_LAYOUTS[trId] : undefined;
}

/** One record's fields in column order; a column the builder left out is a bug, caught here rather than by a client. */
function inColumnOrder(columns: readonly string[], values: Record<string, string | number>): string {
  return columns
    .map((column) => {
      const value = values[column];
      if (value === undefined) throw new Error(`no value for KIS column ${column}`);
      return String(value);
    })
    .join('^');
}

function tradeValues(q: Quote): Record<string, string | number> {
  const sells = Math.floor(q.n / 2);
  const buys = q.n - sells;
  const side = q.n % 2 === 1 ? '1' : '5'; // 1 buy-side trade, 5 sell-side
  return {
    // Shapes as in a captured frame: `005930^112616^62700^2^400^0.64^62700.41^...^20230324^20^N^...^0^^62700`.
    MKSC_SHRN_ISCD: q.code,
    STCK_CNTG_HOUR: q.time,
    STCK_PRPR: q.price,
    PRDY_VRSS_SIGN: kisSign(q.price - q.previousClose),
    PRDY_VRSS: q.price - q.previousClose,
    PRDY_CTRT: percent(q.price - q.previousClose, q.previousClose),
    WGHN_AVRG_STCK_PRC: ((q.open + q.high + q.low) / 3).toFixed(2),
    STCK_OPRC: q.open,
    STCK_HGPR: q.high,
    STCK_LWPR: q.low,
    ASKP1: q.price + 100,
    BIDP1: q.price,
    CNTG_VOL: q.volume / q.n,
    ACML_VOL: q.volume,
    ACML_TR_PBMN: q.volume * q.price,
    SELN_CNTG_CSNU: sells,
    SHNU_CNTG_CSNU: buys,
    NTBY_CNTG_CSNU: buys - sells,
    CTTR: percent(buys, Math.max(sells, 1)),
    SELN_CNTG_SMTN: (sells * q.volume) / q.n,
    SHNU_CNTG_SMTN: (buys * q.volume) / q.n,
    CCLD_DVSN: side,
    CNTG_CLS_CODE: side,
    SHNU_RATE: percent(buys, q.n),
    PRDY_VOL_VRSS_ACML_VOL_RATE: '12.34',
    OPRC_HOUR: '090000',
    OPRC_VRSS_PRPR_SIGN: kisSign(q.price - q.open),
    OPRC_VRSS_PRPR: q.price - q.open,
    HGPR_HOUR: '090500',
    HGPR_VRSS_PRPR_SIGN: kisSign(q.price - q.high),
    HGPR_VRSS_PRPR: q.price - q.high,
    LWPR_HOUR: '091000',
    LWPR_VRSS_PRPR_SIGN: kisSign(q.price - q.low),
    LWPR_VRSS_PRPR: q.price - q.low,
    BSOP_DATE: q.date,
    NEW_MKOP_CLS_CODE: '20',
    TRHT_YN: 'N',
    ASKP_RSQN1: 1200,
    BIDP_RSQN1: 1500,
    TOTAL_ASKP_RSQN: 120_000,
    TOTAL_BIDP_RSQN: 150_000,
    VOL_TNRT: '0.12',
    PRDY_SMNS_HOUR_ACML_VOL: 500_000,
    PRDY_SMNS_HOUR_ACML_VOL_RATE: '45.67',
    HOUR_CLS_CODE: '0',
    MRKT_TRTM_CLS_CODE: '',
    VI_STND_PRC: q.open,
  };
}

function orderbookValues(q: Quote): Record<string, string | number> {
  const values: Record<string, string | number> = {
    MKSC_SHRN_ISCD: q.code,
    BSOP_HOUR: q.time,
    HOUR_CLS_CODE: '0',
    TOTAL_ASKP_RSQN: 55_000,
    TOTAL_BIDP_RSQN: 65_000,
    OVTM_TOTAL_ASKP_RSQN: 0,
    OVTM_TOTAL_BIDP_RSQN: 0,
    ANTC_CNPR: 0,
    ANTC_CNQN: 0,
    ANTC_VOL: 0,
    ANTC_CNTG_VRSS: 0,
    ANTC_CNTG_VRSS_SIGN: '3',
    ANTC_CNTG_PRDY_CTRT: '0.00',
    ACML_VOL: q.volume,
    TOTAL_ASKP_RSQN_ICDC: 0,
    TOTAL_BIDP_RSQN_ICDC: 0,
    OVTM_TOTAL_ASKP_ICDC: 0,
    OVTM_TOTAL_BIDP_ICDC: 0,
    STCK_DEAL_CLS_CODE: '0',
  };
  for (let rank = 1; rank <= 10; rank++) {
    values[`ASKP${rank}`] = q.price + rank * 100;
    values[`BIDP${rank}`] = q.price - (rank - 1) * 100;
    values[`ASKP_RSQN${rank}`] = 1000 * rank;
    values[`BIDP_RSQN${rank}`] = 1000 * rank + 500;
  }
  return values;
}

/**
 * A fill of one share of 005930 at the market price. The order number (ODER_NO) is the stream's sequence number,
 * so fill notices have their growing field too. The account and branch are simulator choices.
 */
function fillValues(q: Quote): Record<string, string | number> {
  const stock = quoteAt('005930', q.n, 0);
  return {
    CUST_ID: q.code,
    ACNT_NO: '5000000001',
    ODER_NO: String(q.n).padStart(10, '0'),
    OODER_NO: '',
    SELN_BYOV_CLS: '02',
    RCTF_CLS: '0',
    ODER_KIND: '00',
    ODER_COND: '0',
    STCK_SHRN_ISCD: stock.code,
    CNTG_QTY: 1,
    CNTG_UNPR: stock.price,
    STCK_CNTG_HOUR: q.time,
    RFUS_YN: '0',
    CNTG_YN: '2',
    ACPT_YN: '2',
    BRNC_NO: '91252',
    ODER_QTY: 1,
    ACNT_NAME: 'SIMULATED',
    ORD_COND_PRC: '',
    ORD_EXG_GB: '1',
    POPUP_YN: 'Y',
    FILLER: '',
    CRDT_CLS: '',
    CRDT_LOAN_DATE: '',
    CNTG_ISNM40: '삼성전자',
    ODER_PRC: stock.price,
  };
}

const VALUES: Record<KisTrKind, (q: Quote) => Record<string, string | number>> = {
  trade: tradeValues,
  orderbook: orderbookValues,
  fill: fillValues,
};

/** The `^`-separated record n of a (tr_id, tr_key) stream. */
export function kisRecord(layout: KisTrLayout, trKey: string, n: number, now: number): string {
  return inColumnOrder(layout.columns, VALUES[layout.kind](quoteAt(trKey, n, now)));
}

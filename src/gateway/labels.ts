import type { Provider } from '../config/types';

/**
 * The metric labels a call's API and the broker's code take: a closed list each, so a client sending made-up
 * tr_ids cannot grow the series without bound. Anything else is `other`. docs/metrics.md gives the cardinality:
 * per account, (clients) x (APIS + 1) x (results) x (CODES + 2) at most, and in practice a handful.
 */

// The calls bots make most (the official samples' quotations, orders, balance), real and mock tr_ids.
const KIS_APIS = [
  'FHKST01010100', // current price (the proof call too)
  'FHKST01010200', // asking price
  'FHKST01010300', // recent trades
  'FHKST01010400', // daily prices
  'FHKST03010100', // period chart
  'FHKST03010200', // minute chart
  'HHDFS00000300', // overseas price
  'TTTC0012U',
  'TTTC0011U',
  'VTTC0012U',
  'VTTC0011U', // cash order buy / sell
  'TTTC0802U',
  'TTTC0801U',
  'VTTC0802U',
  'VTTC0801U', // the same, older ids
  'TTTC0013U',
  'VTTC0013U',
  'TTTC0803U',
  'VTTC0803U', // modify / cancel
  'TTTC8434R',
  'VTTC8434R', // balance
  'TTTC8001R',
  'VTTC8001R', // daily orders
  'TTTC8908R',
  'VTTC8908R', // orderable amount
] as const;

const KIWOOM_APIS = [
  'ka10001', // stock info (the proof call too)
  'ka10004', // asking price
  'ka10080', // minute chart
  'ka10081', // daily chart
  'kt10000',
  'kt10001',
  'kt10002',
  'kt10003', // buy, sell, modify, cancel
  'kt00001', // deposit
  'kt00018', // balance
] as const;

const KIS_CODES = [
  'EGW00121',
  'EGW00123',
  'EGW00201',
  'EGW00101',
  'EGW00102',
  'EGW00103',
  'EGW00104',
  'EGW00105',
  'EGW00205',
  'EGW00208',
  'OPSQ0002',
  'OPSQ2001',
  'OPSQ2002',
] as const;
const KIWOOM_CODES = ['8005', '8001', '1700', '1501', '1504', '1511'] as const;

const APIS: Record<Provider, ReadonlySet<string>> = { kis: new Set(KIS_APIS), kiwoom: new Set(KIWOOM_APIS) };
const CODES: Record<Provider, ReadonlySet<string>> = { kis: new Set(KIS_CODES), kiwoom: new Set(KIWOOM_CODES) };

export const apiLabel = (provider: Provider, api: string | undefined): string => (api !== undefined && APIS[provider].has(api) ? api : 'other');

/** Empty for no code (a success), the code when listed, else `other`. */
export const codeLabel = (provider: Provider, code: string): string => (code === '' || CODES[provider].has(code) ? code : 'other');

/**
 * The Kiwoom WebSocket's `trnm` messages as the endpoint reads and writes them
 * (docs/brokers.md#kiwoom-real-time-session): LOGIN, REG and REMOVE from clients, checked whole before anything
 * changes; the answers in the broker's shape; the (type, item) pairs a REAL push carries, for routing.
 */

interface KiwoomRefusal {
  returnCode: number;
  returnMsg: string;
}

const refusal = (returnCode: number, returnMsg: string): KiwoomRefusal => ({ returnCode, returnMsg });
const NOTE = (text: string) => ` (broker-token-sidecar: ${text})`;

export const KIWOOM_REFUSALS = {
  // The REST API's answer to a bad token; its clients know 8005 as "get a new token and log in again".
  tokenInvalid: (note: string) => refusal(3, `인증에 실패했습니다[8005:Token이 유효하지 않습니다]${NOTE(note)}`),
  missingField: (field: string) => refusal(2, `입력 값 오류입니다[1511:필수 입력 값에 값이 존재하지 않습니다(${field})]`),
  badField: (field: string) => refusal(2, `입력 값 오류입니다[1517:입력 값 형식이 올바르지 않습니다(${field})]`),
  unsupported: (trnm: string) =>
    refusal(2, `입력 값 오류입니다[1504:해당 URI에서는 지원하지 않는 API ID입니다(trnm=${trnm})]${NOTE('not served through the real-time endpoint')}`),
  /** `whose`: one sidecar's session, or (with replicas) the deployment's. */
  budgetFull: (limit: number, whose: 'session' | 'deployment' = 'session') =>
    refusal(2, `입력 값 오류입니다[1517:입력 값 형식이 올바르지 않습니다(data)]${NOTE(`the ${whose}'s ${limit} registrations are in use`)}`),
};

// grp_no is a string of up to 4 characters (third-party spec copy); items `005930`, `005930_NX`, `005930_AL`.
const GROUP = /^[0-9A-Za-z]{1,4}$/;
const ITEM = /^[0-9A-Za-z_]{1,20}$/;
const TYPE = /^[0-9A-Za-z]{1,4}$/;

export interface Pair {
  id: string;
  key: string;
}

type KiwoomClientMessage =
  | { kind: 'ping' }
  | { kind: 'login'; token: string | undefined }
  | { kind: 'change'; trnm: 'REG' | 'REMOVE'; group: string; refresh: boolean; pairs: Pair[] }
  | { kind: 'refused'; trnm: string; refusal: KiwoomRefusal }
  | { kind: 'ignored' };

/** A client's message; REG and REMOVE are checked whole (group, refresh, every type and item) before anything changes. */
export function readKiwoomClientMessage(text: string): KiwoomClientMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { kind: 'ignored' }; // as the broker (and the simulator): text that is not JSON names no trnm to answer
  }
  if (!isObject(parsed)) return { kind: 'ignored' };
  const trnm = typeof parsed['trnm'] === 'string' ? parsed['trnm'].slice(0, 20) : '';
  if (trnm === 'PING') return { kind: 'ping' };
  if (trnm === 'LOGIN') return { kind: 'login', token: typeof parsed['token'] === 'string' ? parsed['token'] : undefined };
  if (trnm !== 'REG' && trnm !== 'REMOVE') return { kind: 'refused', trnm, refusal: KIWOOM_REFUSALS.unsupported(trnm.replace(/[^\x21-\x7e]/g, '?')) };
  const group = parsed['grp_no'];
  if (group === undefined) return { kind: 'refused', trnm, refusal: KIWOOM_REFUSALS.missingField('grp_no') };
  if (typeof group !== 'string' || !GROUP.test(group)) return { kind: 'refused', trnm, refusal: KIWOOM_REFUSALS.badField('grp_no') };
  const refresh = parsed['refresh'] ?? '1';
  if (refresh !== '0' && refresh !== '1') return { kind: 'refused', trnm, refusal: KIWOOM_REFUSALS.badField('refresh') };
  const data = parsed['data'];
  if (data === undefined) return { kind: 'refused', trnm, refusal: KIWOOM_REFUSALS.missingField('data') };
  if (!Array.isArray(data)) return { kind: 'refused', trnm, refusal: KIWOOM_REFUSALS.badField('data') };
  const pairs: Pair[] = [];
  for (const entry of data as unknown[]) {
    if (!isObject(entry)) return { kind: 'refused', trnm, refusal: KIWOOM_REFUSALS.badField('data') };
    const { item, type } = entry;
    if (!isStringList(item) || !item.every((i) => ITEM.test(i))) return { kind: 'refused', trnm, refusal: KIWOOM_REFUSALS.badField('item') };
    if (!isStringList(type) || !type.every((t) => TYPE.test(t))) return { kind: 'refused', trnm, refusal: KIWOOM_REFUSALS.badField('type') };
    for (const t of type) for (const i of item) pairs.push({ id: t, key: i });
  }
  return { kind: 'change', trnm, group, refresh: refresh === '1', pairs };
}

export function kiwoomAnswer(trnm: string, r?: KiwoomRefusal): string {
  return JSON.stringify({ trnm, return_code: r?.returnCode ?? 0, return_msg: r?.returnMsg ?? '' });
}

/**
 * With replicas: the holder's answer to a replica's REG, naming the pairs it concerns (the broker's answers name
 * none, and a replica may have several REGs waiting). The broker's answer shape with `data` as in a REG; only
 * replicas read it, never a client (kiwoom-relay.ts answers its clients in the broker's own shape).
 */
export function kiwoomPairsAnswer(pairs: Pair[], r?: KiwoomRefusal): string {
  const data = pairs.map(({ id, key }) => ({ item: [key], type: [id] }));
  return JSON.stringify({ trnm: 'REG', return_code: r?.returnCode ?? 0, return_msg: r?.returnMsg ?? '', data });
}

/** LOGIN accepted, as measured on the mock server. */
export const KIWOOM_LOGIN_OK = JSON.stringify({ trnm: 'LOGIN', return_code: 0, sor_yn: 'Y' });
export const KIWOOM_PING = JSON.stringify({ trnm: 'PING' });

export function kiwoomLogin(token: string): string {
  return JSON.stringify({ trnm: 'LOGIN', token });
}

/** An upstream REG (refresh always "1": the session's other registrations stay) or REMOVE of pairs, grouped by type. */
export function kiwoomChange(trnm: 'REG' | 'REMOVE', group: string, pairs: Pair[]): string {
  const byType = new Map<string, string[]>();
  for (const { id, key } of pairs) byType.set(id, [...(byType.get(id) ?? []), key]);
  const data = [...byType].map(([type, items]) => ({ item: items, type: [type] }));
  return JSON.stringify(trnm === 'REG' ? { trnm, grp_no: group, refresh: '1', data } : { trnm, grp_no: group, data });
}

type KiwoomUpstreamMessage =
  | { kind: 'real'; pairs: Pair[] }
  | { kind: 'ping' }
  /** `pairs` only in the holder's answers to replicas (kiwoomPairsAnswer); the broker's name none. */
  | { kind: 'answer'; trnm: string; ok: boolean; returnCode: number; returnMsg: string; pairs: Pair[] }
  | { kind: 'system'; code: string; message: string }
  | { kind: 'other' };

export function readKiwoomUpstream(text: string): KiwoomUpstreamMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { kind: 'other' };
  }
  if (!isObject(parsed)) return { kind: 'other' };
  const trnm = parsed['trnm'];
  if (trnm === 'PING') return { kind: 'ping' };
  if (trnm === 'REAL') return { kind: 'real', pairs: pairsOf(parsed['data']) };
  if (trnm === 'SYSTEM') {
    return {
      kind: 'system',
      code: typeof parsed['code'] === 'string' ? parsed['code'] : '',
      message: typeof parsed['message'] === 'string' ? parsed['message'] : '',
    };
  }
  if (typeof trnm === 'string' && 'return_code' in parsed) {
    const returnCode = Number(parsed['return_code']);
    const returnMsg = typeof parsed['return_msg'] === 'string' ? parsed['return_msg'] : '';
    return { kind: 'answer', trnm, ok: returnCode === 0, returnCode, returnMsg, pairs: pairsOf(parsed['data']) };
  }
  return { kind: 'other' };
}

/** The (type, item) pairs of a REAL push (`type` and `item` strings) or of a REG's data (lists of each). */
function pairsOf(data: unknown): Pair[] {
  if (!Array.isArray(data)) return [];
  return data.filter(isObject).flatMap((e) => {
    const types = typeof e['type'] === 'string' ? [e['type']] : isStringList(e['type']) ? e['type'] : [];
    const items = typeof e['item'] === 'string' ? [e['item']] : isStringList(e['item']) ? e['item'] : [];
    return types.flatMap((id) => items.map((key) => ({ id, key })));
  });
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.length > 0 && value.length <= 100 && value.every((v) => typeof v === 'string');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

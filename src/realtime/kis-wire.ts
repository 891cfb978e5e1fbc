/**
 * The KIS WebSocket's messages as the endpoint reads and writes them (docs/brokers.md#kis-real-time-session,
 * #kis-control-answers, #kis-real-time-data): a client's register, unregister or PINGPONG answer read into a typed
 * request; control answers in the broker's shape; the few bytes of a data frame the endpoint needs to route it
 * (its TR and the first field of its first record), read without touching the rest.
 */
import { createDecipheriv } from 'node:crypto';
import { formatWallClock, KST_ZONE } from '../core/time';

interface KisAnswer {
  code: string;
  rtCd: '0' | '1' | '9';
  msg1: string;
}

// Captured answers: rt_cd "0" on success, "1" on these refusals, "9" on the parsing errors and a key in use.
export const KIS_ANSWERS = {
  subscribed: { code: 'OPSP0000', rtCd: '0', msg1: 'SUBSCRIBE SUCCESS' },
  unsubscribed: { code: 'OPSP0001', rtCd: '0', msg1: 'UNSUBSCRIBE SUCCESS' },
  alreadySubscribed: { code: 'OPSP0002', rtCd: '1', msg1: 'ALREADY IN SUBSCRIBE' },
  notSubscribed: { code: 'OPSP0003', rtCd: '1', msg1: 'UNSUBSCRIBE ERROR (not found!)' },
  maxSubscriptions: { code: 'OPSP0008', rtCd: '1', msg1: 'MAX SUBSCRIBE OVER' },
  approvalNotFound: { code: 'OPSP0011', rtCd: '1', msg1: 'invalid approval : NOT FOUND' },
  invalidTrId: { code: 'OPSP8991', rtCd: '1', msg1: 'SUBSCRIBE ERROR : invalid tr_id' },
  invalidTrKey: { code: 'OPSP8992', rtCd: '1', msg1: 'SUBSCRIBE ERROR : invalid tr_key' },
  invalidTrType: { code: 'OPSP8997', rtCd: '9', msg1: 'JSON PARSING ERROR : invalid tr_type' },
  invalidCusttype: { code: 'OPSP8998', rtCd: '9', msg1: 'JSON PARSING ERROR : invalid custtype' },
  trKeyNotFound: { code: 'OPSP9990', rtCd: '9', msg1: 'JSON PARSING ERROR : tr_key not found' },
  inputNotFound: { code: 'OPSP9991', rtCd: '9', msg1: 'JSON PARSING ERROR : input not found' },
  bodyNotFound: { code: 'OPSP9992', rtCd: '9', msg1: 'JSON PARSING ERROR : body not found' },
  headerNotFound: { code: 'OPSP9998', rtCd: '9', msg1: 'JSON PARSING ERROR : header not found' },
  invalidJson: { code: 'OPSP9999', rtCd: '9', msg1: 'JSON PARSING ERROR : invalid json format' },
} as const satisfies Record<string, KisAnswer>;

/** The broker's codes the endpoint reads in its answers. */
export const KIS_CODES = {
  subscribed: 'OPSP0000',
  unsubscribed: 'OPSP0001',
  already: 'OPSP0002',
  notSubscribed: 'OPSP0003',
  keyInUse: 'OPSP8996',
  approvalNotFound: 'OPSP0011',
};

/**
 * Fill notices (H0STCNI0 real, H0STCNI9 mock; H0GSCNI0/9 overseas, H0IFCNI0 futures...): tr_key is the HTS id,
 * the frames are encrypted, one subscription carries every linked account's fills (official).
 */
export const isFillTr = (trId: string): boolean => /^H0[A-Z]{2}CNI[0-9]$/.test(trId);

// tr_ids are upper-case letters and digits (H0STCNT0, HDFSCNT0); tr_keys stock codes, HTS ids, "DNASAAPL".
const TR_ID = /^[A-Z0-9]{1,16}$/;
const TR_KEY = /^[\x21-\x7e]{1,40}$/;

type KisClientMessage =
  | { kind: 'pingpong' }
  | { kind: 'malformed'; answer: KisAnswer; trId: string; trKey: string }
  | { kind: 'request'; approvalKey: string | undefined; register: boolean; trId: string; trKey: string; refusal?: KisAnswer };

/** A client's message, read as the broker reads it; `refusal` set when its fields fail the broker's checks. */
export function readKisClientMessage(text: string): KisClientMessage {
  const malformed = (answer: KisAnswer, trId = '(null)', trKey = ''): KisClientMessage => ({ kind: 'malformed', answer, trId, trKey });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return malformed(KIS_ANSWERS.invalidJson);
  }
  if (!isObject(parsed)) return malformed(KIS_ANSWERS.invalidJson);
  const header = parsed['header'];
  if (!isObject(header)) return malformed(KIS_ANSWERS.headerNotFound);
  if (header['tr_id'] === 'PINGPONG') return { kind: 'pingpong' };
  const body = parsed['body'];
  if (!isObject(body)) return malformed(KIS_ANSWERS.bodyNotFound);
  const input = body['input'];
  if (!isObject(input)) return malformed(KIS_ANSWERS.inputNotFound);
  const rawTrId = input['tr_id'];
  const rawTrKey = input['tr_key'];
  const trId = typeof rawTrId === 'string' && TR_ID.test(rawTrId) ? rawTrId : '(null)';
  const trKey = typeof rawTrKey === 'string' && TR_KEY.test(rawTrKey) ? rawTrKey : '';
  const approvalKey = typeof header['approval_key'] === 'string' ? header['approval_key'] : undefined;
  const request = { kind: 'request' as const, approvalKey, register: header['tr_type'] === '1', trId, trKey };
  const custtype = header['custtype'];
  if (custtype !== 'P' && custtype !== 'B') return { ...request, refusal: KIS_ANSWERS.invalidCusttype };
  if (header['tr_type'] !== '1' && header['tr_type'] !== '2') return { ...request, refusal: KIS_ANSWERS.invalidTrType };
  if (trId === '(null)') return { ...request, refusal: KIS_ANSWERS.invalidTrId };
  if (rawTrKey === undefined) return { ...request, refusal: KIS_ANSWERS.trKeyNotFound };
  if (trKey === '') return { ...request, refusal: KIS_ANSWERS.invalidTrKey };
  return request;
}

export interface KisCipher {
  key: string;
  iv: string;
}

/**
 * A control answer: `{"header":{"tr_id","tr_key","encrypt"},"body":{"rt_cd","msg_cd","msg1"[,"output":{"iv","key"}]}}`.
 * `note` is added to msg1 for the sidecar's own refusals, as the gateway marks its answers.
 */
export function kisControl(answer: KisAnswer, trId: string, trKey: string, encrypt: boolean, output?: KisCipher, note?: string): string {
  const body: Record<string, unknown> = {
    rt_cd: answer.rtCd,
    msg_cd: answer.code,
    msg1: note ? `${answer.msg1} (broker-token-sidecar: ${note})` : answer.msg1,
  };
  if (output) body['output'] = { iv: output.iv, key: output.key };
  return JSON.stringify({ header: { tr_id: trId, tr_key: trKey, encrypt: encrypt ? 'Y' : 'N' }, body });
}

/** The upstream register (`tr_type` 1) or unregister (2) message, as the official client's data_fetch builds it. */
export function kisRequest(approvalKey: string, trId: string, trKey: string, register: boolean): string {
  return JSON.stringify({
    header: { approval_key: approvalKey, custtype: 'P', tr_type: register ? '1' : '2', 'content-type': 'utf-8' },
    body: { input: { tr_id: trId, tr_key: trKey } },
  });
}

/** `{"header":{"tr_id":"PINGPONG","datetime":"YYYYMMDDHHMMSS"}}`, in KST, as the broker sends it. */
export function kisPingpong(now: number): string {
  return JSON.stringify({ header: { tr_id: 'PINGPONG', datetime: formatWallClock(now, KST_ZONE).replace(/\D/g, '') } });
}

type KisUpstreamMessage =
  | { kind: 'data'; trId: string; encrypted: boolean; payload: string }
  | { kind: 'pingpong' }
  | { kind: 'control'; trId: string; trKey: string; code: string; ok: boolean; encrypt: boolean; output: KisCipher | undefined }
  | { kind: 'other' };

/** A frame from the broker: a data frame's TR and payload, or a control answer's fields. */
export function readKisUpstream(text: string): KisUpstreamMessage {
  if (text.startsWith('0|') || text.startsWith('1|')) {
    const second = text.indexOf('|', 2);
    const third = second < 0 ? -1 : text.indexOf('|', second + 1);
    if (third < 0) return { kind: 'other' };
    return { kind: 'data', trId: text.slice(2, second), encrypted: text[0] === '1', payload: text.slice(third + 1) };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { kind: 'other' };
  }
  const header = isObject(parsed) ? parsed['header'] : undefined;
  if (!isObject(header)) return { kind: 'other' };
  if (header['tr_id'] === 'PINGPONG') return { kind: 'pingpong' };
  const body = isObject(parsed) ? parsed['body'] : undefined;
  if (!isObject(body)) return { kind: 'other' };
  const output = body['output'];
  const cipher =
    isObject(output) && typeof output['key'] === 'string' && typeof output['iv'] === 'string' ? { key: output['key'], iv: output['iv'] } : undefined;
  return {
    kind: 'control',
    trId: typeof header['tr_id'] === 'string' ? header['tr_id'] : '',
    trKey: typeof header['tr_key'] === 'string' ? header['tr_key'] : '',
    code: typeof body['msg_cd'] === 'string' ? body['msg_cd'] : '',
    ok: body['rt_cd'] === '0',
    encrypt: header['encrypt'] === 'Y',
    output: cipher,
  };
}

/**
 * The key a data frame belongs to: the first field of its first record (the stock code, the HTS id of a fill
 * notice), decrypted first when the frame is (AES-256-CBC under the session's key and iv as UTF-8, base64, as the
 * official `aes_cbc_base64_dec`). Undefined when it cannot be read.
 */
export function firstField(payload: string, encrypted: boolean, cipher: KisCipher | undefined): string | undefined {
  let plain = payload;
  if (encrypted) {
    if (!cipher) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-cbc', Buffer.from(cipher.key, 'utf8'), Buffer.from(cipher.iv, 'utf8'));
      plain = Buffer.concat([decipher.update(payload, 'base64'), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }
  const end = plain.indexOf('^');
  return end < 0 ? plain : plain.slice(0, end);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

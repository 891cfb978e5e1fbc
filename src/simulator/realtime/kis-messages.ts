/**
 * The KIS WebSocket's JSON: what a client sends (register, unregister, the PINGPONG answer) read into a typed
 * request, and the broker's control answers. Codes and texts: docs/brokers.md#kis-control-answers (a third-party
 * table of the OPSP codes and captured answers); which check comes first is a simulator choice.
 */
import { kstCompact } from '../token-format';

export interface KisControlAnswer {
  code: string;
  rtCd: '0' | '1' | '9';
  msg1: string;
}

// Captured answers carry rt_cd "0" on success, "1" on these refusals, "9" on a key in use.
export const KIS_ANSWERS = {
  subscribed: { code: 'OPSP0000', rtCd: '0', msg1: 'SUBSCRIBE SUCCESS' },
  unsubscribed: { code: 'OPSP0001', rtCd: '0', msg1: 'UNSUBSCRIBE SUCCESS' },
  alreadySubscribed: { code: 'OPSP0002', rtCd: '1', msg1: 'ALREADY IN SUBSCRIBE' },
  notSubscribed: { code: 'OPSP0003', rtCd: '1', msg1: 'UNSUBSCRIBE ERROR (not found!)' },
  maxSubscriptions: { code: 'OPSP0008', rtCd: '1', msg1: 'MAX SUBSCRIBE OVER' },
  approvalNotFound: { code: 'OPSP0011', rtCd: '1', msg1: 'invalid approval : NOT FOUND' },
  invalidTrId: { code: 'OPSP8991', rtCd: '1', msg1: 'SUBSCRIBE ERROR : invalid tr_id' },
  invalidTrKey: { code: 'OPSP8992', rtCd: '1', msg1: 'SUBSCRIBE ERROR : invalid tr_key' },
  keyInUse: { code: 'OPSP8996', rtCd: '9', msg1: 'ALREADY IN USE appkey' },
  invalidTrType: { code: 'OPSP8997', rtCd: '9', msg1: 'JSON PARSING ERROR : invalid tr_type' },
  invalidCusttype: { code: 'OPSP8998', rtCd: '9', msg1: 'JSON PARSING ERROR : invalid custtype' },
  trKeyNotFound: { code: 'OPSP9990', rtCd: '9', msg1: 'JSON PARSING ERROR : tr_key not found' },
  inputNotFound: { code: 'OPSP9991', rtCd: '9', msg1: 'JSON PARSING ERROR : input not found' },
  bodyNotFound: { code: 'OPSP9992', rtCd: '9', msg1: 'JSON PARSING ERROR : body not found' },
  custtypeNotFound: { code: 'OPSP9997', rtCd: '9', msg1: 'JSON PARSING ERROR : custtype not found' },
  headerNotFound: { code: 'OPSP9998', rtCd: '9', msg1: 'JSON PARSING ERROR : header not found' },
  invalidJson: { code: 'OPSP9999', rtCd: '9', msg1: 'JSON PARSING ERROR : invalid json format' },
} as const satisfies Record<string, KisControlAnswer>;

/** A client message, read as far as the broker reads it before acting. */
type KisClientMessage =
  | { kind: 'pingpong' }
  | { kind: 'malformed'; answer: KisControlAnswer; trId: string; trKey: string }
  | { kind: 'request'; approvalKey: string | undefined; header: Record<string, unknown>; input: Record<string, unknown> };

/** A register or unregister request whose fields passed the broker's checks. */
export interface KisRequest {
  register: boolean;
  trId: string;
  trKey: string;
}

// tr_keys are stock codes, HTS ids, overseas symbols ("DNASAAPL"); simulator choice: printable, 1 to 40 characters.
const TR_KEY = /^[\x21-\x7e]{1,40}$/;

export function readKisMessage(text: string): KisClientMessage {
  const malformed = (answer: KisControlAnswer, trId = '(null)', trKey = ''): KisClientMessage => ({ kind: 'malformed', answer, trId, trKey });
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
  const approvalKey = header['approval_key'];
  return { kind: 'request', approvalKey: typeof approvalKey === 'string' ? approvalKey : undefined, header, input };
}

/** The field checks that follow the approval key: a request, or the answer that refuses it. */
export function checkKisRequest(
  header: Record<string, unknown>,
  input: Record<string, unknown>,
  knownTrId: (trId: string) => boolean,
): KisRequest | KisControlAnswer {
  const custtype = header['custtype'];
  if (custtype === undefined) return KIS_ANSWERS.custtypeNotFound;
  if (custtype !== 'P' && custtype !== 'B') return KIS_ANSWERS.invalidCusttype;
  const trType = header['tr_type'];
  if (trType !== '1' && trType !== '2') return KIS_ANSWERS.invalidTrType;
  const trId = input['tr_id'];
  if (typeof trId !== 'string' || !knownTrId(trId)) return KIS_ANSWERS.invalidTrId;
  const trKey = input['tr_key'];
  if (trKey === undefined) return KIS_ANSWERS.trKeyNotFound;
  if (typeof trKey !== 'string' || !TR_KEY.test(trKey)) return KIS_ANSWERS.invalidTrKey;
  return { register: trType === '1', trId, trKey };
}

/** The request's own tr_id and tr_key as the answer's header repeats them, when they are readable. */
export function echoedIds(input: Record<string, unknown>): { trId: string; trKey: string } {
  const trId = input['tr_id'];
  const trKey = input['tr_key'];
  return { trId: typeof trId === 'string' ? trId : '(null)', trKey: typeof trKey === 'string' ? trKey : '' };
}

/**
 * A control answer as captured: `{"header":{"tr_id","tr_key","encrypt"},"body":{"rt_cd","msg_cd","msg1"[,"output":{"iv","key"}]}}`.
 * A successful registration carries the session's key and iv whatever the TR (captured on H0STASP0 too).
 */
export function kisControl(answer: KisControlAnswer, trId: string, trKey: string, encrypt: boolean, output?: { iv: string; key: string }): string {
  const body: Record<string, unknown> = { rt_cd: answer.rtCd, msg_cd: answer.code, msg1: answer.msg1 };
  if (output) body['output'] = { iv: output.iv, key: output.key };
  return JSON.stringify({ header: { tr_id: trId, tr_key: trKey, encrypt: encrypt ? 'Y' : 'N' }, body });
}

/** `{"header":{"tr_id":"PINGPONG","datetime":"YYYYMMDDHHMMSS"}}`, the time in KST (captured). */
export function kisPingpong(now: number): string {
  return JSON.stringify({ header: { tr_id: 'PINGPONG', datetime: kstCompact(now) } });
}

/** A data frame: `{0|1}|TR_ID|NNN|records`, the count on three digits. */
export function kisDataFrame(encrypted: boolean, trId: string, count: number, payload: string): string {
  return `${encrypted ? '1' : '0'}|${trId}|${String(count).padStart(3, '0')}|${payload}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The simulated Kiwoom REST API: token (au10001), revoke (au10002), ka10001 as the proving call, and the orders
 * kt10000/kt10001. Kiwoom answers every outcome with HTTP 200 and a `return_code` (only 0 is success), except the
 * per-api-id call limit, which is HTTP 429. Where docs/brokers.md is silent the choice is marked "Simulator choice".
 */
import type { BrokerContext } from './context';
import { DOMESTIC_EXCHANGES, POSITIVE_DIGITS } from './orders';
import { bearerToken, bodyField, isJsonObject, type Answer, type BrokerRequest, type JsonBody } from './request';
import { kstCompact, mintKiwoomToken } from './token-format';
import type { Outcome } from './types';

const OK_MSG = '정상적으로 처리되었습니다';

function failure(returnCode: number, returnMsg: string, outcome: Outcome): Answer {
  return { status: 200, body: { return_code: returnCode, return_msg: returnMsg }, outcome };
}

// Simulator choice: input errors are return_code 2 with a 15xx detail, the family Kiwoom uses for them.
const inputError = (detail: string): Answer => failure(2, `입력 값 오류입니다[${detail}]`, 'bad_request');
const missingField = (field: string): Answer => inputError(`1511:필수 입력 값에 값이 존재하지 않습니다(${field})`);
const wrongApiId = (apiId: string | undefined): Answer => inputError(`1504:해당 URI에서는 지원하지 않는 API ID입니다(api-id=${apiId ?? ''})`);

// Simulator choice: both an unknown app key and a wrong secret answer 8001 (8002 and 8030 are the same family
// for other causes: an expired key, a real key used on the mock host).
const AUTH_FAILED = (): Answer => failure(3, '인증에 실패했습니다[8001:App Key와 Secret Key 검증에 실패했습니다]', 'auth_rejected');
const TOKEN_INVALID = (outcome: 'token_invalid' | 'token_expired'): Answer => failure(3, '인증에 실패했습니다[8005:Token이 유효하지 않습니다]', outcome);

/** api-id is optional on the OAuth endpoints, but when present it must name the right one. */
function apiIdMismatch(req: BrokerRequest, expected: string): Answer | undefined {
  const apiId = req.headers['api-id'];
  return apiId === undefined || apiId === expected ? undefined : wrongApiId(apiId);
}

type Front = { ok: true; appKey: string } | { ok: false; answer: Answer };

function checkOAuthRequest(ctx: BrokerContext, req: BrokerRequest, needsGrantType: boolean): Front {
  if (!isJsonObject(req.body)) return { ok: false, answer: inputError('1501:요청 본문을 해석할 수 없습니다') };
  if (needsGrantType && bodyField(req.body, 'grant_type') !== 'client_credentials') {
    return { ok: false, answer: inputError('1501:grant_type 값이 올바르지 않습니다') };
  }
  const appKey = bodyField(req.body, 'appkey');
  const secret = bodyField(req.body, 'secretkey');
  if (!appKey) return { ok: false, answer: missingField('appkey') };
  if (!secret) return { ok: false, answer: missingField('secretkey') };
  if (!ctx.credentials.check('kiwoom', appKey, secret).ok) return { ok: false, answer: AUTH_FAILED() };
  return { ok: true, appKey };
}

export function kiwoomToken(ctx: BrokerContext, req: BrokerRequest): Answer {
  const mismatch = apiIdMismatch(req, 'au10001');
  if (mismatch) return mismatch;
  const front = checkOAuthRequest(ctx, req, true);
  if (!front.ok) return front.answer;
  const decision = ctx.ledger.issue('kiwoom', front.appKey, ctx.clock.now(), ctx.settings.kiwoomSameToken, () => mintKiwoomToken());
  if (decision.kind === 'rate_limited') {
    return failure(5, '허용된 요청 개수를 초과하였습니다[1700:허용된 요청 개수를 초과하였습니다. API ID=au10001]', 'rate_limited');
  }
  return {
    status: 200,
    body: kiwoomTokenBody(decision.token.value, decision.token.expiresAt),
    outcome: decision.kind === 'new' ? 'issued' : 'same_token',
  };
}

export function kiwoomTokenBody(token: string, expiresAt: number): Record<string, unknown> {
  return { expires_dt: kstCompact(expiresAt), token_type: 'bearer', token, return_code: 0, return_msg: OK_MSG };
}

export function kiwoomRevoke(ctx: BrokerContext, req: BrokerRequest): Answer {
  const mismatch = apiIdMismatch(req, 'au10002');
  if (mismatch) return mismatch;
  const front = checkOAuthRequest(ctx, req, false);
  if (!front.ok) return front.answer;
  const token = bodyField(req.body, 'token');
  if (!token) return missingField('token');
  // Simulator choice: as for KIS, revoking a token that is unknown or already dead still succeeds.
  ctx.ledger.revoke(token, 'kiwoom', front.appKey);
  return { status: 200, body: KIWOOM_OK, outcome: 'revoked' };
}

export const KIWOOM_OK = { return_code: 0, return_msg: OK_MSG };

type BusinessFront = { ok: true; apiId: string } | { ok: false; answer: Answer };

/**
 * The front every Kiwoom business call shares (ka10001, kt10000/kt10001). Check order (simulator choice): api-id,
 * token known, per-api-id call limit, token state; each endpoint then checks its body. A missing or malformed
 * authorization header gets the same 8005 as a bad token; an expired token too, since Kiwoom does not tell the two
 * apart in the answers seen. The call carries no app key, so the limit is kept per owner of the token: a token the
 * simulator never issued has no owner and is refused before it could spend anyone's budget.
 */
function checkBusinessCall(ctx: BrokerContext, req: BrokerRequest, apiIds: readonly string[]): BusinessFront {
  const refuse = (answer: Answer): BusinessFront => ({ ok: false, answer });
  const apiId = req.headers['api-id'];
  if (apiId === undefined || !apiIds.includes(apiId)) return refuse(wrongApiId(apiId));
  const token = bearerToken(req.headers['authorization']);
  const owner = ctx.ledger.ownerOf(token, 'kiwoom');
  if (token === undefined || owner === undefined) return refuse(TOKEN_INVALID('token_invalid'));
  const now = ctx.clock.now();
  if (!ctx.kiwoomCalls.tryTake(owner, apiId, now)) return refuse(tooManyCalls(apiId));
  const state = ctx.ledger.check(token, 'kiwoom', undefined, now);
  if (state === 'invalid') return refuse(TOKEN_INVALID('token_invalid'));
  if (state === 'expired') return refuse(TOKEN_INVALID('token_expired'));
  return { ok: true, apiId };
}

/**
 * Over the per-api-id limit: HTTP 429 with return_code 5 and detail 1700 naming the api-id (third-party logs; the
 * only Kiwoom refusal that is not HTTP 200).
 */
function tooManyCalls(apiId: string): Answer {
  const body = { return_code: 5, return_msg: `허용된 요청 개수를 초과하였습니다[1700:허용된 요청 개수를 초과하였습니다. API ID=${apiId}]` };
  return { status: 429, body, outcome: 'quota_exceeded' };
}

/** ka10001 (basic stock info), the proving call: the shared front, then the stock code. */
export function kiwoomStockInfo(ctx: BrokerContext, req: BrokerRequest): Answer {
  const front = checkBusinessCall(ctx, req, ['ka10001']);
  if (!front.ok) return front.answer;
  const stockCode = bodyField(req.body, 'stk_cd');
  if (!stockCode) return missingField('stk_cd');
  return { status: 200, body: kiwoomStockInfoBody(stockCode), outcome: 'ok' };
}

const ORDER_SIDES: Record<string, string> = { kt10000: '매수', kt10001: '매도' };
const LIMIT_ORDER = '0';

// Simulator choice: a present but malformed field is return_code 2 with detail 1517, in the 15xx input family.
const badField = (field: string): Answer => inputError(`1517:입력 값 형식이 올바르지 않습니다(${field})`);

/**
 * The first refusal an order body earns, or undefined for a valid order (fields as the guide's kt10000 page
 * names them: the prices are `ord_uv` and `cond_uv`). Only trde_tp "0" (limit) needs a price; "3" (market)
 * and the guide's other kinds are accepted as they come.
 */
function orderBodyRefusal(body: JsonBody): Answer | undefined {
  if (!isJsonObject(body)) return inputError('1501:요청 본문을 해석할 수 없습니다');
  const field = (name: string): string => bodyField(body, name) ?? '';
  for (const name of ['dmst_stex_tp', 'stk_cd', 'ord_qty', 'trde_tp']) if (field(name) === '') return missingField(name);
  if (!DOMESTIC_EXCHANGES.includes(field('dmst_stex_tp'))) return badField('dmst_stex_tp');
  if (!POSITIVE_DIGITS.test(field('ord_qty'))) return badField('ord_qty');
  if (!/^\d{1,2}$/.test(field('trde_tp'))) return badField('trde_tp');
  const price = field('ord_uv');
  if (field('trde_tp') === LIMIT_ORDER && price === '') return missingField('ord_uv');
  if (price !== '' && !POSITIVE_DIGITS.test(price)) return badField('ord_uv');
  return undefined;
}

/**
 * kt10000 (buy) and kt10001 (sell) at /api/dostk/ordr. The order is accepted and forgotten: nothing is filled.
 * The answer names the order number and the exchange, nothing else of the body.
 */
export function kiwoomOrder(ctx: BrokerContext, req: BrokerRequest): Answer {
  const front = checkBusinessCall(ctx, req, Object.keys(ORDER_SIDES));
  if (!front.ok) return front.answer;
  const refusal = orderBodyRefusal(req.body);
  if (refusal) return refusal;
  const exchange = bodyField(req.body, 'dmst_stex_tp') ?? 'KRX';
  return { status: 200, body: kiwoomOrderBody(ctx.orderNumbers.next('kiwoom'), exchange, front.apiId), outcome: 'ok' };
}

/** The success answer (a third-party capture: `"return_msg":"KRX 매수주문이 완료되었습니다."`). */
export function kiwoomOrderBody(orderNumber: string, exchange: string, apiId: string): Record<string, unknown> {
  const side = ORDER_SIDES[apiId] ?? '매수';
  return { ord_no: orderNumber, dmst_stex_tp: exchange, return_code: 0, return_msg: `${exchange} ${side}주문이 완료되었습니다.` };
}

export function kiwoomStockInfoBody(stockCode: string): Record<string, unknown> {
  return {
    stk_cd: stockCode,
    stk_nm: stockCode === '005930' ? '삼성전자' : '시뮬레이션종목',
    cur_prc: '+71000',
    pred_pre: '+500',
    flu_rt: '+0.71',
    trde_qty: '12345678',
    open_pric: '+70600',
    high_pric: '+71300',
    low_pric: '-70400',
    upl_pric: '+91700',
    lst_pric: '-49400',
    return_code: 0,
    return_msg: OK_MSG,
  };
}

/**
 * The simulated KIS Open API: tokenP, revokeP, Approval, inquire-price, inquire-balance and order-cash, with the
 * broker's error bodies and answers of the real answers' full field set (kis-answers.ts).
 * Facts come from docs/brokers.md#kis-open-api; where it is silent the choice is marked "Simulator choice" and uses a
 * code from KIS's published EGW table, so a client's classifier meets plausible values.
 */
import { randomUUID } from 'node:crypto';
import type { BrokerContext } from './context';
import { kisBalanceBody, kisOrderBody, kisPriceBody } from './kis-answers';
import { DOMESTIC_EXCHANGES, POSITIVE_DIGITS } from './orders';
import { bearerToken, bodyField, isJsonObject, type Answer, type BrokerRequest, type JsonBody } from './request';
import { kstTimeOfDay, kstWallClock } from './token-format';
import type { Outcome, SimulatedEnv } from './types';

const KIS_PRICE_TR_ID = 'FHKST01010100';

/** OAuth endpoints (tokenP, revokeP, Approval) answer errors in this shape. */
function oauthError(status: number, code: string, description: string, outcome: Outcome): Answer {
  return { status, body: { error_description: description, error_code: code }, outcome };
}

/** Business endpoints answer errors in this shape. */
function businessError(status: number, msgCd: string, msg1: string, outcome: Outcome): Answer {
  return { status, body: { rt_cd: '1', msg_cd: msgCd, msg1 }, outcome };
}

const MALFORMED = (): Answer => oauthError(400, 'EGW00101', '유효하지 않은 요청입니다.', 'bad_request');
const RATE_LIMITED = (): Answer => oauthError(403, 'EGW00133', '접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)', 'rate_limited');

type CredentialFields = { ok: true; appKey: string } | { ok: false; answer: Answer };

/**
 * Shared front of the OAuth endpoints: body shape, grant type (when the endpoint takes one), then the
 * credentials. `secretField` is `appsecret` for tokenP and revokeP, `secretkey` for Approval.
 */
function checkOAuthRequest(ctx: BrokerContext, req: BrokerRequest, secretField: 'appsecret' | 'secretkey', needsGrantType: boolean): CredentialFields {
  // Simulator choice: a body that is not a JSON object gets 400 EGW00101 ("invalid request").
  if (!isJsonObject(req.body)) return { ok: false, answer: MALFORMED() };
  if (needsGrantType) {
    const grantType = bodyField(req.body, 'grant_type');
    // Simulator choice: EGW00115 (grant_type required) / EGW00116 (unsupported grant_type), both 400.
    if (!grantType) {
      return { ok: false, answer: oauthError(400, 'EGW00115', '권한부여 타입(grant_type)은 필수입니다.', 'bad_request') };
    }
    if (grantType !== 'client_credentials') {
      return {
        ok: false,
        answer: oauthError(400, 'EGW00116', '지원하지 않는 권한부여 타입(grant_type)입니다.', 'bad_request'),
      };
    }
  }
  const appKey = bodyField(req.body, 'appkey');
  const secret = bodyField(req.body, secretField);
  // Simulator choice: missing key or secret are 403 EGW00102 / EGW00104, as third-party captures show.
  if (!appKey) return { ok: false, answer: oauthError(403, 'EGW00102', 'AppKey는 필수입니다.', 'bad_request') };
  if (!secret) return { ok: false, answer: oauthError(403, 'EGW00104', 'AppSecret은 필수입니다.', 'bad_request') };
  const check = ctx.credentials.check('kis', appKey, secret);
  if (!check.ok) {
    return {
      ok: false,
      answer:
        check.reason === 'unknown_key'
          ? oauthError(403, 'EGW00103', '유효하지 않은 AppKey입니다.', 'auth_rejected')
          : oauthError(403, 'EGW00105', '유효하지 않은 AppSecret입니다.', 'auth_rejected'),
    };
  }
  return { ok: true, appKey };
}

export function kisToken(ctx: BrokerContext, req: BrokerRequest): Answer {
  const front = checkOAuthRequest(ctx, req, 'appsecret', true);
  if (!front.ok) return front.answer;
  const now = ctx.clock.now();
  const decision = ctx.ledger.issue('kis', front.appKey, now, true, (issuedAt, expiresAt) => ctx.kisJwt.mint(front.appKey, issuedAt, expiresAt));
  if (decision.kind === 'rate_limited') return RATE_LIMITED();
  return {
    status: 200,
    body: kisTokenBody(decision.token.value, decision.token.expiresAt, ctx.settings.tokenLifetimeMs),
    outcome: decision.kind === 'new' ? 'issued' : 'same_token',
  };
}

/**
 * Simulator choice: `expires_in` is always the full lifetime, even when the same token is handed out hours
 * after its issuance. The real value has no reference time; a client that trusts it over
 * `access_token_token_expired` is wrong here, as it can be at the real broker.
 */
export function kisTokenBody(token: string, expiresAt: number, lifetimeMs: number): Record<string, unknown> {
  return {
    access_token: token,
    access_token_token_expired: kstWallClock(expiresAt),
    token_type: 'Bearer',
    expires_in: Math.floor(lifetimeMs / 1000),
  };
}

export function kisRevoke(ctx: BrokerContext, req: BrokerRequest): Answer {
  const front = checkOAuthRequest(ctx, req, 'appsecret', false);
  if (!front.ok) return front.answer;
  const token = bodyField(req.body, 'token');
  if (!token) return MALFORMED();
  // Simulator choice: revoking an unknown, dead or foreign token still answers success (as OAuth revocation
  // does, RFC 7009), so a client cannot learn anything about tokens that are not its own.
  ctx.ledger.revoke(token, 'kis', front.appKey);
  return { status: 200, body: KIS_REVOKE_OK, outcome: 'revoked' };
}

export const KIS_REVOKE_OK = { code: 200, message: '접근토큰 폐기에 성공하였습니다' };

export function kisApproval(ctx: BrokerContext, req: BrokerRequest): Answer {
  const front = checkOAuthRequest(ctx, req, 'secretkey', true);
  if (!front.ok) return front.answer;
  if (!ctx.approvals.tryTake(front.appKey, ctx.clock.now())) {
    // Simulator choice: the broker's answer to a too-frequent approval request is undocumented; this reuses
    // the EGW00133 shape with a per-second text.
    return oauthError(403, 'EGW00133', '웹소켓 접속키 발급 잠시 후 다시 시도하세요(1초당 1회)', 'approval_rate_limited');
  }
  return { status: 200, body: { approval_key: ctx.approvalKeys.issue(front.appKey, ctx.clock.now()) }, outcome: 'approval_issued' };
}

type BusinessFront = { ok: true; appKey: string; env: SimulatedEnv } | { ok: false; answer: Answer };

/**
 * The front every business call shares (inquire-price, inquire-balance, order-cash). Check order (simulator
 * choice): app key and secret headers, authorization scheme, per-second quota, token, custtype; each endpoint then
 * checks its tr_id and its input. The quota comes once the caller is known and before the token, so every
 * authenticated call spends budget whatever its token, and every call draws on one budget per app key, as KIS
 * counts REST calls per app key. Gateway (EGW/OPSQ) refusals answer HTTP 500 as captures show for EGW00201; only
 * EGW00121/EGW00123 follow `tokenErrorStatus`.
 *
 * `custtype` is not required: python-kis never sends it on REST calls and its quote and order calls work at the
 * real broker (docs/brokers.md#kis-proof-call). A value other than P (person) or B (business) is refused.
 */
function checkBusinessCall(ctx: BrokerContext, req: BrokerRequest): BusinessFront {
  const refuse = (answer: Answer): BusinessFront => ({ ok: false, answer });
  const appKey = req.headers['appkey'];
  const appSecret = req.headers['appsecret'];
  if (!appKey) return refuse(businessError(500, 'EGW00102', 'AppKey는 필수입니다.', 'bad_request'));
  if (!appSecret) return refuse(businessError(500, 'EGW00104', 'AppSecret은 필수입니다.', 'bad_request'));
  const check = ctx.credentials.check('kis', appKey, appSecret);
  if (!check.ok) {
    return refuse(
      check.reason === 'unknown_key'
        ? businessError(500, 'EGW00103', '유효하지 않은 AppKey입니다.', 'auth_rejected')
        : businessError(500, 'EGW00105', '유효하지 않은 AppSecret입니다.', 'auth_rejected'),
    );
  }
  const token = bearerToken(req.headers['authorization']);
  if (!token) return refuse(businessError(500, 'EGW00205', 'credentials_type이 유효하지 않습니다.(Bearer)', 'bad_request'));

  const now = ctx.clock.now();
  const env = check.credential.env ?? 'real';
  if (!ctx.quota.tryTake(appKey, ctx.settings.kisCallsPerSecond[env], now)) {
    return refuse(businessError(500, 'EGW00201', '초당 거래건수를 초과하였습니다.', 'quota_exceeded'));
  }

  const state = ctx.ledger.check(token, 'kis', appKey, now);
  const tokenStatus = ctx.settings.tokenErrorStatus;
  if (state === 'invalid') return refuse(businessError(tokenStatus, 'EGW00121', '유효하지 않은 token 입니다.', 'token_invalid'));
  if (state === 'expired') return refuse(businessError(tokenStatus, 'EGW00123', '기간이 만료된 token 입니다.', 'token_expired'));

  const custtype = req.headers['custtype'];
  if (custtype !== undefined && custtype !== 'P' && custtype !== 'B') {
    return refuse(businessError(500, 'EGW00208', '고객유형(custtype)이 유효하지 않습니다.', 'bad_request'));
  }
  return { ok: true, appKey, env };
}

/**
 * A business call's success, with the headers KIS sends beside the body: `tr_id` echoed, `tr_cont` (D: the last
 * page; the official inquire_balance sample reads it to decide whether to ask for more) and `gt_uid`, a request
 * id (simulator choice: a random hex string of KIS's 32 characters). All lower-case, as KIS sends them.
 */
function businessSuccess(req: BrokerRequest, body: Record<string, unknown>): Answer {
  const headers = { tr_id: req.headers['tr_id'] ?? '', tr_cont: 'D', gt_uid: randomUUID().replace(/-/g, '') };
  return { status: 200, body, outcome: 'ok', headers };
}

const UNKNOWN_TR_ID = (): Answer => businessError(500, 'OPSQ0002', '없는 서비스 코드 입니다.', 'bad_request');

/** inquire-price, the cheap call that proves a token: the shared front, then its tr_id and query. */
export function kisPrice(ctx: BrokerContext, req: BrokerRequest): Answer {
  const front = checkBusinessCall(ctx, req);
  if (!front.ok) return front.answer;
  if (req.headers['tr_id'] !== KIS_PRICE_TR_ID) return UNKNOWN_TR_ID();
  if (!req.query['FID_COND_MRKT_DIV_CODE']) {
    return businessError(500, 'OPSQ2001', 'ERROR : INPUT INVALID_CHECK_MRKT_DIV_CODE', 'bad_request');
  }
  if (!req.query['FID_INPUT_ISCD']) {
    return businessError(500, 'OPSQ2002', 'ERROR : INPUT INVALID_CHECK_FIELD_LENGTH', 'bad_request');
  }
  return businessSuccess(req, kisPriceBody(req.query['FID_INPUT_ISCD']));
}

// The tr_ids each account-bound call accepts, per env. order-cash: buy and sell (official, order_cash.py), then the
// older buy and sell codes that clients written before the change still send. inquire-balance: official,
// inquire_balance.py (kis_auth.py turns a real T... id into V... on paper trading, as it does for orders).
const KIS_ORDER_TR_IDS: Record<SimulatedEnv, readonly string[]> = {
  real: ['TTTC0012U', 'TTTC0011U', 'TTTC0802U', 'TTTC0801U'],
  mock: ['VTTC0012U', 'VTTC0011U', 'VTTC0802U', 'VTTC0801U'],
};
const KIS_BALANCE_TR_IDS: Record<SimulatedEnv, readonly string[]> = { real: ['TTTC8434R'], mock: ['VTTC8434R'] };

/**
 * A tr_id of the other env is refused with the text clients report from KIS ("모의투자 TR 이 아닙니다." when a real
 * tr_id reaches the mock host; the reverse text by symmetry). The code EGW02006 is a simulator choice: it is the
 * one third-party code shows beside that text, for other calls.
 */
function trIdRefusal(trIds: Record<SimulatedEnv, readonly string[]>, trId: string | undefined, env: SimulatedEnv): Answer | undefined {
  if (trId !== undefined && trIds[env].includes(trId)) return undefined;
  const otherEnv: SimulatedEnv = env === 'real' ? 'mock' : 'real';
  if (trId === undefined || !trIds[otherEnv].includes(trId)) return UNKNOWN_TR_ID();
  const text = env === 'mock' ? '모의투자 TR 이 아닙니다.' : '실전투자 TR 이 아닙니다.';
  return businessError(500, 'EGW02006', text, 'bad_request');
}

// order-cash body fields and their shapes (official: order_cash.py; PDNO is 6 characters, 7 for an ETN).
const ORDER_FIELDS: ReadonlyArray<readonly [field: string, shape: RegExp]> = [
  ['CANO', /^\d{8}$/],
  ['ACNT_PRDT_CD', /^\d{2}$/],
  ['PDNO', /^[0-9A-Z]{6,7}$/],
  ['ORD_DVSN', /^\d{2}$/],
  ['ORD_QTY', POSITIVE_DIGITS],
  ['ORD_UNPR', /^\d+$/],
];
const LIMIT_ORDER = '00';

/**
 * Simulator choice: a bad field (an order's body, a balance's query) answers HTTP 500 OPSQ2000 (account fields) or
 * OPSQ2002 (others) with a text in the style of KIS's INPUT INVALID_CHECK messages. It names the field, never its
 * value.
 */
function orderFieldError(field: string): Answer {
  if (field === 'CANO' || field === 'ACNT_PRDT_CD') return businessError(500, 'OPSQ2000', 'ERROR : INPUT INVALID_CHECK_ACNO', 'bad_request');
  return businessError(500, 'OPSQ2002', `ERROR : INPUT INVALID_CHECK_${field}`, 'bad_request');
}

/** The first bad field of an order-cash body, or undefined when the body is a valid order. */
function badOrderField(body: JsonBody): string | undefined {
  for (const [field, shape] of ORDER_FIELDS) {
    const value = bodyField(body, field);
    if (value === undefined || !shape.test(value)) return field;
  }
  // A limit order needs a price; "0" is for the market and other price-less kinds.
  if (bodyField(body, 'ORD_DVSN') === LIMIT_ORDER && /^0+$/.test(bodyField(body, 'ORD_UNPR') ?? '')) return 'ORD_UNPR';
  // Optional: the older tr_ids predate it; when sent it must name an exchange KIS routes to.
  const exchange = bodyField(body, 'EXCG_ID_DVSN_CD');
  if (exchange !== undefined && exchange !== '' && !DOMESTIC_EXCHANGES.includes(exchange)) return 'EXCG_ID_DVSN_CD';
  return undefined;
}

/**
 * order-cash, the cash buy or sell order. The shared front, then a tr_id of the credential's env, then the body.
 * The order is accepted and forgotten: nothing is filled. The answer echoes nothing of the body, as KIS's does not.
 */
export function kisOrder(ctx: BrokerContext, req: BrokerRequest): Answer {
  const front = checkBusinessCall(ctx, req);
  if (!front.ok) return front.answer;
  const refusal = trIdRefusal(KIS_ORDER_TR_IDS, req.headers['tr_id'], front.env);
  if (refusal) return refusal;
  const badField = badOrderField(req.body);
  if (badField !== undefined) return orderFieldError(badField);
  return businessSuccess(req, kisOrderBody(ctx.orderNumbers.next('kis'), kstTimeOfDay(ctx.clock.now())));
}

// inquire-balance's query (official, inquire_balance.py): every key is sent, the two continuation keys and OFL_YN
// empty on a first page. The account fields have the order's shapes; the others are the sample's codes.
const BALANCE_QUERY: ReadonlyArray<readonly [field: string, shape: RegExp]> = [
  ['CANO', /^\d{8}$/],
  ['ACNT_PRDT_CD', /^\d{2}$/],
  ['AFHR_FLPR_YN', /^[NYX]$/],
  ['INQR_DVSN', /^0[12]$/],
  ['UNPR_DVSN', /^01$/],
  ['FUND_STTL_ICLD_YN', /^[NY]$/],
  ['FNCG_AMT_AUTO_RDPT_YN', /^[NY]$/],
  ['PRCS_DVSN', /^0[01]$/],
];

/**
 * inquire-balance, the account's holdings and totals: the shared front, a tr_id of the credential's env, then the
 * query (a bad field answers as an order's does). Simulator choice: every account holds the same made-up position,
 * on one page.
 */
export function kisBalance(ctx: BrokerContext, req: BrokerRequest): Answer {
  const front = checkBusinessCall(ctx, req);
  if (!front.ok) return front.answer;
  const refusal = trIdRefusal(KIS_BALANCE_TR_IDS, req.headers['tr_id'], front.env);
  if (refusal) return refusal;
  for (const [field, shape] of BALANCE_QUERY) {
    if (!shape.test(req.query[field] ?? '')) return orderFieldError(field);
  }
  return businessSuccess(req, kisBalanceBody());
}

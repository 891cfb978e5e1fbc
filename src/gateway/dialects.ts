import type { Provider } from '../config/types';
import { formatWallClock, KST_ZONE } from '../core/time';
import { asRecord, firstHeader } from '../core/wire';

/**
 * What differs between the brokers at the gateway: which paths are token endpoints (answered locally), which
 * header names the API, how an answer says "token dead" or "too many calls", and the shape of an error, so a
 * client refused by the gateway reads it as it would the broker's (docs/brokers.md#kis-errors, #kiwoom-errors).
 */

export type LocalEndpoint = 'token' | 'revoke' | 'approval';
/** What a broker's answer says of the call: the gateway retries a token fault and a rate limit once. */
export type BrokerVerdict = 'ok' | 'broker_error' | 'token_fault' | 'rate_limited';
/** The gateway's own answers that are not the broker's, each in the broker's shape. */
export type RefusalKind =
  | 'unauthenticated'
  | 'forbidden_account'
  | 'unknown_account'
  | 'bad_request'
  | 'not_found'
  | 'too_large'
  | 'too_slow'
  | 'budget_exhausted'
  | 'no_token'
  | 'upstream_error';

export interface GatewayAnswer {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

export interface Dialect {
  provider: Provider;
  /** The token endpoint a request is for, matched exactly as the broker spells it (anything else under /oauth2 is refused). */
  localEndpoint(method: string, path: string): LocalEndpoint | undefined;
  /** The API a call names (KIS `tr_id`, Kiwoom `api-id`), as sent; the metrics fold unknown ones. */
  apiOf(headers: Record<string, string | string[] | undefined>): string | undefined;
  classify(status: number, body: unknown): { result: BrokerVerdict; code: string };
  /** The top-level fields `classify` reads: scanned for, so that an answer is not parsed whole to be classified. */
  verdictFields: readonly string[];
  refusal(kind: RefusalKind, detail: string, retryAfterMs?: number): GatewayAnswer;
  tokenAnswer(localToken: string, expiresAt: number, now: number): Record<string, unknown>;
  revokeAnswer(): Record<string, unknown>;
  /** The body field holding the app secret in a token-endpoint request. */
  secretField(endpoint: LocalEndpoint): string;
}

const retryAfter = (retryAfterMs: number | undefined): Record<string, string> =>
  retryAfterMs === undefined ? {} : { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) };

// The HTTP status of each refusal; the body carries the broker's own code where one fits.
const REFUSAL_STATUS: Record<RefusalKind, number> = {
  unauthenticated: 401,
  forbidden_account: 403,
  unknown_account: 404,
  bad_request: 400,
  not_found: 404,
  too_large: 413,
  too_slow: 408,
  budget_exhausted: 429,
  no_token: 503,
  upstream_error: 502,
};

const KIS_TOKEN_FAULTS = new Set(['EGW00121', 'EGW00123']);
const KIS_RATE_LIMITED = 'EGW00201';

/** KIS codes the gateway's refusals use: the broker's own where one means the same thing, else BTS-prefixed. */
const KIS_REFUSAL_CODES: Record<RefusalKind, [string, string]> = {
  unauthenticated: ['EGW00105', '유효하지 않은 AppSecret입니다.'],
  forbidden_account: ['EGW00103', '유효하지 않은 AppKey입니다.'],
  unknown_account: ['BTS00404', 'no such account at this gateway'],
  bad_request: ['EGW00101', '유효하지 않은 요청입니다.'],
  not_found: ['EGW00101', '유효하지 않은 요청입니다.'],
  too_large: ['EGW00101', '유효하지 않은 요청입니다.'],
  too_slow: ['EGW00101', '유효하지 않은 요청입니다.'],
  budget_exhausted: [KIS_RATE_LIMITED, '초당 거래건수를 초과하였습니다.'],
  no_token: ['BTS00503', 'the gateway holds no valid token for this account yet'],
  upstream_error: ['BTS00502', 'the broker did not answer the gateway'],
};

const kisDialect: Dialect = {
  provider: 'kis',
  localEndpoint(method, path) {
    if (method !== 'POST') return undefined;
    if (path === '/oauth2/tokenP') return 'token';
    if (path === '/oauth2/revokeP') return 'revoke';
    if (path === '/oauth2/Approval') return 'approval';
    return undefined;
  },
  apiOf: (headers) => firstHeader(headers, 'tr_id'),
  verdictFields: ['rt_cd', 'msg_cd', 'error_code'],
  classify(status, body) {
    const json = asRecord(body);
    const rtCd = json?.rt_cd;
    const code = typeof json?.msg_cd === 'string' ? json.msg_cd : typeof json?.error_code === 'string' ? json.error_code : '';
    if (KIS_TOKEN_FAULTS.has(code)) return { result: 'token_fault', code };
    if (code === KIS_RATE_LIMITED || status === 429) return { result: 'rate_limited', code: code || KIS_RATE_LIMITED };
    if (rtCd === '0' || (rtCd === undefined && status < 300)) return { result: 'ok', code: '' };
    return { result: 'broker_error', code };
  },
  refusal(kind, detail, retryAfterMs) {
    const [code, text] = KIS_REFUSAL_CODES[kind];
    return {
      status: REFUSAL_STATUS[kind],
      body: { rt_cd: '1', msg_cd: code, msg1: `${text} (broker-token-sidecar gateway: ${detail})` },
      headers: retryAfter(retryAfterMs),
    };
  },
  tokenAnswer: (localToken, expiresAt, now) => ({
    access_token: localToken,
    access_token_token_expired: formatWallClock(expiresAt, KST_ZONE),
    token_type: 'Bearer',
    expires_in: Math.max(0, Math.floor((expiresAt - now) / 1000)),
  }),
  revokeAnswer: () => ({ code: 200, message: '접근토큰 폐기에 성공하였습니다' }),
  secretField: (endpoint) => (endpoint === 'approval' ? 'secretkey' : 'appsecret'),
};

const KIWOOM_TOKEN_FAULT = '8005';
const KIWOOM_RATE_LIMITED = '1700';

/** The four-digit detail Kiwoom puts in brackets: "인증에 실패했습니다[8005:Token이 유효하지 않습니다]". */
function kiwoomDetail(message: unknown): string {
  return typeof message === 'string' ? (/\[(\d{4}):/.exec(message)?.[1] ?? '') : '';
}

const KIWOOM_REFUSALS: Record<RefusalKind, [number, string]> = {
  unauthenticated: [3, '인증에 실패했습니다[8005:Token이 유효하지 않습니다]'],
  forbidden_account: [3, '인증에 실패했습니다[8001:App Key와 Secret Key 검증에 실패했습니다]'],
  unknown_account: [2, '입력 값 오류입니다[1504:no such account at this gateway]'],
  bad_request: [2, '입력 값 오류입니다[1501:요청 본문을 해석할 수 없습니다]'],
  not_found: [2, '입력 값 오류입니다[1504:no such API at this gateway]'],
  too_large: [2, '입력 값 오류입니다[1501:요청 본문을 해석할 수 없습니다]'],
  too_slow: [2, '입력 값 오류입니다[1501:요청 본문을 해석할 수 없습니다]'],
  budget_exhausted: [5, '허용된 요청 개수를 초과하였습니다[1700:허용된 요청 개수를 초과하였습니다]'],
  no_token: [1, 'the gateway holds no valid token for this account yet'],
  upstream_error: [1, 'the broker did not answer the gateway'],
};

const kiwoomDialect: Dialect = {
  provider: 'kiwoom',
  localEndpoint(method, path) {
    if (method !== 'POST') return undefined;
    if (path === '/oauth2/token') return 'token';
    if (path === '/oauth2/revoke') return 'revoke';
    return undefined;
  },
  apiOf: (headers) => firstHeader(headers, 'api-id'),
  verdictFields: ['return_code', 'return_msg'],
  classify(status, body) {
    const json = asRecord(body);
    const returnCode = json?.return_code;
    const detail = kiwoomDetail(json?.return_msg);
    if (detail === KIWOOM_TOKEN_FAULT) return { result: 'token_fault', code: detail };
    if (status === 429 || returnCode === 5) return { result: 'rate_limited', code: detail || KIWOOM_RATE_LIMITED };
    if (returnCode === 0 || (returnCode === undefined && status < 300)) return { result: 'ok', code: '' };
    return { result: 'broker_error', code: detail || (typeof returnCode === 'number' ? `rc${returnCode}` : '') };
  },
  refusal(kind, detail, retryAfterMs) {
    const [returnCode, text] = KIWOOM_REFUSALS[kind];
    return {
      status: REFUSAL_STATUS[kind],
      body: { return_code: returnCode, return_msg: `${text} (broker-token-sidecar gateway: ${detail})` },
      headers: retryAfter(retryAfterMs),
    };
  },
  tokenAnswer: (localToken, expiresAt) => ({
    expires_dt: formatWallClock(expiresAt, KST_ZONE).replace(/[-: ]/g, ''),
    token_type: 'bearer',
    token: localToken,
    return_code: 0,
    return_msg: '정상적으로 처리되었습니다',
  }),
  revokeAnswer: () => ({ return_code: 0, return_msg: '정상적으로 처리되었습니다' }),
  secretField: () => 'secretkey',
};

export const dialectOf = (provider: Provider): Dialect => (provider === 'kis' ? kisDialect : kiwoomDialect);

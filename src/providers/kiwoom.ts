import { BrokerError } from '../core/errors';
import { parseKstCompact } from '../core/time';
import type { Env } from '../config/types';
import type { BrokerHttp, BrokerHttpResponse } from './broker-http';
import { brokerText, checkExpiry, checkTokenText } from './token-checks';
import { asRecord } from '../core/wire';
import type { Credentials, IssuedToken, ProofOutcome, TokenProvider } from './types';

/**
 * Kiwoom REST API (docs/brokers.md#kiwoom-rest-api). Failures arrive as HTTP 200 with `return_code != 0`;
 * the detail code sits in brackets inside `return_msg`, e.g. "인증에 실패했습니다[8005:Token이 유효하지 않습니다]".
 */

// 8001/8002: key or secret failed verification; 8020: key or secret missing; 8030/8031: key not valid for
// this environment (real vs mock). All need a change of credentials, not a retry.
const AUTH_REJECTED = new Set(['8001', '8002', '8020', '8030', '8031']);
const RATE_LIMITED = new Set(['1700']); // "허용된 요청 개수를 초과하였습니다"
const TOKEN_DEAD = new Set(['8005']);

function detailCode(message: unknown): string | undefined {
  if (typeof message !== 'string') return undefined;
  return /\[(\d{4}):/.exec(message)?.[1];
}

/** The return_code as it may be shown: a number or a short string; anything else (an object) is named, never converted. */
function returnCodeText(code: unknown): string {
  return typeof code === 'number' || typeof code === 'string' ? brokerText(String(code), 32)! : `(${code === null ? 'null' : typeof code})`;
}

export function classifyKiwoomError(response: BrokerHttpResponse, what: string): BrokerError {
  const body = asRecord(response.json);
  const code = detailCode(body?.return_msg);
  const detail = { status: response.status, brokerCode: code };
  const returnMessage = brokerText(body?.return_msg);
  const said = `${what}: HTTP ${response.status}${body?.return_code !== undefined ? ` return_code ${returnCodeText(body.return_code)}` : ''}${
    returnMessage !== undefined ? ` (${returnMessage})` : ''
  }`;
  // 1700 arrives as HTTP 200 by the guide and as 429 in third-party logs.
  if ((code !== undefined && RATE_LIMITED.has(code)) || response.status === 429) return new BrokerError('rate_limited', said, detail);
  if (code !== undefined && AUTH_REJECTED.has(code)) return new BrokerError('auth_rejected', said, detail);
  if (response.status === 401 || response.status === 403) return new BrokerError('auth_rejected', said, detail);
  if (!body && response.status < 300) return new BrokerError('bad_response', `${what}: HTTP ${response.status} with a body that is not JSON`, detail);
  return new BrokerError('server_error', said, detail);
}

export function parseKiwoomTokenAnswer(response: BrokerHttpResponse, receivedAt: number, maxLifetimeMs: number): IssuedToken {
  const what = 'Kiwoom oauth2/token';
  const body = asRecord(response.json);
  if (response.status !== 200 || !body || body.return_code !== 0) {
    if (response.status === 200 && body && body.return_code === undefined) {
      throw new BrokerError('bad_response', `${what}: answer has no return_code`, { status: 200 });
    }
    throw classifyKiwoomError(response, what);
  }
  const accessToken = checkTokenText(body.token, what);
  if (typeof body.expires_dt !== 'string') throw new BrokerError('bad_response', `${what}: answer has no expires_dt`);
  const expiresAt = parseKstCompact(body.expires_dt);
  if (expiresAt === undefined) throw new BrokerError('bad_response', `${what}: expires_dt "${brokerText(body.expires_dt, 40)}" is not YYYYMMDDHHMMSS`);
  const expiry = checkExpiry(expiresAt, receivedAt, receivedAt, maxLifetimeMs, what);
  return {
    accessToken,
    tokenType: typeof body.token_type === 'string' && body.token_type !== '' ? body.token_type : 'bearer',
    expiresAt: expiry.expiresAt,
    issuedAt: receivedAt,
    raw: body,
    expiryClamped: expiry.clamped,
  };
}

export function parseKiwoomProofAnswer(response: BrokerHttpResponse): ProofOutcome {
  const body = asRecord(response.json);
  if (response.status === 200 && body?.return_code === 0) return { result: 'ok' };
  const code = detailCode(body?.return_msg);
  const message = brokerText(body?.return_msg) ?? `HTTP ${response.status}`;
  if (code !== undefined && TOKEN_DEAD.has(code)) return { result: 'rejected', brokerCode: code, message };
  return { result: 'error', message };
}

export class KiwoomProvider implements TokenProvider {
  readonly provider = 'kiwoom' as const;

  constructor(
    readonly env: Env,
    private readonly baseUrl: string,
    private readonly http: BrokerHttp,
    private readonly maxLifetimeMs: number,
  ) {}

  async issue(credentials: Credentials, receivedAt: () => number, timeoutMs?: number): Promise<IssuedToken> {
    const response = await this.http.send({
      method: 'POST',
      url: `${this.baseUrl}/oauth2/token`,
      headers: { 'content-type': 'application/json;charset=UTF-8', 'api-id': 'au10001' },
      body: { grant_type: 'client_credentials', appkey: credentials.appKey, secretkey: credentials.appSecret },
      timeoutMs,
    });
    return parseKiwoomTokenAnswer(response, receivedAt(), this.maxLifetimeMs);
  }

  async revoke(credentials: Credentials, accessToken: string): Promise<void> {
    const response = await this.http.send({
      method: 'POST',
      url: `${this.baseUrl}/oauth2/revoke`,
      headers: { 'content-type': 'application/json;charset=UTF-8', 'api-id': 'au10002' },
      body: { appkey: credentials.appKey, secretkey: credentials.appSecret, token: accessToken },
    });
    if (response.status === 200 && asRecord(response.json)?.return_code === 0) return;
    throw classifyKiwoomError(response, 'Kiwoom oauth2/revoke');
  }

  async prove(_credentials: Credentials, accessToken: string): Promise<ProofOutcome> {
    let response: BrokerHttpResponse;
    try {
      response = await this.http.send({
        method: 'POST',
        url: `${this.baseUrl}/api/dostk/stkinfo`,
        headers: {
          'content-type': 'application/json;charset=UTF-8',
          'api-id': 'ka10001',
          authorization: `Bearer ${accessToken}`,
          'cont-yn': 'N',
          'next-key': '',
        },
        body: { stk_cd: '005930' },
      });
    } catch (error) {
      return { result: 'error', message: (error as Error).message };
    }
    return parseKiwoomProofAnswer(response);
  }
}

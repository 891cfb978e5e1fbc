import { BrokerError } from '../core/errors';
import { parseKstWallClock } from '../core/time';
import type { Env } from '../config/types';
import type { BrokerHttp, BrokerHttpResponse } from './broker-http';
import { brokerText, checkExpiry, checkTokenText, readJwtClaims } from './token-checks';
import { asRecord } from '../core/wire';
import type { Credentials, IssuedToken, ProofOutcome, TokenProvider } from './types';

/** KIS Open API (docs/brokers.md#kis-open-api). */

const RATE_LIMITED = 'EGW00133';
const AUTH_REJECTED = new Set(['EGW00103', 'EGW00105']);
/** Business-API codes for a token the broker no longer honours: expired, and invalid. */
const TOKEN_DEAD = new Set(['EGW00123', 'EGW00121']);

const PRICE_PATH = '/uapi/domestic-stock/v1/quotations/inquire-price?FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930';

interface KisErrorFields {
  code?: string;
  message?: string;
}

/** KIS answers errors in two shapes: OAuth's `error_code` and the business APIs' `msg_cd`. */
function errorFields(json: unknown): KisErrorFields {
  const body = asRecord(json);
  if (!body) return {};
  const code = body.error_code ?? body.msg_cd;
  const message = body.error_description ?? body.msg1;
  return { code: brokerText(code, 32), message: brokerText(message) };
}

export function classifyKisError(response: BrokerHttpResponse, what: string): BrokerError {
  const { code, message } = errorFields(response.json);
  const detail = { status: response.status, brokerCode: code };
  const said = `${what}: HTTP ${response.status}${code ? ` ${code}` : ''}${message ? ` (${message})` : ''}`;
  if (code === RATE_LIMITED || response.status === 429) return new BrokerError('rate_limited', said, detail);
  if (code !== undefined && AUTH_REJECTED.has(code)) return new BrokerError('auth_rejected', said, detail);
  if (response.status === 401) return new BrokerError('auth_rejected', said, detail);
  if (response.status < 300 && !asRecord(response.json)) {
    // Garbage with a success status (a proxy's page, `null`, an array) is a bad answer, as Kiwoom's parser says too.
    return new BrokerError('bad_response', `${what}: HTTP ${response.status} with a body that is not a JSON object`, detail);
  }
  return new BrokerError('server_error', said, detail);
}

export function parseKisTokenAnswer(response: BrokerHttpResponse, receivedAt: number, maxLifetimeMs: number): IssuedToken {
  const what = 'KIS tokenP';
  const body = asRecord(response.json);
  if (response.status !== 200 || !body || body.error_code !== undefined) throw classifyKisError(response, what);
  const accessToken = checkTokenText(body.access_token, what);
  const claims = readJwtClaims(accessToken);
  const iat = typeof claims?.iat === 'number' ? claims.iat * 1000 : undefined;
  // The broker's own issuance time, when it is believable, places the 6-hour same-token window correctly. One
  // from the future, or from longer ago than a token lives, is not: the answer's arrival stands in for it.
  const issuedAt = iat !== undefined && iat <= receivedAt + 5 * 60_000 && iat > receivedAt - maxLifetimeMs ? iat : receivedAt;
  let expiresAt: number | undefined;
  if (typeof body.access_token_token_expired === 'string') {
    expiresAt = parseKstWallClock(body.access_token_token_expired);
    if (expiresAt === undefined) {
      throw new BrokerError(
        'bad_response',
        `${what}: access_token_token_expired "${brokerText(body.access_token_token_expired, 40)}" is not YYYY-MM-DD HH:MM:SS`,
      );
    }
  } else if (typeof claims?.exp === 'number') {
    expiresAt = claims.exp * 1000;
  } else {
    // expires_in has no reference time (offsets of ~4,000 s were reported), so it is the last resort.
    throw new BrokerError('bad_response', `${what}: answer has neither access_token_token_expired nor a JWT exp`);
  }
  const expiry = checkExpiry(expiresAt, issuedAt, receivedAt, maxLifetimeMs, what);
  return {
    accessToken,
    tokenType: typeof body.token_type === 'string' && body.token_type !== '' ? body.token_type : 'Bearer',
    expiresAt: expiry.expiresAt,
    issuedAt,
    raw: body,
    expiryClamped: expiry.clamped,
  };
}

export function parseKisProofAnswer(response: BrokerHttpResponse): ProofOutcome {
  const body = asRecord(response.json);
  if (response.status === 200 && body?.rt_cd === '0') return { result: 'ok' };
  // The HTTP status of these answers is unconfirmed (500 in captures, 200 in a sample): key on msg_cd only.
  const { code, message } = errorFields(response.json);
  if (code !== undefined && TOKEN_DEAD.has(code)) {
    return { result: 'rejected', brokerCode: code, message: message ?? code };
  }
  return { result: 'error', message: `HTTP ${response.status}${code ? ` ${code}` : ''}${message ? ` (${message})` : ''}` };
}

export class KisProvider implements TokenProvider {
  readonly provider = 'kis' as const;

  constructor(
    readonly env: Env,
    private readonly baseUrl: string,
    private readonly http: BrokerHttp,
    private readonly maxLifetimeMs: number,
  ) {}

  async issue(credentials: Credentials, receivedAt: () => number, timeoutMs?: number): Promise<IssuedToken> {
    const response = await this.http.send({
      method: 'POST',
      url: `${this.baseUrl}/oauth2/tokenP`,
      headers: { accept: 'text/plain', charset: 'UTF-8' },
      body: { grant_type: 'client_credentials', appkey: credentials.appKey, appsecret: credentials.appSecret },
      timeoutMs,
    });
    return parseKisTokenAnswer(response, receivedAt(), this.maxLifetimeMs);
  }

  async revoke(credentials: Credentials, accessToken: string): Promise<void> {
    const response = await this.http.send({
      method: 'POST',
      url: `${this.baseUrl}/oauth2/revokeP`,
      headers: {},
      body: { appkey: credentials.appKey, appsecret: credentials.appSecret, token: accessToken },
    });
    const code = asRecord(response.json)?.code;
    // Documented as a string, observed as a number.
    if (response.status === 200 && String(code) === '200') return;
    throw classifyKisError(response, 'KIS revokeP');
  }

  async prove(credentials: Credentials, accessToken: string): Promise<ProofOutcome> {
    let response: BrokerHttpResponse;
    try {
      response = await this.http.send({
        method: 'GET',
        url: `${this.baseUrl}${PRICE_PATH}`,
        headers: {
          'content-type': 'application/json; charset=utf-8',
          authorization: `Bearer ${accessToken}`,
          appkey: credentials.appKey,
          appsecret: credentials.appSecret,
          tr_id: 'FHKST01010100',
          custtype: 'P',
        },
      });
    } catch (error) {
      return { result: 'error', message: (error as Error).message };
    }
    return parseKisProofAnswer(response);
  }

  async issueApprovalKey(credentials: Credentials): Promise<string> {
    const response = await this.http.send({
      method: 'POST',
      url: `${this.baseUrl}/oauth2/Approval`,
      headers: {},
      // The approval endpoint names the app secret `secretkey`, unlike tokenP.
      body: { grant_type: 'client_credentials', appkey: credentials.appKey, secretkey: credentials.appSecret },
    });
    const key = asRecord(response.json)?.approval_key;
    if (response.status === 200 && typeof key === 'string' && key.length >= 8) return key;
    if (response.status === 200) throw new BrokerError('bad_response', 'KIS Approval: no approval_key in the answer', { status: 200 });
    throw classifyKisError(response, 'KIS Approval');
  }
}

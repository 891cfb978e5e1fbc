/**
 * The broker simulator against a real loopback HTTP server and a ManualClock. Each test builds its own
 * simulator so no state leaks between them, and closes it in t.after so the process exits.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import { ManualClock } from '../src/core/clock';
import {
  BrokerSimulator,
  generateCredential,
  runSimulatorServer,
  SimulatorInputError,
  type SimulatorCredential,
  type SimulatorOptions,
} from '../src/simulator';

// 2026-03-02 00:00:00 UTC = 2026-03-02 09:00:00 KST.
const T0 = Date.UTC(2026, 2, 2, 0, 0, 0);
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const KST_OFFSET = 9 * HOUR;
const PRICE_PATH = '/uapi/domestic-stock/v1/quotations/inquire-price?FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930';
const ORDER_PATH = '/uapi/domestic-stock/v1/trading/order-cash';
const KIS_ORDER = { CANO: '50012345', ACNT_PRDT_CD: '01', PDNO: '005930', ORD_DVSN: '00', ORD_QTY: '1', ORD_UNPR: '70000' };
const KIWOOM_ORDER = { dmst_stex_tp: 'KRX', stk_cd: '005930', ord_qty: '1', ord_uv: '', trde_tp: '3', cond_uv: '' };

type Json = any;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

interface Harness {
  sim: BrokerSimulator;
  clock: ManualClock;
  url: string;
  kis: SimulatorCredential;
  kisMock: SimulatorCredential;
  kiwoom: SimulatorCredential;
}

async function start(t: TestContext, options: Partial<SimulatorOptions> = {}, startAt = T0): Promise<Harness> {
  const clock = new ManualClock(startAt);
  const kis = generateCredential('kis', 'main');
  const kisMock = generateCredential('kis', 'paper', 'mock');
  const kiwoom = generateCredential('kiwoom', 'main');
  const sim = new BrokerSimulator({ clock, credentials: [kis, kisMock, kiwoom], ...options });
  const url = await sim.listen(0);
  t.after(() => sim.close());
  return { sim, clock, url, kis, kisMock, kiwoom };
}

async function send(
  url: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  opts: { json?: unknown; raw?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Reply> {
  const body = opts.raw ?? (opts.json === undefined ? undefined : JSON.stringify(opts.json));
  const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' };
  const res = await request(`${url}${path}`, {
    method,
    headers: { ...headers, ...opts.headers },
    body,
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

const json = (reply: Reply): Json => JSON.parse(reply.text);

function kisToken(h: Harness, cred: SimulatorCredential = h.kis, overrides: Record<string, unknown> = {}): Promise<Reply> {
  return send(h.url, 'POST', '/oauth2/tokenP', {
    json: { grant_type: 'client_credentials', appkey: cred.appKey, appsecret: cred.appSecret, ...overrides },
  });
}

async function kisIssue(h: Harness, cred: SimulatorCredential = h.kis): Promise<string> {
  const reply = await kisToken(h, cred);
  assert.equal(reply.status, 200, reply.text);
  return json(reply).access_token as string;
}

/** The headers of a KIS business call; `overrides` entries set to null are left out of the request. */
function kisHeaders(token: string, cred: SimulatorCredential, trId: string, overrides: Record<string, string | null>): Record<string, string> {
  const all: Record<string, string | null> = {
    'content-type': 'application/json; charset=utf-8',
    authorization: `Bearer ${token}`,
    appkey: cred.appKey,
    appsecret: cred.appSecret,
    tr_id: trId,
    custtype: 'P',
    ...overrides,
  };
  const sent: Record<string, string> = {};
  for (const [name, value] of Object.entries(all)) if (value !== null) sent[name] = value;
  return sent;
}

function kisPrice(
  h: Harness,
  token: string,
  cred: SimulatorCredential = h.kis,
  headers: Record<string, string | null> = {},
  path = PRICE_PATH,
): Promise<Reply> {
  return send(h.url, 'GET', path, { headers: kisHeaders(token, cred, 'FHKST01010100', headers) });
}

/** A limit buy of one share of 005930 with the tr_id of the credential's env; `body` entries override (undefined drops). */
function kisOrder(
  h: Harness,
  token: string,
  cred: SimulatorCredential = h.kis,
  headers: Record<string, string | null> = {},
  body: Record<string, unknown> = {},
): Promise<Reply> {
  const trId = cred.env === 'mock' ? 'VTTC0012U' : 'TTTC0012U';
  return send(h.url, 'POST', ORDER_PATH, { json: { ...KIS_ORDER, ...body }, headers: kisHeaders(token, cred, trId, headers) });
}

function kiwoomToken(h: Harness, cred: SimulatorCredential = h.kiwoom, headers: Record<string, string> = {}): Promise<Reply> {
  return send(h.url, 'POST', '/oauth2/token', {
    json: { grant_type: 'client_credentials', appkey: cred.appKey, secretkey: cred.appSecret },
    headers: { 'api-id': 'au10001', ...headers },
  });
}

async function kiwoomIssue(h: Harness): Promise<string> {
  const reply = await kiwoomToken(h);
  assert.equal(json(reply).return_code, 0, reply.text);
  return json(reply).token as string;
}

function kiwoomStockInfo(h: Harness, token: string, apiId = 'ka10001'): Promise<Reply> {
  return send(h.url, 'POST', '/api/dostk/stkinfo', {
    json: { stk_cd: '005930' },
    headers: { 'api-id': apiId, authorization: `Bearer ${token}`, 'cont-yn': 'N', 'next-key': '' },
  });
}

/** A market buy (kt10000) of one share of 005930; `body` entries override (undefined drops). */
function kiwoomOrder(h: Harness, token: string | null, apiId = 'kt10000', body: Record<string, unknown> = {}): Promise<Reply> {
  const auth: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
  return send(h.url, 'POST', '/api/dostk/ordr', {
    json: { ...KIWOOM_ORDER, ...body },
    headers: { 'api-id': apiId, ...auth, 'cont-yn': 'N', 'next-key': '' },
  });
}

function decodeJwt(token: string): { header: Json; payload: Json } {
  const [header, payload] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(header!, 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')),
  };
}

/** The KST wall clock of `instant` computed independently of the code under test: UTC + 9 h. */
function kstOf(instant: number): string {
  return new Date(instant + KST_OFFSET).toISOString().slice(0, 19).replace('T', ' ');
}

const EGW00133 = { error_description: '접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)', error_code: 'EGW00133' };
const EGW00121 = { rt_cd: '1', msg_cd: 'EGW00121', msg1: '유효하지 않은 token 입니다.' };
const EGW00123 = { rt_cd: '1', msg_cd: 'EGW00123', msg1: '기간이 만료된 token 입니다.' };
const KIWOOM_8005 = { return_code: 3, return_msg: '인증에 실패했습니다[8005:Token이 유효하지 않습니다]' };
const KIWOOM_8001 = { return_code: 3, return_msg: '인증에 실패했습니다[8001:App Key와 Secret Key 검증에 실패했습니다]' };

describe('generateCredential', () => {
  test('KIS credentials look like real ones: 36-char key, 180-char base64 secret, no whitespace', () => {
    const c = generateCredential('kis');
    assert.equal(c.provider, 'kis');
    assert.equal(c.env, 'real');
    assert.equal(c.appKey.length, 36);
    assert.equal(c.appSecret.length, 180);
    assert.match(c.appKey, /^PS[A-Za-z0-9]{34}$/);
    assert.match(c.appSecret, /^[A-Za-z0-9+/]{180}$/);
  });

  test('a seed makes the credential reproducible, different seeds differ, no seed is random', () => {
    assert.deepEqual(generateCredential('kis', 'a'), generateCredential('kis', 'a'));
    assert.notEqual(generateCredential('kis', 'a').appKey, generateCredential('kis', 'b').appKey);
    assert.notEqual(generateCredential('kis').appSecret, generateCredential('kis').appSecret);
    assert.equal(generateCredential('kis', 'a', 'mock').env, 'mock');
  });

  test('Kiwoom credentials are 43-character alphanumeric key and secret', () => {
    const c = generateCredential('kiwoom', 'x');
    assert.equal(c.provider, 'kiwoom');
    assert.match(c.appKey, /^[A-Za-z0-9]{43}$/);
    assert.match(c.appSecret, /^[A-Za-z0-9]{43}$/);
    assert.notEqual(c.appKey, generateCredential('kis', 'x').appKey);
  });
});

describe('KIS tokenP', () => {
  test('issues a JWT with the documented body, a KST expiry and an exp that agrees', async (t) => {
    const h = await start(t, {}, T0 + 123); // a sub-second start: expiry is cut to whole seconds
    const reply = await kisToken(h);
    assert.equal(reply.status, 200);
    const body = json(reply);
    assert.deepEqual(Object.keys(body).sort(), ['access_token', 'access_token_token_expired', 'expires_in', 'token_type']);
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.expires_in, 86400);
    assert.equal(body.access_token_token_expired, '2026-03-03 09:00:00');

    const token = body.access_token as string;
    assert.ok(token.length >= 300 && token.length <= 360, `token length ${token.length}`);
    assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const { header, payload } = decodeJwt(token);
    assert.deepEqual(header, { typ: 'JWT', alg: 'HS512' });
    assert.equal(payload.sub, 'token');
    assert.equal(payload.iss, 'unogw');
    assert.equal(payload.jti, h.kis.appKey);
    assert.match(payload.aud, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(payload.iat, T0 / 1000);
    assert.equal(payload.exp, T0 / 1000 + 86400);
    assert.equal(kstOf(payload.exp * 1000), body.access_token_token_expired);
    const s = h.sim.stats(h.kis.appKey);
    assert.equal(s.tokenRequests, 1);
    assert.equal(s.issued, 1);
    assert.equal(s.sameToken, 0);
  });

  test('the KST expiry crosses the date line 9 hours ahead of UTC', async (t) => {
    const h = await start(t, {}, Date.UTC(2026, 2, 2, 15, 30, 0)); // 2026-03-03 00:30 KST
    const body = json(await kisToken(h));
    assert.equal(body.access_token_token_expired, '2026-03-04 00:30:00');
  });

  test('the same token (same expiry) comes back within 6 hours of issuance, a new one at 6 hours', async (t) => {
    const h = await start(t);
    const first = json(await kisToken(h));
    h.clock.advance(MINUTE);
    const again = json(await kisToken(h));
    assert.equal(again.access_token, first.access_token);
    assert.equal(again.access_token_token_expired, first.access_token_token_expired);
    h.clock.set(T0 + 5 * HOUR + 59 * MINUTE);
    const late = json(await kisToken(h));
    assert.equal(late.access_token, first.access_token);
    assert.equal(late.access_token_token_expired, '2026-03-03 09:00:00');
    h.clock.set(T0 + 6 * HOUR);
    const fresh = json(await kisToken(h));
    assert.notEqual(fresh.access_token, first.access_token);
    assert.equal(fresh.access_token_token_expired, '2026-03-03 15:00:00');
    assert.equal(decodeJwt(fresh.access_token).payload.iat, (T0 + 6 * HOUR) / 1000);
    const s = h.sim.stats(h.kis.appKey);
    assert.equal(s.tokenRequests, 4);
    assert.equal(s.issued, 2);
    assert.equal(s.sameToken, 2);
  });

  test('spacing: EGW00133 at +59 s, OK at +60 s; refused requests do not extend the window', async (t) => {
    const h = await start(t);
    await kisIssue(h);
    h.clock.set(T0 + 30 * SECOND);
    const early = await kisToken(h);
    assert.equal(early.status, 403);
    assert.deepEqual(json(early), EGW00133);
    h.clock.set(T0 + 59 * SECOND);
    const stillEarly = await kisToken(h);
    assert.equal(stillEarly.status, 403);
    assert.deepEqual(json(stillEarly), EGW00133);
    h.clock.set(T0 + 60 * SECOND);
    assert.equal((await kisToken(h)).status, 200);
    // A same-token answer is a successful answer: it restarts the window.
    h.clock.set(T0 + 119 * SECOND);
    assert.equal((await kisToken(h)).status, 403);
    h.clock.set(T0 + 120 * SECOND);
    assert.equal((await kisToken(h)).status, 200);
    const s = h.sim.stats(h.kis.appKey);
    assert.equal(s.rateLimited, 3);
    assert.equal(s.issued, 1);
    assert.equal(s.sameToken, 2);
  });

  test('spacing is per app key and configurable', async (t) => {
    const h = await start(t, { spacingMs: 5 * MINUTE });
    await kisIssue(h, h.kis);
    await kisIssue(h, h.kisMock); // another key is not held back
    h.clock.advance(4 * MINUTE);
    assert.equal((await kisToken(h)).status, 403);
    h.clock.advance(MINUTE);
    assert.equal((await kisToken(h)).status, 200);
  });

  test('unknown app key → 403 EGW00103; wrong secret (even a trailing newline) → 403 EGW00105', async (t) => {
    const h = await start(t);
    const unknown = await kisToken(h, generateCredential('kis', 'stranger'));
    assert.equal(unknown.status, 403);
    assert.deepEqual(json(unknown), { error_description: '유효하지 않은 AppKey입니다.', error_code: 'EGW00103' });
    const wrong = await kisToken(h, { ...h.kis, appSecret: `${h.kis.appSecret}\n` });
    assert.equal(wrong.status, 403);
    assert.deepEqual(json(wrong), { error_description: '유효하지 않은 AppSecret입니다.', error_code: 'EGW00105' });
    // A Kiwoom key is unknown to KIS.
    assert.equal(json(await kisToken(h, h.kiwoom)).error_code, 'EGW00103');
    const s = h.sim.stats();
    assert.equal(s.tokenRequests, 3);
    assert.equal(s.authRejected, 3);
    assert.equal(s.issued, 0);
    // Refused credentials do not start the spacing window.
    assert.equal((await kisToken(h)).status, 200);
  });

  test('malformed body, bad or missing grant_type, missing fields → documented simulator errors', async (t) => {
    const h = await start(t);
    const cases: Array<[Reply, number, string]> = [
      [await send(h.url, 'POST', '/oauth2/tokenP', { raw: '{"grant_type":' }), 400, 'EGW00101'],
      [await send(h.url, 'POST', '/oauth2/tokenP', { json: ['x'] }), 400, 'EGW00101'],
      [await send(h.url, 'POST', '/oauth2/tokenP'), 400, 'EGW00101'],
      [await kisToken(h, h.kis, { grant_type: 'password' }), 400, 'EGW00116'],
      [await kisToken(h, h.kis, { grant_type: undefined }), 400, 'EGW00115'],
      [await kisToken(h, h.kis, { appkey: undefined }), 403, 'EGW00102'],
      [await kisToken(h, h.kis, { appsecret: undefined, secretkey: h.kis.appSecret }), 403, 'EGW00104'],
    ];
    for (const [reply, status, code] of cases) {
      assert.equal(reply.status, status, reply.text);
      assert.equal(json(reply).error_code, code);
      assert.equal(typeof json(reply).error_description, 'string');
    }
    assert.equal(h.sim.stats().badRequests, 7);
    assert.equal(h.sim.stats().tokenRequests, 7);
  });
});

describe('KIS revokeP and inquire-price', () => {
  test('a valid token proves itself with the documented success body: the 82 fields of the official sample, KIS headers beside it', async (t) => {
    const h = await start(t);
    const token = await kisIssue(h);
    const reply = await kisPrice(h, token);
    assert.equal(reply.status, 200);
    const body = json(reply);
    assert.equal(body.rt_cd, '0');
    assert.equal(body.msg_cd, 'MCA00000');
    assert.equal(body.msg1, '정상처리 되었습니다.');
    assert.equal(body.output.stck_prpr, '71000');
    // The official chk_inquire_price.py's column list; python-kis reads e.g. acml_tr_pbmn, hts_avls, w52_hgpr_date.
    const fields = Object.keys(body.output as object);
    assert.equal(fields.length, 82);
    for (const field of ['acml_tr_pbmn', 'hts_avls', 'per', 'pbr', 'eps', 'bps', 'w52_hgpr_date', 'mrkt_warn_cls_code', 'aspr_unit', 'stck_shrn_iscd']) {
      assert.ok(fields.includes(field), field);
    }
    for (const [name, value] of Object.entries(body.output as Record<string, unknown>)) assert.equal(typeof value, 'string', name);
    assert.equal(reply.headers['tr_id'], 'FHKST01010100');
    assert.equal(reply.headers['tr_cont'], 'D');
    assert.match(String(reply.headers['gt_uid']), /^[0-9a-f]{32}$/);
    assert.equal(h.sim.stats(h.kis.appKey).proofsOk, 1);
  });

  test('custtype is not required (python-kis sends none on REST, and the real broker answers it); a wrong one is refused', async (t) => {
    const h = await start(t);
    const token = await kisIssue(h);
    const without = await kisPrice(h, token, h.kis, { custtype: null, 'content-type': null });
    assert.equal(without.status, 200, without.text);
    assert.equal(json(without).rt_cd, '0');
    h.clock.advance(SECOND);
    assert.equal((await kisOrder(h, token, h.kis, { custtype: null })).status, 200);
    h.clock.advance(SECOND);
    assert.equal(json(await kisPrice(h, token, h.kis, { custtype: 'B' })).rt_cd, '0');
    h.clock.advance(SECOND);
    assert.equal(json(await kisPrice(h, token, h.kis, { custtype: 'X' })).msg_cd, 'EGW00208');
  });

  test('revoke answers code 200 as a number, and the token then gets EGW00121', async (t) => {
    const h = await start(t);
    const token = await kisIssue(h);
    const revoke = await send(h.url, 'POST', '/oauth2/revokeP', {
      json: { appkey: h.kis.appKey, appsecret: h.kis.appSecret, token },
    });
    assert.equal(revoke.status, 200);
    assert.deepEqual(json(revoke), { code: 200, message: '접근토큰 폐기에 성공하였습니다' });
    const price = await kisPrice(h, token);
    assert.equal(price.status, 500);
    assert.deepEqual(json(price), EGW00121);
    // A revoked token is not handed out again: the next issuance (after the spacing) is a new token.
    h.clock.advance(MINUTE);
    const next = await kisIssue(h);
    assert.notEqual(next, token);
    assert.equal((await kisPrice(h, next)).status, 200);
    const s = h.sim.stats(h.kis.appKey);
    assert.equal(s.revokes, 1);
    assert.equal(s.proofsRejected, 1);
    assert.equal(s.issued, 2);
  });

  test('revoke with bad credentials → 403 and the token lives on', async (t) => {
    const h = await start(t);
    const token = await kisIssue(h);
    const revoke = await send(h.url, 'POST', '/oauth2/revokeP', {
      json: { appkey: h.kis.appKey, appsecret: 'nope', token },
    });
    assert.equal(revoke.status, 403);
    assert.equal(json(revoke).error_code, 'EGW00105');
    assert.equal((await kisPrice(h, token)).status, 200);
  });

  test('an expired token → EGW00123 with HTTP 500 by default; valid up to the last millisecond', async (t) => {
    const h = await start(t);
    const token = await kisIssue(h);
    h.clock.set(T0 + 24 * HOUR - 1);
    assert.equal((await kisPrice(h, token)).status, 200);
    h.clock.set(T0 + 24 * HOUR);
    const reply = await kisPrice(h, token);
    assert.equal(reply.status, 500);
    assert.deepEqual(json(reply), EGW00123);
    assert.equal(h.sim.stats().proofsRejected, 1);
  });

  test('tokenErrorStatus 200 answers EGW00123 and EGW00121 with HTTP 200', async (t) => {
    const h = await start(t, { tokenErrorStatus: 200 });
    const token = await kisIssue(h);
    const unknown = await kisPrice(h, 'eyJ.not.a-token');
    assert.equal(unknown.status, 200);
    assert.deepEqual(json(unknown), EGW00121);
    h.clock.advance(25 * HOUR);
    const expired = await kisPrice(h, token);
    assert.equal(expired.status, 200);
    assert.deepEqual(json(expired), EGW00123);
  });

  test('header checks: app key, secret, Bearer scheme, custtype, tr_id, query; a token of another key', async (t) => {
    const h = await start(t);
    const token = await kisIssue(h);
    const mockToken = await kisIssue(h, h.kisMock);
    const cases: Array<[Record<string, string | null>, number, string]> = [
      [{ appkey: null }, 500, 'EGW00102'],
      [{ appkey: generateCredential('kis', 'other').appKey }, 500, 'EGW00103'],
      [{ appsecret: null }, 500, 'EGW00104'],
      [{ appsecret: 'wrong' }, 500, 'EGW00105'],
      [{ authorization: null }, 500, 'EGW00205'],
      [{ authorization: token }, 500, 'EGW00205'],
      [{ custtype: 'X' }, 500, 'EGW00208'],
      [{ tr_id: null }, 500, 'OPSQ0002'],
      [{ tr_id: 'FHKST01010400' }, 500, 'OPSQ0002'],
      [{ authorization: `Bearer ${mockToken}` }, 500, 'EGW00121'],
    ];
    for (const [headers, status, code] of cases) {
      h.clock.advance(SECOND); // stay inside the per-second quota
      const reply = await kisPrice(h, token, h.kis, headers);
      assert.equal(reply.status, status, `${JSON.stringify(headers)} → ${reply.text}`);
      assert.equal(json(reply).rt_cd, '1');
      assert.equal(json(reply).msg_cd, code, JSON.stringify(headers));
    }
    h.clock.advance(SECOND);
    const noMarket = await kisPrice(h, token, h.kis, {}, PRICE_PATH.replace('FID_COND_MRKT_DIV_CODE=J&', ''));
    assert.equal(json(noMarket).msg_cd, 'OPSQ2001');
    h.clock.advance(SECOND);
    assert.equal((await kisPrice(h, token)).status, 200); // and the right headers still work
    const s = h.sim.stats(h.kis.appKey);
    // The call without an app key counts only in the totals, the unknown key's under that key.
    assert.equal(s.proofs, 10);
    assert.equal(s.proofsOk, 1);
    assert.equal(s.proofsRejected, 1);
    assert.equal(s.authRejected, 1);
    assert.equal(s.badRequests, 7);
    assert.equal(h.sim.stats().proofs, 12);
    assert.equal(h.sim.stats().authRejected, 2);
    assert.equal(h.sim.stats().badRequests, 8);
  });

  test('per-second quota: 18/s for a real key, 1/s for a mock key → HTTP 500 EGW00201', async (t) => {
    const h = await start(t);
    const token = await kisIssue(h);
    for (let i = 0; i < 18; i++) assert.equal((await kisPrice(h, token)).status, 200, `call ${i + 1}`);
    const over = await kisPrice(h, token);
    assert.equal(over.status, 500);
    assert.deepEqual(json(over), { rt_cd: '1', msg_cd: 'EGW00201', msg1: '초당 거래건수를 초과하였습니다.' });
    h.clock.advance(SECOND);
    assert.equal((await kisPrice(h, token)).status, 200);

    const mockToken = await kisIssue(h, h.kisMock);
    assert.equal((await kisPrice(h, mockToken, h.kisMock)).status, 200);
    assert.equal(json(await kisPrice(h, mockToken, h.kisMock)).msg_cd, 'EGW00201');
    h.clock.advance(SECOND);
    assert.equal((await kisPrice(h, mockToken, h.kisMock)).status, 200);
    assert.equal(h.sim.stats(h.kis.appKey).quotaExceeded, 1);
    assert.equal(h.sim.stats(h.kisMock.appKey).quotaExceeded, 1);
  });
});

describe('KIS order-cash and the per-second quota it shares', () => {
  test('an accepted order: APBK0013, an increasing 10-digit ODNO, ORD_TMD in KST, nothing of the body echoed', async (t) => {
    const h = await start(t);
    const token = await kisIssue(h);
    h.clock.set(T0 + HOUR + 2 * MINUTE + 3 * SECOND + 456); // 10:02:03.456 KST
    const reply = await kisOrder(h, token);
    assert.equal(reply.status, 200, reply.text);
    assert.deepEqual(json(reply), {
      rt_cd: '0',
      msg_cd: 'APBK0013',
      msg1: '주문 전송 완료 되었습니다.',
      output: { KRX_FWDG_ORD_ORGNO: '91252', ODNO: '0000000001', ORD_TMD: '100203' },
    });
    for (const value of [KIS_ORDER.CANO, KIS_ORDER.PDNO, KIS_ORDER.ORD_UNPR]) assert.ok(!reply.text.includes(value), `echoes ${value}`);
    // A sell, an older buy code and a market order (price "0") are orders too; the numbers keep increasing.
    const odnos = [json(reply).output.ODNO as string];
    for (const [trId, body] of [
      ['TTTC0011U', {}],
      ['TTTC0802U', {}],
      ['TTTC0801U', { ORD_DVSN: '01', ORD_UNPR: '0' }],
    ] as const) {
      const next = await kisOrder(h, token, h.kis, { tr_id: trId }, body);
      assert.equal(json(next).rt_cd, '0', `${trId}: ${next.text}`);
      odnos.push(json(next).output.ODNO as string);
    }
    assert.deepEqual(odnos, ['0000000001', '0000000002', '0000000003', '0000000004']);
    const s = h.sim.stats(h.kis.appKey);
    assert.equal(s.orders, 4);
    assert.equal(s.ordersOk, 4);
    assert.equal(s.proofs, 0);
    assert.equal(s.proofsOk, 0);
    const record = h.sim.requestLog().at(-1);
    assert.deepEqual(record, { at: T0 + HOUR + 2 * MINUTE + 3 * SECOND + 456, endpoint: 'kis.order', appKey: h.kis.appKey, status: 200, outcome: 'ok' });
  });

  test('refusals in the order of the price call: headers, scheme, token (EGW00121/EGW00123), custtype, tr_id', async (t) => {
    const h = await start(t);
    const token = await kisIssue(h);
    const otherKeysToken = await kisIssue(h, h.kisMock);
    const cases: Array<[Record<string, string | null>, number, string]> = [
      [{ appkey: null }, 500, 'EGW00102'],
      [{ appkey: generateCredential('kis', 'other').appKey }, 500, 'EGW00103'],
      [{ appsecret: null }, 500, 'EGW00104'],
      [{ appsecret: 'wrong' }, 500, 'EGW00105'],
      [{ authorization: null }, 500, 'EGW00205'],
      [{ authorization: 'Bearer not-a-token' }, 500, 'EGW00121'],
      [{ authorization: `Bearer ${otherKeysToken}` }, 500, 'EGW00121'],
      // The token is checked before custtype and tr_id, as for the price call.
      [{ authorization: 'Bearer not-a-token', custtype: 'X', tr_id: null }, 500, 'EGW00121'],
      [{ custtype: 'X' }, 500, 'EGW00208'],
      [{ tr_id: null }, 500, 'OPSQ0002'],
      [{ tr_id: 'FHKST01010100' }, 500, 'OPSQ0002'],
    ];
    for (const [headers, status, code] of cases) {
      h.clock.advance(SECOND);
      const reply = await kisOrder(h, token, h.kis, headers);
      assert.equal(reply.status, status, `${JSON.stringify(headers)} → ${reply.text}`);
      assert.equal(json(reply).rt_cd, '1');
      assert.equal(json(reply).msg_cd, code, JSON.stringify(headers));
      assert.ok(!reply.text.includes(h.kis.appSecret) && !reply.text.includes(token), 'no secret in the answer');
    }
    h.clock.set(T0 + 24 * HOUR);
    const expired = await kisOrder(h, token);
    assert.equal(expired.status, 500);
    assert.deepEqual(json(expired), EGW00123);
    const s = h.sim.stats(h.kis.appKey);
    // The call without an app key counts only in the totals, the unknown key's under that key.
    assert.equal(s.orders, 10);
    assert.equal(s.ordersOk, 0);
    assert.equal(s.ordersRejected, 4);
    assert.equal(s.proofsRejected, 0);
    assert.equal(h.sim.stats().orders, 12);
  });

  test('a tr_id of the other env is refused with EGW02006; each env takes its own buy, sell and older codes', async (t) => {
    const h = await start(t);
    const token = await kisIssue(h);
    const mockToken = await kisIssue(h, h.kisMock);
    const realWithMockCode = await kisOrder(h, token, h.kis, { tr_id: 'VTTC0012U' });
    assert.equal(realWithMockCode.status, 500);
    assert.deepEqual(json(realWithMockCode), { rt_cd: '1', msg_cd: 'EGW02006', msg1: '실전투자 TR 이 아닙니다.' });
    const mockWithRealCode = await kisOrder(h, mockToken, h.kisMock, { tr_id: 'TTTC0011U' });
    assert.deepEqual(json(mockWithRealCode), { rt_cd: '1', msg_cd: 'EGW02006', msg1: '모의투자 TR 이 아닙니다.' });
    for (const trId of ['VTTC0012U', 'VTTC0011U', 'VTTC0802U', 'VTTC0801U']) {
      h.clock.advance(SECOND); // the mock quota is 1/s
      assert.equal(json(await kisOrder(h, mockToken, h.kisMock, { tr_id: trId })).rt_cd, '0', trId);
    }
    assert.equal(h.sim.stats(h.kisMock.appKey).ordersOk, 4);
    assert.equal(h.sim.stats().badRequests, 2);
  });

  test('bad body fields → OPSQ2000 (account) or OPSQ2002 naming the field, never its value', async (t) => {
    const h = await start(t);
    const token = await kisIssue(h);
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ CANO: '1234567' }, 'OPSQ2000', 'ERROR : INPUT INVALID_CHECK_ACNO'],
      [{ CANO: undefined }, 'OPSQ2000', 'ERROR : INPUT INVALID_CHECK_ACNO'],
      [{ CANO: 50012345 }, 'OPSQ2000', 'ERROR : INPUT INVALID_CHECK_ACNO'],
      [{ ACNT_PRDT_CD: '1' }, 'OPSQ2000', 'ERROR : INPUT INVALID_CHECK_ACNO'],
      [{ PDNO: '59301' }, 'OPSQ2002', 'ERROR : INPUT INVALID_CHECK_PDNO'],
      [{ ORD_DVSN: '0' }, 'OPSQ2002', 'ERROR : INPUT INVALID_CHECK_ORD_DVSN'],
      [{ ORD_QTY: '0' }, 'OPSQ2002', 'ERROR : INPUT INVALID_CHECK_ORD_QTY'],
      [{ ORD_QTY: '-3' }, 'OPSQ2002', 'ERROR : INPUT INVALID_CHECK_ORD_QTY'],
      [{ ORD_QTY: 1 }, 'OPSQ2002', 'ERROR : INPUT INVALID_CHECK_ORD_QTY'],
      [{ ORD_UNPR: undefined }, 'OPSQ2002', 'ERROR : INPUT INVALID_CHECK_ORD_UNPR'],
      [{ ORD_UNPR: '0' }, 'OPSQ2002', 'ERROR : INPUT INVALID_CHECK_ORD_UNPR'], // a limit order needs a price
      [{ EXCG_ID_DVSN_CD: 'NYSE' }, 'OPSQ2002', 'ERROR : INPUT INVALID_CHECK_EXCG_ID_DVSN_CD'],
    ];
    for (const [body, code, msg1] of cases) {
      h.clock.advance(SECOND);
      const reply = await kisOrder(h, token, h.kis, {}, body);
      assert.equal(reply.status, 500, `${JSON.stringify(body)} → ${reply.text}`);
      assert.deepEqual(json(reply), { rt_cd: '1', msg_cd: code, msg1 }, JSON.stringify(body));
    }
    h.clock.advance(SECOND);
    assert.equal(json(await send(h.url, 'POST', ORDER_PATH, { raw: '{"CANO":', headers: kisHeaders(token, h.kis, 'TTTC0012U', {}) })).msg_cd, 'OPSQ2000');
    for (const good of [{ ORD_DVSN: '01', ORD_UNPR: '0' }, { EXCG_ID_DVSN_CD: 'KRX' }, { PDNO: 'Q500001' }]) {
      h.clock.advance(SECOND);
      assert.equal(json(await kisOrder(h, token, h.kis, {}, good)).rt_cd, '0', JSON.stringify(good));
    }
    const s = h.sim.stats(h.kis.appKey);
    assert.equal(s.badRequests, 13);
    assert.equal(s.ordersOk, 3);
  });

  test('price and order calls share one budget per app key: the 19th call in a second → 500 EGW00201', async (t) => {
    const h = await start(t);
    const token = await kisIssue(h);
    for (let i = 0; i < 9; i++) {
      assert.equal((await kisPrice(h, token)).status, 200, `price ${i + 1}`);
      assert.equal((await kisOrder(h, token)).status, 200, `order ${i + 1}`);
    }
    for (const over of [await kisOrder(h, token), await kisPrice(h, token)]) {
      assert.equal(over.status, 500);
      assert.deepEqual(json(over), { rt_cd: '1', msg_cd: 'EGW00201', msg1: '초당 거래건수를 초과하였습니다.' });
    }
    // Another app key has a budget of its own.
    const mockToken = await kisIssue(h, h.kisMock);
    assert.equal((await kisOrder(h, mockToken, h.kisMock)).status, 200);
    h.clock.advance(999);
    assert.equal(json(await kisOrder(h, token)).msg_cd, 'EGW00201', 'still the same second');
    h.clock.advance(1);
    // The refused calls took nothing from the new second: all 18 go through.
    for (let i = 0; i < 18; i++) assert.equal((await kisOrder(h, token)).status, 200, `next second, call ${i + 1}`);
    assert.equal(json(await kisPrice(h, token)).msg_cd, 'EGW00201');
    const s = h.sim.stats(h.kis.appKey);
    assert.equal(s.quotaExceeded, 4);
    assert.equal(s.ordersOk, 27);
    assert.equal(s.proofsOk, 9);
    // The request log carries the arrival time of every call, so a test can count any window it likes.
    const okAt = h.sim
      .requestLog()
      .filter((r) => r.appKey === h.kis.appKey && r.endpoint !== 'kis.token' && r.status === 200)
      .map((r) => r.at - T0);
    assert.equal(okAt.filter((at) => at < SECOND).length, 18);
    assert.equal(okAt.filter((at) => at >= SECOND && at < 2 * SECOND).length, 18);
  });

  test('calls refused before the quota (bad credentials) take nothing from it; a bad token does', async (t) => {
    const h = await start(t, { kisCallsPerSecond: { real: 2 } });
    const token = await kisIssue(h);
    for (let i = 0; i < 5; i++) assert.equal(json(await kisOrder(h, token, { ...h.kis, appSecret: 'wrong' })).msg_cd, 'EGW00105');
    assert.equal(json(await kisOrder(h, 'not-a-token')).msg_cd, 'EGW00121'); // authenticated: it counts
    assert.equal((await kisOrder(h, token)).status, 200);
    assert.equal(json(await kisPrice(h, token)).msg_cd, 'EGW00201');
    assert.equal(h.sim.stats(h.kis.appKey).quotaExceeded, 1);
  });

  test('a mock key gets 1 call a second, price and order together; kisCallsPerSecond lowers or raises each env', async (t) => {
    const h = await start(t);
    const mockToken = await kisIssue(h, h.kisMock);
    assert.equal((await kisPrice(h, mockToken, h.kisMock)).status, 200);
    assert.equal(json(await kisOrder(h, mockToken, h.kisMock)).msg_cd, 'EGW00201');
    h.clock.advance(SECOND);
    assert.equal((await kisOrder(h, mockToken, h.kisMock)).status, 200);
    assert.equal(json(await kisPrice(h, mockToken, h.kisMock)).msg_cd, 'EGW00201');

    const tuned = await start(t, { kisCallsPerSecond: { real: 3, mock: 2 } });
    const realToken = await kisIssue(tuned);
    const tunedMock = await kisIssue(tuned, tuned.kisMock);
    for (let i = 0; i < 3; i++) assert.equal((await kisOrder(tuned, realToken)).status, 200);
    assert.equal(json(await kisOrder(tuned, realToken)).msg_cd, 'EGW00201');
    for (let i = 0; i < 2; i++) assert.equal((await kisOrder(tuned, tunedMock, tuned.kisMock)).status, 200);
    assert.equal(json(await kisOrder(tuned, tunedMock, tuned.kisMock)).msg_cd, 'EGW00201');
  });
});

describe('KIS Approval', () => {
  test('issues an approval key at most once per second per app key; the field is secretkey', async (t) => {
    const h = await start(t);
    const approve = (body: Record<string, unknown> = {}): Promise<Reply> =>
      send(h.url, 'POST', '/oauth2/Approval', {
        json: { grant_type: 'client_credentials', appkey: h.kis.appKey, secretkey: h.kis.appSecret, ...body },
      });
    const first = await approve();
    assert.equal(first.status, 200);
    assert.deepEqual(Object.keys(json(first)), ['approval_key']);
    assert.match(json(first).approval_key, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);

    h.clock.advance(999);
    const tooSoon = await approve();
    assert.equal(tooSoon.status, 403);
    assert.equal(json(tooSoon).error_code, 'EGW00133');
    h.clock.advance(1);
    const second = await approve();
    assert.equal(second.status, 200);
    assert.notEqual(json(second).approval_key, json(first).approval_key);

    h.clock.advance(SECOND);
    const withAppsecret = await approve({ secretkey: undefined, appsecret: h.kis.appSecret });
    assert.equal(withAppsecret.status, 403);
    assert.equal(json(withAppsecret).error_code, 'EGW00104');
    assert.equal(json(await approve({ secretkey: 'wrong' })).error_code, 'EGW00105');
    const s = h.sim.stats(h.kis.appKey);
    assert.equal(s.approvals, 2);
    assert.equal(s.approvalsRateLimited, 1);
    assert.equal(s.tokenRequests, 0);
  });
});

describe('KIS maintenance', () => {
  test('maintenance kills live tokens; by default the next issuance is a fresh, working token', async (t) => {
    const h = await start(t);
    const token = await kisIssue(h);
    const otherToken = await kisIssue(h, h.kisMock);
    assert.equal((await kisPrice(h, token)).status, 200);
    h.sim.maintenance();
    assert.deepEqual(json(await kisPrice(h, token)), EGW00121);
    assert.deepEqual(json(await kisPrice(h, otherToken, h.kisMock)), EGW00121);
    h.clock.advance(HOUR);
    const fresh = await kisIssue(h);
    assert.notEqual(fresh, token);
    assert.equal((await kisPrice(h, fresh)).status, 200);
  });

  test('sameDeadTokenAfterMaintenance: the dead token is handed out again until 6 h after its issuance', async (t) => {
    const h = await start(t, { sameDeadTokenAfterMaintenance: true });
    const token = await kisIssue(h);
    h.clock.advance(HOUR);
    h.sim.maintenance();
    h.clock.advance(HOUR);
    const again = await kisIssue(h);
    assert.equal(again, token);
    assert.deepEqual(json(await kisPrice(h, again)), EGW00121);
    h.clock.set(T0 + 6 * HOUR);
    const fresh = await kisIssue(h);
    assert.notEqual(fresh, token);
    assert.equal((await kisPrice(h, fresh)).status, 200);
    assert.equal(h.sim.stats().sameToken, 1);
  });

  test('tokens issued after a maintenance are not affected by it', async (t) => {
    const h = await start(t);
    h.sim.maintenance();
    const token = await kisIssue(h);
    assert.equal((await kisPrice(h, token)).status, 200);
  });
});

describe('Kiwoom', () => {
  test('issues an opaque token with a compact KST expires_dt; it proves itself with ka10001', async (t) => {
    const h = await start(t);
    const reply = await kiwoomToken(h);
    assert.equal(reply.status, 200);
    const body = json(reply);
    assert.deepEqual(Object.keys(body).sort(), ['expires_dt', 'return_code', 'return_msg', 'token', 'token_type']);
    assert.equal(body.return_code, 0);
    assert.equal(body.return_msg, '정상적으로 처리되었습니다');
    assert.equal(body.token_type, 'bearer');
    assert.equal(body.expires_dt, '20260303090000');
    assert.equal(body.expires_dt, kstOf(T0 + 24 * HOUR).replace(/[-: ]/g, ''));
    assert.match(body.token, /^[A-Za-z0-9_-]{86}$/);

    const info = await kiwoomStockInfo(h, body.token);
    assert.equal(info.status, 200);
    const infoBody = json(info);
    assert.equal(infoBody.return_code, 0);
    assert.equal(infoBody.stk_cd, '005930');
    assert.equal(infoBody.cur_prc, '+71000');
    // Kiwoom calls carry no app key; the token's owner is used for per-key stats.
    assert.equal(h.sim.stats(h.kiwoom.appKey).proofsOk, 1);
  });

  test('api-id may be absent on the token endpoint; a wrong one is refused', async (t) => {
    const h = await start(t);
    const noApiId = await send(h.url, 'POST', '/oauth2/token', {
      json: { grant_type: 'client_credentials', appkey: h.kiwoom.appKey, secretkey: h.kiwoom.appSecret },
    });
    assert.equal(json(noApiId).return_code, 0);
    h.clock.advance(MINUTE);
    const wrong = await kiwoomToken(h, h.kiwoom, { 'api-id': 'ka10001' });
    assert.equal(wrong.status, 200);
    assert.equal(json(wrong).return_code, 2);
    assert.equal(json(wrong).token, undefined);
  });

  test('a fresh token every time by default (after the spacing); the same one with kiwoomSameToken', async (t) => {
    const h = await start(t);
    const first = await kiwoomIssue(h);
    h.clock.advance(MINUTE);
    const second = await kiwoomIssue(h);
    assert.notEqual(second, first);
    assert.equal(json(await kiwoomStockInfo(h, first)).return_code, 0, 'older tokens stay valid');

    const same = await start(t, { kiwoomSameToken: true });
    const a = await kiwoomIssue(same);
    same.clock.advance(MINUTE);
    assert.equal(await kiwoomIssue(same), a);
    assert.equal(same.sim.stats().sameToken, 1);
  });

  test('bad key or secret → HTTP 200, return_code 3 [8001], no token', async (t) => {
    const h = await start(t);
    for (const cred of [generateCredential('kiwoom', 'stranger'), { ...h.kiwoom, appSecret: 'nope' }, h.kis]) {
      const reply = await kiwoomToken(h, cred);
      assert.equal(reply.status, 200);
      assert.deepEqual(json(reply), KIWOOM_8001);
    }
    assert.equal(h.sim.stats().authRejected, 3);
  });

  test('within the spacing → return_code 5 [1700], no token; OK at +60 s', async (t) => {
    const h = await start(t);
    await kiwoomIssue(h);
    h.clock.advance(59 * SECOND);
    const limited = await kiwoomToken(h);
    assert.equal(limited.status, 200);
    const body = json(limited);
    assert.equal(body.return_code, 5);
    assert.match(body.return_msg, /\[1700:허용된 요청 개수를 초과하였습니다/);
    assert.equal(body.token, undefined);
    h.clock.advance(SECOND);
    assert.equal(json(await kiwoomToken(h)).return_code, 0);
    assert.equal(h.sim.stats(h.kiwoom.appKey).rateLimited, 1);
  });

  test('revoke → return_code 0, then ka10001 → HTTP 200 return_code 3 [8005]', async (t) => {
    const h = await start(t);
    const token = await kiwoomIssue(h);
    const revoke = await send(h.url, 'POST', '/oauth2/revoke', {
      json: { appkey: h.kiwoom.appKey, secretkey: h.kiwoom.appSecret, token },
      headers: { 'api-id': 'au10002' },
    });
    assert.equal(revoke.status, 200);
    assert.deepEqual(json(revoke), { return_code: 0, return_msg: '정상적으로 처리되었습니다' });
    const info = await kiwoomStockInfo(h, token);
    assert.equal(info.status, 200);
    assert.deepEqual(json(info), KIWOOM_8005);
    assert.equal(h.sim.stats().revokes, 1);
    assert.equal(h.sim.stats().proofsRejected, 1);
  });

  test('ka10001 with an unknown, expired or maintenance-killed token → 8005; a wrong api-id → 2', async (t) => {
    const h = await start(t);
    assert.deepEqual(json(await kiwoomStockInfo(h, 'not-a-token')), KIWOOM_8005);
    const token = await kiwoomIssue(h);
    assert.equal(json(await kiwoomStockInfo(h, token, 'ka10002')).return_code, 2);
    h.clock.advance(24 * HOUR);
    assert.deepEqual(json(await kiwoomStockInfo(h, token)), KIWOOM_8005);
    const fresh = await kiwoomIssue(h);
    h.sim.maintenance();
    assert.deepEqual(json(await kiwoomStockInfo(h, fresh)), KIWOOM_8005);
    assert.equal(h.sim.stats().proofsRejected, 3);
    assert.equal(h.sim.stats().badRequests, 1);
  });
});

describe('Kiwoom orders and the per-api-id call limit', () => {
  test('kt10000 and kt10001 are accepted with an increasing 7-digit ord_no; nothing else of the body echoed', async (t) => {
    const h = await start(t);
    const token = await kiwoomIssue(h);
    const buy = await kiwoomOrder(h, token);
    assert.equal(buy.status, 200);
    assert.deepEqual(json(buy), { ord_no: '0000001', dmst_stex_tp: 'KRX', return_code: 0, return_msg: 'KRX 매수주문이 완료되었습니다.' });
    const sell = await kiwoomOrder(h, token, 'kt10001', { trde_tp: '0', ord_uv: '70000', ord_qty: '17' });
    assert.deepEqual(json(sell), { ord_no: '0000002', dmst_stex_tp: 'KRX', return_code: 0, return_msg: 'KRX 매도주문이 완료되었습니다.' });
    assert.ok(!sell.text.includes('70000') && !sell.text.includes('005930'));
    const s = h.sim.stats(h.kiwoom.appKey);
    assert.equal(s.orders, 2);
    assert.equal(s.ordersOk, 2);
    assert.equal(s.proofsOk, 0);
    assert.deepEqual(h.sim.requestLog().at(-1), { at: T0, endpoint: 'kiwoom.order', appKey: h.kiwoom.appKey, status: 200, outcome: 'ok' });
    // A reset forgets tokens and counts but not the order numbers: a broker never hands one out twice.
    h.sim.reset();
    assert.equal(json(await kiwoomOrder(h, await kiwoomIssue(h))).ord_no, '0000003');
  });

  test('a bad, missing, expired or revoked token → 8005; a wrong api-id → 2 [1504]; bad fields → 2 [1511/1517]', async (t) => {
    const h = await start(t);
    const token = await kiwoomIssue(h);
    assert.deepEqual(json(await kiwoomOrder(h, 'not-a-token')), KIWOOM_8005);
    assert.deepEqual(json(await kiwoomOrder(h, null)), KIWOOM_8005);
    const wrongApi = await kiwoomOrder(h, token, 'ka10001');
    assert.equal(wrongApi.status, 200);
    assert.equal(json(wrongApi).return_code, 2);
    assert.match(json(wrongApi).return_msg, /\[1504:/);
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ stk_cd: undefined }, /\[1511:.*\(stk_cd\)\]$/],
      [{ trde_tp: '0', ord_uv: '' }, /\[1511:.*\(ord_uv\)\]$/], // a limit order needs a price
      [{ ord_qty: '0' }, /\[1517:.*\(ord_qty\)\]$/],
      [{ dmst_stex_tp: 'NYSE' }, /\[1517:.*\(dmst_stex_tp\)\]$/],
      [{ trde_tp: '0', ord_uv: 'abc' }, /\[1517:.*\(ord_uv\)\]$/],
    ];
    for (const [body, pattern] of cases) {
      h.clock.advance(SECOND); // stay inside the per-api-id limit
      const reply = await kiwoomOrder(h, token, 'kt10000', body);
      assert.equal(reply.status, 200);
      assert.equal(json(reply).return_code, 2, JSON.stringify(body));
      assert.match(json(reply).return_msg, pattern);
    }
    h.clock.set(T0 + 24 * HOUR);
    assert.deepEqual(json(await kiwoomOrder(h, token)), KIWOOM_8005);
    const fresh = await kiwoomIssue(h);
    await send(h.url, 'POST', '/oauth2/revoke', { json: { appkey: h.kiwoom.appKey, secretkey: h.kiwoom.appSecret, token: fresh } });
    assert.deepEqual(json(await kiwoomOrder(h, fresh, 'kt10001')), KIWOOM_8005);
    const s = h.sim.stats();
    assert.equal(s.orders, 10);
    assert.equal(s.ordersRejected, 4);
    assert.equal(s.ordersOk, 0);
    assert.equal(s.badRequests, 6);
  });

  test('the third call within a second for one api-id → HTTP 429 return_code 5 [1700]; other api-ids unaffected', async (t) => {
    const h = await start(t);
    const token = await kiwoomIssue(h);
    assert.equal(json(await kiwoomOrder(h, token)).return_code, 0);
    assert.equal(json(await kiwoomOrder(h, token)).return_code, 0);
    const over = await kiwoomOrder(h, token);
    assert.equal(over.status, 429);
    assert.deepEqual(json(over), {
      return_code: 5,
      return_msg: '허용된 요청 개수를 초과하였습니다[1700:허용된 요청 개수를 초과하였습니다. API ID=kt10000]',
    });
    // The sell order and the proving call each have a bucket of their own, and so does another app key.
    assert.equal(json(await kiwoomOrder(h, token, 'kt10001')).return_code, 0);
    assert.equal(json(await kiwoomStockInfo(h, token)).return_code, 0);
    const second = generateCredential('kiwoom', 'second');
    h.sim.addCredential(second);
    const secondToken = json(await kiwoomToken(h, second)).token as string;
    assert.equal(json(await kiwoomOrder(h, secondToken)).return_code, 0);
    // ka10001 has the same limit: the proof is a business call like any other.
    assert.equal(json(await kiwoomStockInfo(h, token)).return_code, 0);
    const proofOver = await kiwoomStockInfo(h, token);
    assert.equal(proofOver.status, 429);
    assert.match(json(proofOver).return_msg, /\[1700:.*API ID=ka10001\]$/);
    assert.equal(h.sim.stats(h.kiwoom.appKey).quotaExceeded, 2);
    assert.equal(h.sim.stats(second.appKey).quotaExceeded, 0);
    assert.deepEqual(
      h.sim
        .requestLog()
        .filter((r) => r.status === 429)
        .map((r) => [r.endpoint, r.outcome]),
      [
        ['kiwoom.order', 'quota_exceeded'],
        ['kiwoom.stkinfo', 'quota_exceeded'],
      ],
    );
  });

  test('one call refills each second up to the burst of 2; refused calls take nothing', async (t) => {
    const h = await start(t);
    const token = await kiwoomIssue(h);
    const order = async (): Promise<number> => json(await kiwoomOrder(h, token)).return_code as number;
    assert.deepEqual([await order(), await order(), await order(), await order()], [0, 0, 5, 5]);
    h.clock.advance(999);
    assert.equal(await order(), 5, '0.999 of a call refilled');
    h.clock.advance(1);
    // Had the three refused calls taken anything, nothing would be left a second after the last success.
    assert.deepEqual([await order(), await order()], [0, 5]);
    h.clock.advance(10 * SECOND);
    assert.deepEqual([await order(), await order(), await order()], [0, 0, 5], 'the bucket holds no more than 2');
    // Token requests are not business calls: spacing governs them, not the bucket.
    h.clock.advance(MINUTE);
    assert.equal(json(await kiwoomToken(h)).return_code, 0);
  });

  test('kiwoomCallsPerSecond and kiwoomCallBurst set the bucket', async (t) => {
    const h = await start(t, { kiwoomCallsPerSecond: 2, kiwoomCallBurst: 1 });
    const token = await kiwoomIssue(h);
    assert.equal(json(await kiwoomOrder(h, token)).return_code, 0);
    assert.equal(json(await kiwoomOrder(h, token)).return_code, 5);
    h.clock.advance(500);
    assert.equal(json(await kiwoomOrder(h, token)).return_code, 0);
    assert.equal(json(await kiwoomOrder(h, token)).return_code, 5);
  });
});

describe('fault injection', () => {
  test('status: answers the given status and body once, counts, and neither mints nor starts the spacing', async (t) => {
    const h = await start(t);
    h.sim.injectFault({ endpoint: 'kis.token', kind: 'status', status: 503, body: { oops: true } });
    const faulted = await kisToken(h);
    assert.equal(faulted.status, 503);
    assert.deepEqual(json(faulted), { oops: true });
    const normal = await kisToken(h); // same instant: the fault did not start the spacing window
    assert.equal(normal.status, 200);
    const s = h.sim.stats(h.kis.appKey);
    assert.equal(s.tokenRequests, 2);
    assert.equal(s.faults, 1);
    assert.equal(s.issued, 1);
    const log = h.sim.requestLog();
    assert.deepEqual(log[0], {
      at: T0,
      endpoint: 'kis.token',
      appKey: h.kis.appKey,
      status: 503,
      outcome: 'fault:status',
      fault: 'status',
    });
  });

  test('status without a body answers an empty body', async (t) => {
    const h = await start(t);
    h.sim.injectFault({ endpoint: 'kis.price', kind: 'status', status: 500 });
    const reply = await kisPrice(h, 'whatever');
    assert.equal(reply.status, 500);
    assert.equal(reply.text, '');
    assert.equal(h.sim.stats().proofs, 1);
  });

  test('faults queue FIFO per endpoint, each for its count; other endpoints are untouched', async (t) => {
    const h = await start(t);
    h.sim.injectFault({ endpoint: 'kis.token', kind: 'status', status: 502, count: 2 });
    h.sim.injectFault({ endpoint: 'kis.token', kind: 'garbage' });
    assert.equal((await kiwoomToken(h)).status, 200);
    assert.equal((await kisToken(h)).status, 502);
    assert.equal((await kisToken(h)).status, 502);
    const garbage = await kisToken(h);
    assert.equal(garbage.status, 200);
    assert.throws(() => JSON.parse(garbage.text));
    assert.equal((await kisToken(h)).status, 200);
    assert.deepEqual(
      h.sim.requestLog().map((r) => r.outcome),
      ['issued', 'fault:status', 'fault:status', 'fault:garbage', 'issued'],
    );
  });

  test('delay: answers normally after the delay (the token is minted), recorded with fault "delay"', async (t) => {
    const h = await start(t);
    h.sim.injectFault({ endpoint: 'kis.token', kind: 'delay', delayMs: 150 });
    const started = performance.now();
    const reply = await kisToken(h);
    assert.ok(performance.now() - started >= 140, 'answer came too early');
    assert.equal(reply.status, 200);
    assert.ok(json(reply).access_token);
    const [record] = h.sim.requestLog();
    assert.deepEqual(record, {
      at: T0,
      endpoint: 'kis.token',
      appKey: h.kis.appKey,
      status: 200,
      outcome: 'issued',
      fault: 'delay',
    });
    assert.equal(h.sim.stats().faults, 1);
    assert.equal(h.sim.stats().issued, 1);
  });

  test('hang: never answers; close() still ends promptly', async (t) => {
    const h = await start(t);
    h.sim.injectFault({ endpoint: 'kis.token', kind: 'hang' });
    await assert.rejects(
      send(h.url, 'POST', '/oauth2/tokenP', { json: { grant_type: 'client_credentials' }, signal: AbortSignal.timeout(150) }),
      (err: Error) => err.name === 'TimeoutError' || err.name === 'AbortError',
    );
    assert.deepEqual(
      h.sim.requestLog().map((r) => [r.status, r.outcome]),
      [[0, 'fault:hang']],
    );
    assert.equal(h.sim.stats().tokenRequests, 1);
  });

  test('truncated: 200 with the first half of a valid answer', async (t) => {
    const h = await start(t);
    h.sim.injectFault({ endpoint: 'kis.token', kind: 'truncated' });
    const reply = await kisToken(h);
    assert.equal(reply.status, 200);
    assert.match(reply.text, /^\{"access_token":"eyJ/);
    assert.throws(() => JSON.parse(reply.text));
    assert.equal(h.sim.stats().issued, 0);
  });

  test('truncated orders: half of a success answer, no order placed, no order number spent', async (t) => {
    const h = await start(t);
    const kisBearer = await kisIssue(h);
    const kiwoomBearer = await kiwoomIssue(h);
    const faults = await send(h.url, 'POST', '/_sim/faults', { json: { endpoint: 'kis.order', kind: 'truncated' } });
    assert.equal(faults.status, 200, 'the control API knows the order endpoints');
    h.sim.injectFault({ endpoint: 'kiwoom.order', kind: 'truncated' });
    const kis = await kisOrder(h, kisBearer);
    assert.equal(kis.status, 200);
    assert.match(kis.text, /^\{"rt_cd":"0","msg_cd":"APBK0013"/);
    assert.throws(() => JSON.parse(kis.text));
    const kiwoom = await kiwoomOrder(h, kiwoomBearer);
    assert.match(kiwoom.text, /^\{"ord_no":"\d{7}"/);
    assert.throws(() => JSON.parse(kiwoom.text));
    assert.equal(json(await kisOrder(h, kisBearer)).output.ODNO, '0000000001');
    assert.equal(json(await kiwoomOrder(h, kiwoomBearer)).ord_no, '0000001');
    const s = h.sim.stats();
    assert.deepEqual([s.orders, s.ordersOk, s.faults], [4, 2, 2]);
  });

  test('drop: the connection is reset without an answer', async (t) => {
    const h = await start(t);
    h.sim.injectFault({ endpoint: 'kiwoom.token', kind: 'drop' });
    await assert.rejects(kiwoomToken(h));
    assert.equal(h.sim.requestLog()[0]?.outcome, 'fault:drop');
    assert.equal(h.sim.requestLog()[0]?.status, 0);
    assert.equal(json(await kiwoomToken(h)).return_code, 0);
  });

  test('redirect: 302 to the harmless default or to a given location', async (t) => {
    const h = await start(t);
    h.sim.injectFault({ endpoint: 'kis.token', kind: 'redirect' });
    h.sim.injectFault({ endpoint: 'kis.token', kind: 'redirect', location: 'http://127.0.0.1:9/elsewhere' });
    const first = await kisToken(h);
    assert.equal(first.status, 302);
    assert.equal(first.headers['location'], '/_sim/moved');
    assert.equal((await send(h.url, 'POST', '/_sim/moved')).status, 404);
    const second = await kisToken(h);
    assert.equal(second.status, 302);
    assert.equal(second.headers['location'], 'http://127.0.0.1:9/elsewhere');
  });

  test('body: 200 with exactly the given JSON (a past expiry, a missing token...)', async (t) => {
    const h = await start(t);
    const past = {
      access_token: 'x',
      access_token_token_expired: '2020-01-01 00:00:00',
      token_type: 'Bearer',
      expires_in: 86400,
    };
    h.sim.injectFault({ endpoint: 'kis.token', kind: 'body', body: past });
    h.sim.injectFault({ endpoint: 'kiwoom.stkinfo', kind: 'body', body: { return_code: 0 } });
    const reply = await kisToken(h);
    assert.equal(reply.status, 200);
    assert.deepEqual(json(reply), past);
    assert.deepEqual(json(await kiwoomStockInfo(h, 'x')), { return_code: 0 });
    assert.equal(h.sim.stats().proofs, 1);
    assert.equal(h.sim.stats().proofsOk, 0);
  });

  test('an invalid fault is refused with a message naming the problem; clearFaults empties the queues', async (t) => {
    const h = await start(t);
    assert.throws(
      () => h.sim.injectFault({ endpoint: 'kis.token', kind: 'delay', delayMs: -1 }),
      (err: Error) => err instanceof SimulatorInputError && /delayMs/.test(err.message),
    );
    assert.throws(() => h.sim.injectFault({ endpoint: 'kis.token', kind: 'hang', count: 0 }), SimulatorInputError);
    h.sim.injectFault({ endpoint: 'kis.token', kind: 'status', status: 500, count: 5 });
    h.sim.clearFaults();
    assert.equal((await kisToken(h)).status, 200);
  });
});

describe('control API', () => {
  test('stats, requests, faults, clearing faults and maintenance over HTTP', async (t) => {
    const h = await start(t);
    const token = await kisIssue(h);
    const totals = await send(h.url, 'GET', '/_sim/stats');
    assert.equal(totals.status, 200);
    assert.equal(json(totals).issued, 1);
    assert.equal(json(await send(h.url, 'GET', `/_sim/stats?appKey=${h.kis.appKey}`)).tokenRequests, 1);
    assert.equal(json(await send(h.url, 'GET', '/_sim/stats?appKey=nobody')).tokenRequests, 0);

    const requests = json(await send(h.url, 'GET', '/_sim/requests'));
    assert.deepEqual(requests, [{ at: T0, endpoint: 'kis.token', appKey: h.kis.appKey, status: 200, outcome: 'issued' }]);

    const fault = await send(h.url, 'POST', '/_sim/faults', {
      json: { endpoint: 'kis.price', kind: 'status', status: 429, count: 3 },
    });
    assert.equal(fault.status, 200);
    assert.equal((await kisPrice(h, token)).status, 429);
    assert.equal((await send(h.url, 'DELETE', '/_sim/faults')).status, 200);
    assert.equal((await kisPrice(h, token)).status, 200);

    assert.equal((await send(h.url, 'POST', '/_sim/maintenance')).status, 200);
    assert.deepEqual(json(await kisPrice(h, token)), EGW00121);
  });

  test('reset forgets tokens, counts and faults but keeps credentials', async (t) => {
    const h = await start(t);
    const token = await kisIssue(h);
    h.sim.injectFault({ endpoint: 'kis.token', kind: 'status', status: 500 });
    assert.equal((await send(h.url, 'POST', '/_sim/reset')).status, 200);
    assert.equal(h.sim.stats().tokenRequests, 0);
    assert.deepEqual(h.sim.requestLog(), []);
    assert.deepEqual(json(await kisPrice(h, token)), EGW00121);
    const fresh = await kisToken(h); // no fault left, no spacing remembered, credential still known
    assert.equal(fresh.status, 200);
    assert.notEqual(json(fresh).access_token, token);
  });

  test('credentials can be added; adding a known key replaces its secret', async (t) => {
    const h = await start(t);
    const added = generateCredential('kis', 'added', 'mock');
    assert.equal((await kisToken(h, added)).status, 403);
    assert.equal((await send(h.url, 'POST', '/_sim/credentials', { json: added })).status, 200);
    assert.equal((await kisToken(h, added)).status, 200);
    h.sim.addCredential({ ...h.kis, appSecret: 'rotated' });
    assert.equal(json(await kisToken(h)).error_code, 'EGW00105');
    assert.equal((await kisToken(h, { ...h.kis, appSecret: 'rotated' })).status, 200);
  });

  test('bad control requests → 400 with a clear error; unknown control paths → 404', async (t) => {
    const h = await start(t);
    const fault = (spec: unknown): Promise<Reply> => send(h.url, 'POST', '/_sim/faults', { json: spec });
    const cases: Array<[Reply, RegExp]> = [
      [await fault({ endpoint: 'kis.nothing', kind: 'hang' }), /endpoint/],
      [await fault({ endpoint: 'kis.token', kind: 'explode' }), /kind/],
      [await fault({ endpoint: 'kis.token', kind: 'status' }), /status/],
      [await send(h.url, 'POST', '/_sim/faults', { raw: '{not json' }), /not valid JSON/],
      [await send(h.url, 'POST', '/_sim/faults'), /required/],
      [await send(h.url, 'POST', '/_sim/credentials', { json: { provider: 'kis', appKey: 'k' } }), /appSecret/],
      [await send(h.url, 'POST', '/_sim/credentials', { json: { provider: 'ls', appKey: 'k', appSecret: 's' } }), /provider/],
      [await send(h.url, 'GET', '/_sim/stats?bogus=1'), /bogus/],
    ];
    for (const [reply, pattern] of cases) {
      assert.equal(reply.status, 400, reply.text);
      assert.match(json(reply).error, pattern);
    }
    assert.equal((await send(h.url, 'GET', '/_sim/nothing')).status, 404);
    assert.equal((await send(h.url, 'GET', '/nothing')).status, 404);
    assert.equal(h.sim.stats().tokenRequests, 0);
  });
});

describe('counts and lifecycle', () => {
  test('a mixed sequence gives exact totals, per-key stats and request log', async (t) => {
    const h = await start(t);
    const token = await kisIssue(h); // issued
    await kisToken(h); // rate_limited
    await kisToken(h, { ...h.kis, appSecret: 'x' }); // auth_rejected
    h.clock.advance(MINUTE);
    await kisToken(h); // same_token
    await kisPrice(h, token); // ok
    h.sim.injectFault({ endpoint: 'kis.price', kind: 'garbage' });
    await kisPrice(h, token); // fault:garbage
    await kiwoomIssue(h); // issued (kiwoom)
    assert.deepEqual(h.sim.stats(), {
      tokenRequests: 5,
      issued: 2,
      sameToken: 1,
      rateLimited: 1,
      authRejected: 1,
      revokes: 0,
      approvals: 0,
      approvalsRateLimited: 0,
      proofs: 2,
      proofsOk: 1,
      proofsRejected: 0,
      orders: 0,
      ordersOk: 0,
      ordersRejected: 0,
      inquiries: 0,
      inquiriesOk: 0,
      inquiriesRejected: 0,
      quotaExceeded: 0,
      badRequests: 0,
      faults: 1,
    });
    assert.equal(h.sim.stats(h.kis.appKey).tokenRequests, 4);
    assert.equal(h.sim.stats(h.kiwoom.appKey).issued, 1);
    assert.deepEqual(
      h.sim.requestLog().map((r) => [r.at - T0, r.endpoint, r.status, r.outcome]),
      [
        [0, 'kis.token', 200, 'issued'],
        [0, 'kis.token', 403, 'rate_limited'],
        [0, 'kis.token', 403, 'auth_rejected'],
        [MINUTE, 'kis.token', 200, 'same_token'],
        [MINUTE, 'kis.price', 200, 'ok'],
        [MINUTE, 'kis.price', 200, 'fault:garbage'],
        [MINUTE, 'kiwoom.token', 200, 'issued'],
      ],
    );
  });

  test('close() returns promptly with hung requests and keep-alive connections open, and twice is harmless', async () => {
    const clock = new ManualClock(T0);
    const kis = generateCredential('kis', 'close');
    const sim = new BrokerSimulator({ clock, credentials: [kis] });
    const url = await sim.listen();
    sim.injectFault({ endpoint: 'kis.token', kind: 'hang' });
    const hung = send(url, 'POST', '/oauth2/tokenP', { json: {} }).catch((err: Error) => err);
    await send(url, 'GET', '/_sim/stats'); // a keep-alive connection
    while (sim.stats().tokenRequests === 0) await new Promise((r) => setTimeout(r, 5));
    const started = performance.now();
    await sim.close();
    assert.ok(performance.now() - started < 1000, 'close took too long');
    assert.ok((await hung) instanceof Error);
    await sim.close();
  });

  test('runSimulatorServer listens on loopback and serves', async (t) => {
    const kis = generateCredential('kis', 'cli');
    const { url, simulator } = await runSimulatorServer({ port: 0, clock: new ManualClock(T0), credentials: [kis] });
    t.after(() => simulator.close());
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const reply = await send(url, 'POST', '/oauth2/tokenP', {
      json: { grant_type: 'client_credentials', appkey: kis.appKey, appsecret: kis.appSecret },
    });
    assert.equal(reply.status, 200);
    assert.equal(simulator.stats().issued, 1);
  });

  test('invalid options are refused at construction', () => {
    const clock = new ManualClock(T0);
    assert.throws(() => new BrokerSimulator({ clock, credentials: [], spacingMs: -1 }), /spacingMs/);
    assert.throws(() => new BrokerSimulator({ clock, credentials: [], tokenLifetimeMs: 10 }), /tokenLifetimeMs/);
    assert.throws(() => new BrokerSimulator({ clock, credentials: [{ provider: 'kis', appKey: '', appSecret: 's' }] }), /appKey/);
  });

  test('call-limit options are validated at construction', () => {
    const clock = new ManualClock(T0);
    const refused: Array<[Partial<SimulatorOptions>, RegExp]> = [
      [{ kisCallsPerSecond: { real: 0 } }, /kisCallsPerSecond\.real must be a positive integer, got 0/],
      [{ kisCallsPerSecond: { mock: 1.5 } }, /kisCallsPerSecond\.mock/],
      [{ kisCallsPerSecond: { real: Number.NaN } }, /kisCallsPerSecond\.real/],
      [{ kiwoomCallsPerSecond: 0 }, /kiwoomCallsPerSecond must be a positive number, got 0/],
      [{ kiwoomCallsPerSecond: -1 }, /kiwoomCallsPerSecond/],
      [{ kiwoomCallsPerSecond: Number.POSITIVE_INFINITY }, /kiwoomCallsPerSecond/],
      [{ kiwoomCallBurst: 0 }, /kiwoomCallBurst must be a positive integer, got 0/],
      [{ kiwoomCallBurst: 1.5 }, /kiwoomCallBurst/],
    ];
    for (const [options, pattern] of refused) {
      assert.throws(() => new BrokerSimulator({ clock, credentials: [], ...options }), pattern, JSON.stringify(options));
    }
    // A fractional refill rate is a rate (one call every two seconds), so it is allowed.
    assert.doesNotThrow(() => new BrokerSimulator({ clock, credentials: [], kiwoomCallsPerSecond: 0.5, kiwoomCallBurst: 1, kisCallsPerSecond: { mock: 2 } }));
  });

  test('the simulator has no way to log: no console, logger or stdout in its sources', () => {
    const dir = resolve(__dirname, '../../src/simulator');
    const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
    assert.ok(files.length >= 10, `only ${files.length} simulator sources found in ${dir}`);
    for (const file of files) {
      const text = readFileSync(join(dir, file), 'utf8');
      assert.doesNotMatch(text, /console\.|pino|process\.(stdout|stderr)|core\/log/, file);
    }
  });
});

describe('KIS inquire-balance, as the official sample asks for it', () => {
  const BALANCE_QUERY = {
    CANO: '12345678',
    ACNT_PRDT_CD: '01',
    AFHR_FLPR_YN: 'N',
    OFL_YN: '',
    INQR_DVSN: '01',
    UNPR_DVSN: '01',
    FUND_STTL_ICLD_YN: 'N',
    FNCG_AMT_AUTO_RDPT_YN: 'N',
    PRCS_DVSN: '00',
    CTX_AREA_FK100: '',
    CTX_AREA_NK100: '',
  };
  const balance = (h: Harness, token: string, cred: SimulatorCredential, trId: string, query: Record<string, string> = {}) =>
    send(h.url, 'GET', `/uapi/domestic-stock/v1/trading/inquire-balance?${new URLSearchParams({ ...BALANCE_QUERY, ...query }).toString()}`, {
      headers: kisHeaders(token, cred, trId, {}),
    });

  test('one page: output1 (a holding, 26 fields) and output2 (the totals, 24 fields), empty continuation keys, tr_cont D', async (t) => {
    const h = await start(t);
    const token = await kisIssue(h);
    const reply = await balance(h, token, h.kis, 'TTTC8434R');
    assert.equal(reply.status, 200, reply.text);
    const body = json(reply);
    assert.equal(body.rt_cd, '0');
    assert.equal(Object.keys(body.output1[0] as object).length, 26);
    assert.equal(Object.keys(body.output2[0] as object).length, 24);
    assert.equal(body.ctx_area_fk100, '');
    assert.equal(body.ctx_area_nk100, '');
    assert.equal(reply.headers['tr_cont'], 'D');
    const s = h.sim.stats(h.kis.appKey);
    assert.deepEqual([s.inquiries, s.inquiriesOk, s.proofs, s.orders], [1, 1, 0, 0]);
  });

  test('the mock tr_id on a mock key; the other env refused with EGW02006; a bad query field named; the token checked', async (t) => {
    const h = await start(t);
    const mockToken = await kisIssue(h, h.kisMock);
    assert.equal(json(await balance(h, mockToken, h.kisMock, 'VTTC8434R')).rt_cd, '0');
    h.clock.advance(SECOND);
    assert.equal(json(await balance(h, mockToken, h.kisMock, 'TTTC8434R')).msg_cd, 'EGW02006');
    h.clock.advance(SECOND);
    assert.deepEqual(json(await balance(h, mockToken, h.kisMock, 'VTTC8434R', { INQR_DVSN: '' })), {
      rt_cd: '1',
      msg_cd: 'OPSQ2002',
      msg1: 'ERROR : INPUT INVALID_CHECK_INQR_DVSN',
    });
    h.clock.advance(SECOND);
    assert.equal(json(await balance(h, mockToken, h.kisMock, 'VTTC8434R', { CANO: '1' })).msg_cd, 'OPSQ2000');
    h.clock.advance(SECOND);
    assert.equal(json(await balance(h, 'eyJ.not.a-token', h.kisMock, 'VTTC8434R')).msg_cd, 'EGW00121');
    const s = h.sim.stats(h.kisMock.appKey);
    assert.deepEqual([s.inquiries, s.inquiriesOk, s.inquiriesRejected, s.badRequests], [5, 1, 1, 3]);
  });
});

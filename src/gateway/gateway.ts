import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { callsPerSecondOf } from '../config/gateway';
import type { AccountConfig, GatewayClientConfig, GatewayConfig } from '../config/types';
import type { AccountRef, EventBus, GatewayCallResult, GatewayRefusalReason } from '../core/events';
import { BROKER_WINDOW_MS, type CallBudget } from './budget';
import { mayUse, type ClientBook } from './clients';
import { dialectOf, type Answer, type Dialect, type GatewayRefusal, type LocalEndpoint } from './dialects';
import { brokerCase, forward, outgoingHeaders, sendBroker, type BrokerAnswer } from './forward';
import { apiLabel, codeLabel } from './labels';
import type { LocalTokens } from './local-tokens';

/**
 * The gateway's request handler: `/{account}/<the broker's own path>`. Token endpoints are answered here; every
 * other call is authenticated by the client's local credentials, waits for its slot of the account's per-second
 * budget, and goes to the broker with the real token and app key in place of the client's. An answer that says
 * the token died asks the lifecycle to prove it (and re-issue within the rules), and the call is sent once more
 * with a new token; an EGW00201 (someone outside the gateway spends the same budget) is sent once more at the
 * next slot. No body, token or secret is ever logged: the events carry labels and timings only.
 */

/** What the gateway needs of an account's lifecycle (AccountLifecycle in production, a fake in unit tests). */
export interface GatewayAccount {
  config: AccountConfig;
  ref: AccountRef;
  token(): { accessToken: string; expiresAt: number } | undefined;
  tokenRefused(accessToken: string): Promise<void>;
  approvalKey(): Promise<string | undefined>;
}

interface GatewayDeps {
  config: GatewayConfig;
  account(name: string): GatewayAccount | undefined;
  clients: ClientBook;
  tokens: LocalTokens;
  budget: CallBudget;
  dispatcher: Dispatcher;
  bus: EventBus;
  /** Wall clock, epoch ms: local tokens' times. */
  now(): number;
}

// Broker request bodies are a few hundred bytes (an order); a MiB is no call's.
const MAX_REQUEST_BYTES = 1024 * 1024;
// A dead token is proven and maybe re-issued before the call is sent again; past this the client gets the answer.
const TOKEN_RECOVERY_BOUND_MS = 10_000;
/** The budget's name for the sidecar's own calls (proofs), which wait their turn like a client's. */
export const SIDECAR_CLIENT = '(sidecar)';
const NO_TOKEN_WAIT_MS = 5_000;
// The brokers' own path roots (docs/brokers.md): an unprefixed request under one of them is routed by its caller.
const BROKER_PATH = /^\/(oauth2|uapi|api)\//;
const NO_TOKEN_POLL_MS = 50;

async function tokenWithin(account: GatewayAccount, boundMs: number, signal: AbortSignal) {
  for (let waited = 0; waited < boundMs && !signal.aborted; waited += NO_TOKEN_POLL_MS) {
    await new Promise((resolve) => setTimeout(resolve, NO_TOKEN_POLL_MS));
    const token = account.token();
    if (token) return token;
  }
  return undefined;
}

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) {
        reject(new BodyTooLarge());
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

function send(res: ServerResponse, answer: Answer): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(answer.body);
  // Capitalised as the broker writes them (see brokerCase): kis_auth.py fails on a lower-case hyphenated name.
  const headers: Record<string, string | number> = { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) };
  for (const [name, value] of Object.entries(answer.headers ?? {})) headers[brokerCase(name)] = value;
  res.writeHead(answer.status, headers);
  res.end(text);
}

const parseJson = (body: Buffer): unknown => {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
};

const field = (json: unknown, name: string): string | undefined => {
  const value = typeof json === 'object' && json !== null ? (json as Record<string, unknown>)[name] : undefined;
  return typeof value === 'string' ? value : undefined;
};

const bearer = (header: string | undefined): string | undefined => /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];

/** The budget a call counts against: Kiwoom's per app key and api-id (docs/brokers.md#kiwoom-call-limits), KIS's per app key. */
export function budgetKeyOf(account: AccountConfig, api: string | undefined): string {
  return account.provider === 'kiwoom' ? `${account.name}\u0000${api ?? ''}` : account.name;
}

export function createGatewayHandler(deps: GatewayDeps): RequestListener {
  // One proof per dead token, however many calls saw it die at once.
  const recoveries = new Map<string, Promise<void>>();

  const refuse = (res: ServerResponse, dialect: Dialect, reason: GatewayRefusalReason, detail: string, req: IncomingMessage) => {
    deps.bus.emit('gateway.refused', { reason, remoteAddress: req.socket.remoteAddress });
    send(res, dialect.refusal(reason, detail));
  };

  async function takeSlot(account: GatewayAccount, api: string | undefined, client: string, signal?: AbortSignal) {
    const limit = callsPerSecondOf(deps.config, account.config);
    const answer = await deps.budget.take(budgetKeyOf(account.config, api), limit, client, signal);
    deps.bus.emit('gateway.budget', { account: account.ref, granted: answer.granted, waitedMs: answer.waitedMs });
    return answer;
  }

  async function recover(account: GatewayAccount, accessToken: string): Promise<void> {
    const key = `${account.config.name}\u0000${accessToken}`;
    let recovery = recoveries.get(key);
    if (!recovery) {
      // The proof it leads to takes its budget slot like any call (Sidecar.gateBudgetedCalls).
      recovery = account.tokenRefused(accessToken).finally(() => setTimeout(() => recoveries.delete(key), 1_000).unref());
      recoveries.set(key, recovery);
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([recovery, new Promise<void>((resolve) => (timer = setTimeout(resolve, TOKEN_RECOVERY_BOUND_MS)))]).finally(() => clearTimeout(timer));
  }

  async function answerLocally(req: IncomingMessage, res: ServerResponse, account: GatewayAccount, dialect: Dialect, endpoint: LocalEndpoint, body: Buffer) {
    const json = parseJson(body);
    const client = deps.clients.authenticate(field(json, 'appkey'), field(json, dialect.secretField(endpoint)));
    if (!client) return refuse(res, dialect, 'unauthenticated', 'unknown local app key or secret', req);
    if (!mayUse(client, account.config.name)) return refuse(res, dialect, 'forbidden_account', `this client may not use ${account.config.name}`, req);
    const now = deps.now();
    if (endpoint === 'token') {
      const real = account.token();
      // No token yet (the sidecar is still getting one): the client is told an hour, and asks again then.
      const expiresAt = real?.expiresAt ?? now + 60 * 60_000;
      send(res, {
        status: 200,
        body: dialect.tokenAnswer(deps.tokens.mint({ client: client.name, account: account.config.name, expiresAt }, now), expiresAt, now),
      });
    } else if (endpoint === 'revoke') {
      const token = field(json, 'token');
      if (token) deps.tokens.revoke(token);
      send(res, { status: 200, body: dialect.revokeAnswer() });
    } else {
      const key = await account.approvalKey();
      if (!key) {
        send(res, dialect.refusal('no_token', 'no approval key could be had from the broker', 60_000));
        return;
      }
      send(res, { status: 200, body: { approval_key: key } });
    }
    deps.bus.emit('gateway.local_answer', { account: account.ref, client: client.name, endpoint });
  }

  function clientOf(req: IncomingMessage, account: GatewayAccount, dialect: Dialect): GatewayClientConfig | GatewayRefusal {
    if (dialect.provider === 'kis') {
      const client = deps.clients.authenticate(header(req, 'appkey'), header(req, 'appsecret'));
      if (!client) return 'unauthenticated';
      return mayUse(client, account.config.name) ? client : 'forbidden_account';
    }
    // Kiwoom calls carry only the bearer token: the local one names its client and account.
    const claims = deps.tokens.verify(bearer(header(req, 'authorization')) ?? '');
    const client = claims && deps.clients.byClientName(claims.client);
    if (!claims || !client) return 'unauthenticated';
    return claims.account === account.config.name && mayUse(client, account.config.name) ? client : 'forbidden_account';
  }

  /**
   * `/{account}/<broker path>`; or the broker's path alone, for a client that cannot keep a path in its host
   * (python-kis joins "/oauth2/tokenP" to its domain, dropping any path): the caller's one account then, named by
   * its local token (Kiwoom) or its local key (KIS), which is authenticated after, as for any call.
   */
  function route(pathname: string, req: IncomingMessage, body: Buffer): { account: GatewayAccount; path: string } | undefined {
    const slash = pathname.indexOf('/', 1);
    const named = deps.account(decodeURIComponent(pathname.slice(1, slash < 0 ? undefined : slash)));
    if (named) return { account: named, path: slash < 0 ? '/' : pathname.slice(slash) };
    if (!BROKER_PATH.test(pathname)) return undefined;
    const claims = deps.tokens.verify(bearer(header(req, 'authorization')) ?? '');
    const key = header(req, 'appkey') ?? field(parseJson(body), 'appkey');
    const accounts = claims ? [claims.account] : key !== undefined ? (deps.clients.byAppKey(key)?.accounts ?? []) : [];
    const account = accounts.length === 1 ? deps.account(accounts[0]!) : undefined;
    return account && { account, path: pathname };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const url = new URL(req.url ?? '/', 'http://gateway');
    let body: Buffer;
    try {
      body = await readBody(req);
    } catch (error) {
      if (error instanceof BodyTooLarge) return refuse(res, dialectOf('kis'), 'bad_request', 'request body over 1 MiB', req);
      return; // the client went away
    }
    const routed = route(url.pathname, req, body);
    if (!routed) return refuse(res, dialectOf('kis'), 'unknown_account', `no account named in ${url.pathname.slice(0, 80)}`, req);
    const { account, path } = routed;
    const dialect = dialectOf(account.config.provider);
    const method = req.method ?? 'GET';
    const endpoint = dialect.localEndpoint(method, path);
    if (endpoint) return answerLocally(req, res, account, dialect, endpoint, body);

    const client = clientOf(req, account, dialect);
    if (typeof client === 'string') {
      const detail = client === 'unauthenticated' ? 'unknown local credentials' : `this client may not use ${account.config.name}`;
      return refuse(res, dialect, client as GatewayRefusalReason, detail, req);
    }
    const api = dialect.apiOf(req.headers);
    const done = (result: GatewayCallResult, code: string) =>
      deps.bus.emit('gateway.call', {
        account: account.ref,
        client: client.name,
        api: apiLabel(account.config.provider, api),
        result,
        code: codeLabel(account.config.provider, code),
        durationMs: performance.now() - started,
      });

    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    // No token this moment (found dead, its successor on the way): wait a little for it rather than fail the call.
    let token = account.token() ?? (await tokenWithin(account, NO_TOKEN_WAIT_MS, gone.signal));
    if (!token) {
      send(res, dialect.refusal('no_token', 'ask again in a few seconds', 5_000));
      return done('upstream_error', '');
    }

    const sendOnce = async (accessToken: string): Promise<BrokerAnswer | 'budget_exhausted' | 'upstream_error'> => {
      const slot = await takeSlot(account, api, client.name, gone.signal);
      if (!slot.granted) {
        send(res, dialect.refusal('budget_exhausted', `the per-second budget of ${account.config.name} is spent`, slot.retryAfterMs));
        return 'budget_exhausted';
      }
      const real: Record<string, string> = { authorization: `Bearer ${accessToken}` };
      if (dialect.provider === 'kis') Object.assign(real, { appkey: account.config.appKey, appsecret: account.config.appSecret });
      try {
        return await forward(deps.dispatcher, {
          origin: new URL(account.config.baseUrl).origin,
          method,
          path: `${new URL(account.config.baseUrl).pathname.replace(/\/$/, '')}${path}${url.search}`,
          headers: outgoingHeaders(req.headers, real),
          body,
          timeoutMs: account.config.http.timeoutMs,
          signal: gone.signal,
        });
      } catch {
        if (!gone.signal.aborted) send(res, dialect.refusal('upstream_error', `no answer from ${new URL(account.config.baseUrl).host}`));
        return 'upstream_error';
      } finally {
        slot.answered();
      }
    };

    const verdictOf = (answer: BrokerAnswer) =>
      answer.kind === 'read' ? dialect.classify(answer.status, parseJson(answer.body)) : { result: 'ok' as const, code: '' };
    const firstSentAt = performance.now();
    let answer = await sendOnce(token.accessToken);
    if (typeof answer === 'string') return done(answer, '');
    let verdict = verdictOf(answer);
    let retry: 'token_fault' | 'rate_limited' | undefined;
    if (verdict.result === 'token_fault') {
      await recover(account, token.accessToken);
      const fresh = account.token();
      if (fresh && fresh.accessToken !== token.accessToken) {
        retry = 'token_fault';
        token = fresh;
      }
    } else if (verdict.result === 'rate_limited') {
      retry = 'rate_limited';
      // Someone outside the gateway filled the broker's window: a retry in that same window would meet the same
      // answer, so it waits until a second has passed since the first send, wherever the broker's window starts.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, firstSentAt + BROKER_WINDOW_MS - performance.now())));
    }
    if (retry) {
      deps.bus.emit('gateway.retry', { account: account.ref, reason: retry });
      answer = await sendOnce(token.accessToken);
      if (typeof answer === 'string') return done(answer, '');
      verdict = verdictOf(answer);
    }
    sendBroker(res, answer);
    done(verdict.result, verdict.code);
  }

  return (req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, { status: 500, body: { error: 'the gateway failed on this request' } });
      else res.destroy();
    });
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

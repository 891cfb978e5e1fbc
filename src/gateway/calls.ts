import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { budgetKeyOf, pendingMsOf } from '../budget/keys';
import { callsPerSecondOf } from '../config/gateway';
import { CallAbort } from '../core/call-abort';
import type { GatewayClientConfig } from '../config/types';
import type { GatewayCallResult } from '../core/events';
import { bearerToken, firstHeader, parseJson, scanJsonFields } from '../core/wire';
import { mayUse } from './clients';
import { dialectOf, type Dialect, type RefusalKind } from './dialects';
import { forward, outgoingHeaders, sendBroker, type BrokerAnswer } from './forward';
import { apiLabel, codeLabel } from './labels';
import { BodyError, readBody, sendAnswer } from './requests';
import type { GatewayAccount, GatewayDeps } from './types';

/**
 * A client's call to the broker: its caller authenticated from its headers alone (a KIS client's local key and
 * secret, a Kiwoom client's local token) before a byte of its body is read; then a slot of the account's budget,
 * and the call sent with the real token and key in place of the local ones. An answer that says the token died
 * asks the lifecycle to prove it (and re-issue within the rules), and the call is sent once more with the new
 * token; an EGW00201 (someone outside the gateway spends the same budget) is sent once more a second later, with
 * a slot of its own. No body, token or secret is ever logged: the events carry labels and timings only.
 */

// Broker request bodies are a few hundred bytes (an order); no call's is near this.
const MAX_CALL_BODY_BYTES = 64 * 1024;
// A dead token is proven and maybe re-issued before the call is sent again; past this the client gets the answer.
const TOKEN_RECOVERY_BOUND_MS = 10_000;
const NO_TOKEN_WAIT_MS = 5_000;
const NO_TOKEN_POLL_MS = 50;
/** The broker's window: a retry after EGW00201 waits this long after the first send, wherever the broker's window starts. */
const BROKER_WINDOW_MS = 1_000;

type Refuse = (res: ServerResponse, dialect: Dialect, kind: RefusalKind, detail: string, req: IncomingMessage) => void;

async function tokenWithin(account: GatewayAccount, boundMs: number, signal: CallAbort) {
  for (let waited = 0; waited < boundMs && !signal.aborted; waited += NO_TOKEN_POLL_MS) {
    await new Promise((resolve) => setTimeout(resolve, NO_TOKEN_POLL_MS));
    const token = account.token();
    if (token) return token;
  }
  return undefined;
}

export function createCalls(deps: GatewayDeps, refuse: Refuse) {
  // One proof per dead token, however many calls saw it die at once.
  const recoveries = new Map<string, Promise<void>>();
  // Each account's broker origin and base path, parsed once (a reload makes a new config object, so a new entry).
  const bases = new WeakMap<GatewayAccount['config'], { origin: string; host: string; path: string }>();
  const baseOf = (config: GatewayAccount['config']) => {
    let base = bases.get(config);
    if (!base) {
      const url = new URL(config.baseUrl);
      bases.set(config, (base = { origin: url.origin, host: url.host, path: url.pathname.replace(/\/$/, '') }));
    }
    return base;
  };

  async function recover(account: GatewayAccount, accessToken: string): Promise<void> {
    const key = `${account.config.name}\u0000${accessToken}`;
    let recovery = recoveries.get(key);
    if (!recovery) {
      // The proof it leads to takes its budget slot like any call (providers/http.ts).
      recovery = account.tokenRefused(accessToken).finally(() => setTimeout(() => recoveries.delete(key), 1_000).unref());
      recoveries.set(key, recovery);
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([recovery, new Promise<void>((resolve) => (timer = setTimeout(resolve, TOKEN_RECOVERY_BOUND_MS)))]).finally(() => clearTimeout(timer));
  }

  /** The account of a call that names none: the caller's one account, by its local key (KIS) or token (Kiwoom). */
  async function accountOfCaller(req: IncomingMessage): Promise<GatewayAccount | undefined> {
    const token = bearerToken(firstHeader(req.headers, 'authorization'));
    const claims = token === undefined ? undefined : await deps.tokens.verify(token, deps.now());
    if (claims !== undefined && typeof claims !== 'string') return deps.account(claims.account);
    const appKey = firstHeader(req.headers, 'appkey');
    const accounts = appKey === undefined ? [] : (deps.clients.byAppKey(appKey)?.accounts ?? []);
    return accounts.length === 1 ? deps.account(accounts[0]!) : undefined;
  }

  /** Who calls: from the headers only, so an unknown caller never gets its body read. */
  async function callerOf(req: IncomingMessage, account: GatewayAccount): Promise<GatewayClientConfig | { kind: RefusalKind; detail: string }> {
    const name = account.config.name;
    if (account.config.provider === 'kis') {
      const client = deps.clients.authenticate(firstHeader(req.headers, 'appkey'), firstHeader(req.headers, 'appsecret'));
      if (!client) return { kind: 'unauthenticated', detail: 'unknown local app key or secret' };
      return mayUse(client, name) ? client : { kind: 'forbidden_account', detail: `this client may not use ${name}` };
    }
    // Kiwoom calls carry only the bearer token: the local one names its client and account.
    const claims = await deps.tokens.verify(bearerToken(firstHeader(req.headers, 'authorization')) ?? '', deps.now());
    if (typeof claims === 'string') return { kind: 'unauthenticated', detail: `local token ${claims}` };
    const client = deps.clients.byClientName(claims.client);
    if (!client) return { kind: 'unauthenticated', detail: 'local token of no current client' };
    return claims.account === name && mayUse(client, name) ? client : { kind: 'forbidden_account', detail: `this client may not use ${name}` };
  }

  return async function call(req: IncomingMessage, res: ServerResponse, named: GatewayAccount | undefined, path: string, search: string): Promise<void> {
    const started = performance.now();
    const account = named ?? (await accountOfCaller(req));
    if (!account) return refuse(res, dialectOf('kis'), 'unknown_account', `no account named in ${path.slice(0, 80)}`, req);
    const dialect = dialectOf(account.config.provider);
    const caller = await callerOf(req, account);
    if ('kind' in caller) return refuse(res, dialect, caller.kind, caller.detail, req);
    const client = caller;
    deps.authenticated(req.socket);
    let body: Buffer;
    try {
      body = await readBody(req, MAX_CALL_BODY_BYTES);
    } catch (error) {
      if ((error as BodyError).kind === 'gone') return;
      return refuse(res, dialect, 'too_large', `a request body over ${MAX_CALL_BODY_BYTES} bytes`, req);
    }
    const method = req.method ?? 'GET';
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

    const gone = new CallAbort();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    // No token this moment (found dead, its successor on the way): wait a little for it rather than fail the call.
    let token = account.token() ?? (await tokenWithin(account, NO_TOKEN_WAIT_MS, gone));
    if (!token) {
      sendAnswer(res, dialect.refusal('no_token', 'ask again in a few seconds', 5_000));
      return done('upstream_error', '');
    }

    const base = baseOf(account.config);
    const budgetKey = budgetKeyOf(account.config, api);
    const limit = callsPerSecondOf(deps.config, account.config);
    const sendOnce = async (accessToken: string): Promise<BrokerAnswer | 'budget_exhausted' | 'upstream_error'> => {
      const slot = await deps.budget.take({ key: budgetKey, limit, pendingMs: pendingMsOf(account.config), client: client.name, signal: gone });
      deps.bus.emit('budget.slot', { account: account.ref, granted: slot.granted, waitedMs: slot.waitedMs });
      if (!slot.granted) {
        sendAnswer(res, dialect.refusal('budget_exhausted', `the per-second budget of ${account.config.name} is spent`, slot.retryAfterMs));
        return 'budget_exhausted';
      }
      const real: Record<string, string> = { authorization: `Bearer ${accessToken}` };
      if (dialect.provider === 'kis') Object.assign(real, { appkey: account.config.appKey, appsecret: account.config.appSecret });
      try {
        return await forward(deps.dispatcher, {
          origin: base.origin,
          method,
          path: `${base.path}${path}${search}`,
          headers: outgoingHeaders(req.headers, real),
          body,
          timeoutMs: account.config.http.timeoutMs,
          signal: gone,
        });
      } catch {
        if (!gone.aborted) sendAnswer(res, dialect.refusal('upstream_error', `no answer from ${base.host}`));
        return 'upstream_error';
      } finally {
        slot.answered();
      }
    };

    const verdictOf = (answer: BrokerAnswer) =>
      answer.kind === 'read'
        ? dialect.classify(answer.status, scanJsonFields(answer.body, dialect.verdictFields) ?? parseJson(answer.body))
        : { result: 'ok' as const, code: '' };
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
  };
}

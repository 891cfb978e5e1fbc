import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseJson, stringField } from '../core/wire';
import { mayUse } from './clients';
import { dialectOf, type Dialect, type RefusalKind } from './dialects';
import { BodyError, readBody, sendAnswer } from './requests';
import type { GatewayAccount, GatewayDeps } from './types';

/**
 * The token endpoints, answered here and never sent to the broker: a token request gets a local token, a revoke
 * revokes one of the caller's own, an approval request gets the client's own approval key for the real-time
 * endpoint (local-approval-keys.ts), never the account's real one. Their caller is named in the body, so the body
 * is read first, but small and quickly: an unknown caller holds at most TOKEN_BODY_BYTES for TOKEN_BODY_MS.
 */

// A token request is ~300 bytes (a 180-character secret included).
const TOKEN_BODY_BYTES = 4 * 1024;
// A real client sends its body with its headers; this is for the one that trickles it.
const TOKEN_BODY_MS = 2_000;

export function createLocalEndpoints(
  deps: GatewayDeps,
  refuse: (res: ServerResponse, dialect: Dialect, kind: RefusalKind, detail: string, req: IncomingMessage) => void,
) {
  return async function answer(req: IncomingMessage, res: ServerResponse, named: GatewayAccount | undefined, path: string): Promise<void> {
    const fallbackDialect = dialectOf(named?.config.provider ?? 'kis');
    let body: Buffer;
    try {
      body = await readBody(req, TOKEN_BODY_BYTES, TOKEN_BODY_MS);
    } catch (error) {
      const kind = (error as BodyError).kind;
      if (kind === 'gone') return;
      return refuse(res, fallbackDialect, kind, kind === 'too_large' ? `a token request over ${TOKEN_BODY_BYTES} bytes` : 'the body came too slowly', req);
    }
    const json = parseJson(body);
    const appKey = stringField(json, 'appkey');
    // python-kis drops any path from its domain: the local key names the caller's one account.
    const account = named ?? accountOfKey(appKey);
    if (!account) return refuse(res, fallbackDialect, 'unknown_account', 'no account named, and no local key with one account', req);
    const dialect = dialectOf(account.config.provider);
    const endpoint = dialect.localEndpoint(req.method ?? 'GET', path);
    if (!endpoint) return refuse(res, dialect, 'not_found', `no token endpoint ${path.slice(0, 40)} at ${account.config.provider}`, req);
    const client = deps.clients.authenticate(appKey, stringField(json, dialect.secretField(endpoint)));
    if (!client) return refuse(res, dialect, 'unauthenticated', 'unknown local app key or secret', req);
    if (!mayUse(client, account.config.name)) return refuse(res, dialect, 'forbidden_account', `this client may not use ${account.config.name}`, req);
    deps.authenticated(req.socket);
    const now = deps.now();
    if (endpoint === 'token') {
      // No token yet (the sidecar is still getting one): the client is told an hour, and asks again then.
      const expiresAt = account.token()?.expiresAt ?? now + 60 * 60_000;
      const local = await deps.tokens.mint(client, { client: client.name, account: account.config.name, expiresAt }, now);
      sendAnswer(res, { status: 200, body: dialect.tokenAnswer(local, expiresAt, now) });
    } else if (endpoint === 'revoke') {
      const outcome = await deps.tokens.revoke(stringField(json, 'token') ?? '', client.name, now);
      // Revoking a token already dead (expired, revoked, its client's secret rotated) is done; another client's is not its to end.
      if (outcome === 'not_yours' || outcome === 'invalid') {
        return refuse(res, dialect, 'forbidden_account', outcome === 'not_yours' ? "another client's token" : 'not a token of this gateway', req);
      }
      sendAnswer(res, { status: 200, body: dialect.revokeAnswer() });
    } else {
      // The client's own key, for the real-time endpoint; given once the sidecar holds the account's real key (fetched
      // once per token, within its backoff), so a client is told "later" exactly when the broker would refuse it.
      const key = await account.approvalKey();
      if ('retryAfterMs' in key) {
        sendAnswer(res, dialect.refusal('no_token', 'no approval key from the broker now; ask again later', key.retryAfterMs));
        return;
      }
      sendAnswer(res, { status: 200, body: { approval_key: deps.approvalKeys.keyOf(client, account.config.name) } });
    }
    deps.bus.emit('gateway.local_answer', { account: account.ref, client: client.name, endpoint });
  };

  function accountOfKey(appKey: string | undefined): GatewayAccount | undefined {
    const accounts = appKey === undefined ? [] : (deps.clients.byAppKey(appKey)?.accounts ?? []);
    return accounts.length === 1 ? deps.account(accounts[0]!) : undefined;
  }
}

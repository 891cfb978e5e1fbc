import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { GATEWAY_REFUSAL_REASONS, type GatewayRefusalReason } from '../core/events';
import { createCalls } from './calls';
import { dialectOf, type Dialect, type RefusalKind } from './dialects';
import { createLocalEndpoints } from './local-endpoints';
import { isBrokerPath, sendAnswer, targetOf } from './requests';
import type { GatewayDeps } from './types';

/**
 * The gateway's request handler: `/{account}/<the broker's own path>` (or the broker's path alone, routed by its
 * caller). Token endpoints, and anything else under /oauth2, are answered here (local-endpoints.ts) and never
 * reach the broker; every other request is a call (calls.ts). What no broker serves is refused in the broker's
 * words, and the connection of a caller the gateway does not know is closed with the answer.
 */
export function createGatewayHandler(deps: GatewayDeps): RequestListener {
  const refusalReasons: ReadonlySet<string> = new Set(GATEWAY_REFUSAL_REASONS);
  const refuse = (res: ServerResponse, dialect: Dialect, kind: RefusalKind, detail: string, req: IncomingMessage) => {
    if (refusalReasons.has(kind)) deps.bus.emit('gateway.refused', { reason: kind as GatewayRefusalReason, remoteAddress: req.socket.remoteAddress });
    sendAnswer(res, dialect.refusal(kind, detail), true);
  };
  const answerLocally = createLocalEndpoints(deps, refuse);
  const call = createCalls(deps, refuse);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = targetOf(req.url, (name) => deps.account(name) !== undefined);
    if (!target) return refuse(res, dialectOf('kis'), 'bad_request', 'a path no broker has (escapes or odd characters)', req);
    const named = target.accountName === undefined ? undefined : deps.account(target.accountName);
    if (target.tokenEndpoint) return answerLocally(req, res, named, target.path);
    if (!named && !isBrokerPath(target.path)) return refuse(res, dialectOf('kis'), 'unknown_account', `no account named in ${target.path.slice(0, 80)}`, req);
    return call(req, res, named, target.path, target.search);
  }

  return (req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendAnswer(res, { status: 500, body: { error: 'the gateway failed on this request' } }, true);
      else res.destroy();
    });
  };
}

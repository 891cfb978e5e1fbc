/**
 * Which handler answers which broker path, what app key each request is attributed to, and the success
 * sample its 'truncated' fault cuts in half. One table, so an endpoint cannot be mounted without its id.
 */
import type { BrokerContext } from './context';
import type { EndpointSpec } from './endpoint';
import { KIS_REVOKE_OK, kisApproval, kisBalance, kisOrder, kisPrice, kisRevoke, kisToken, kisTokenBody } from './kis';
import { kisBalanceBody, kisOrderBody, kisPriceBody } from './kis-answers';
import { KIWOOM_OK, kiwoomOrder, kiwoomOrderBody, kiwoomRevoke, kiwoomStockInfo, kiwoomStockInfoBody, kiwoomToken, kiwoomTokenBody } from './kiwoom';
import { bearerToken, bodyField, type BrokerRequest } from './request';
import { kstTimeOfDay, mintKiwoomToken } from './token-format';
import type { EndpointId } from './types';

// Paths exactly as the brokers publish them (docs/brokers.md).
const SIMULATOR_PATHS: Record<EndpointId, string> = {
  'kis.token': '/oauth2/tokenP',
  'kis.revoke': '/oauth2/revokeP',
  'kis.approval': '/oauth2/Approval',
  'kis.price': '/uapi/domestic-stock/v1/quotations/inquire-price',
  'kis.order': '/uapi/domestic-stock/v1/trading/order-cash',
  'kis.balance': '/uapi/domestic-stock/v1/trading/inquire-balance',
  'kiwoom.token': '/oauth2/token',
  'kiwoom.revoke': '/oauth2/revoke',
  'kiwoom.stkinfo': '/api/dostk/stkinfo',
  'kiwoom.order': '/api/dostk/ordr',
};

interface BrokerRoute {
  method: 'get' | 'post';
  path: string;
  spec: EndpointSpec;
}

export function brokerRoutes(ctx: BrokerContext): BrokerRoute[] {
  const fromBody = (req: BrokerRequest): string | undefined => bodyField(req.body, 'appkey');
  const fromHeader = (req: BrokerRequest): string | undefined => req.headers['appkey'];
  // Kiwoom business calls carry no app key; the token's owner stands in for it when the token is known.
  const fromKiwoomToken = (req: BrokerRequest): string | undefined => ctx.ledger.ownerOf(bearerToken(req.headers['authorization']), 'kiwoom');
  // Samples are shaped like a success but made of tokens nobody holds and order numbers never handed out.
  const lifetime = ctx.settings.tokenLifetimeMs;
  const kisSample = (): unknown => {
    const now = ctx.clock.now();
    return kisTokenBody(ctx.kisJwt.mint('PS-sample', now, now + lifetime), now + lifetime, lifetime);
  };

  const route = (method: 'get' | 'post', spec: EndpointSpec): BrokerRoute => ({
    method,
    path: SIMULATOR_PATHS[spec.id],
    spec,
  });
  return [
    route('post', { id: 'kis.token', appKeyOf: fromBody, handle: (r) => kisToken(ctx, r), sample: kisSample }),
    route('post', {
      id: 'kis.revoke',
      appKeyOf: fromBody,
      handle: (r) => kisRevoke(ctx, r),
      sample: () => KIS_REVOKE_OK,
    }),
    route('post', {
      id: 'kis.approval',
      appKeyOf: fromBody,
      handle: (r) => kisApproval(ctx, r),
      sample: () => ({ approval_key: '00000000-0000-0000-0000-000000000000' }),
    }),
    route('get', {
      id: 'kis.price',
      appKeyOf: fromHeader,
      handle: (r) => kisPrice(ctx, r),
      sample: () => kisPriceBody('005930'),
    }),
    route('post', {
      id: 'kis.order',
      appKeyOf: fromHeader,
      handle: (r) => kisOrder(ctx, r),
      sample: () => kisOrderBody('0'.repeat(10), kstTimeOfDay(ctx.clock.now())),
    }),
    route('get', {
      id: 'kis.balance',
      appKeyOf: fromHeader,
      handle: (r) => kisBalance(ctx, r),
      sample: kisBalanceBody,
    }),
    route('post', {
      id: 'kiwoom.token',
      appKeyOf: fromBody,
      handle: (r) => kiwoomToken(ctx, r),
      sample: () => kiwoomTokenBody(mintKiwoomToken(), ctx.clock.now() + lifetime),
    }),
    route('post', {
      id: 'kiwoom.revoke',
      appKeyOf: fromBody,
      handle: (r) => kiwoomRevoke(ctx, r),
      sample: () => KIWOOM_OK,
    }),
    route('post', {
      id: 'kiwoom.stkinfo',
      appKeyOf: fromKiwoomToken,
      handle: (r) => kiwoomStockInfo(ctx, r),
      sample: () => kiwoomStockInfoBody('005930'),
    }),
    route('post', {
      id: 'kiwoom.order',
      appKeyOf: fromKiwoomToken,
      handle: (r) => kiwoomOrder(ctx, r),
      sample: () => kiwoomOrderBody('0'.repeat(7), 'KRX', 'kt10000'),
    }),
  ];
}

import type { Dispatcher } from 'undici';
import type { AccountConfig } from '../config/types';
import { BudgetedBrokerHttp, UndiciBrokerHttp, createBrokerDispatcher, type BrokerCallGate, type BrokerHttp } from './broker-http';
import { KisProvider } from './kis';
import { KiwoomProvider } from './kiwoom';
import type { TokenProvider } from './types';

/**
 * The provider for an account, talking through `dispatcher` when a test injects one; with a `gate`, every request
 * it sends takes a slot of the account's per-second budget first.
 */
export function createProvider(account: AccountConfig, dispatcher?: Dispatcher, gate?: BrokerCallGate): TokenProvider {
  const direct = new UndiciBrokerHttp(dispatcher ?? createBrokerDispatcher(account.http), account.http.timeoutMs);
  const http: BrokerHttp = gate ? new BudgetedBrokerHttp(direct, gate, account.http.timeoutMs) : direct;
  switch (account.provider) {
    case 'kis':
      return new KisProvider(account.env, account.baseUrl, http, account.renewal.maxLifetimeMs);
    case 'kiwoom':
      return new KiwoomProvider(account.env, account.baseUrl, http, account.renewal.maxLifetimeMs);
  }
}

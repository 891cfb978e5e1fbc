import type { Dispatcher } from 'undici';
import type { AccountConfig } from '../config/types';
import { UndiciBrokerHttp, createBrokerDispatcher } from './http';
import { KisProvider } from './kis';
import { KiwoomProvider } from './kiwoom';
import type { TokenProvider } from './types';

/** The provider for an account, talking through `dispatcher` when a test injects one. */
export function createProvider(account: AccountConfig, dispatcher?: Dispatcher): TokenProvider {
  const http = new UndiciBrokerHttp(dispatcher ?? createBrokerDispatcher(account.http), account.http.timeoutMs);
  switch (account.provider) {
    case 'kis':
      return new KisProvider(account.env, account.baseUrl, http, account.renewal.maxLifetimeMs);
    case 'kiwoom':
      return new KiwoomProvider(account.env, account.baseUrl, http, account.renewal.maxLifetimeMs);
  }
}

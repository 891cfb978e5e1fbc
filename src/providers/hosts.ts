import type { Env, Provider } from '../config/types';

/** Default API hosts, from the brokers' own documents (docs/brokers.md#kis-hosts, #kiwoom-hosts). */
export const DEFAULT_BASE_URLS: Record<Provider, Record<Env, string>> = {
  kis: {
    real: 'https://openapi.koreainvestment.com:9443',
    mock: 'https://openapivts.koreainvestment.com:29443',
  },
  kiwoom: {
    real: 'https://api.kiwoom.com',
    mock: 'https://mockapi.kiwoom.com',
  },
};

import type { Env, Provider } from './types';

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

const BROKER_NAMES: Record<Provider, string> = { kis: 'KIS', kiwoom: 'Kiwoom' };

/**
 * The broker whose own servers `url` points at (real or mock: both enforce the broker's limits), or undefined for
 * anything else (the simulator, a proxy, a test server). Any host under a broker's domain counts, so that a new
 * or differently spelt host of the broker is not mistaken for a proxy.
 */
export function brokerHostOf(url: string): { broker: string; host: string } | undefined {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase().replace(/\.$/, '');
  } catch {
    return undefined;
  }
  for (const provider of Object.keys(DEFAULT_BASE_URLS) as Provider[]) {
    for (const known of Object.values(DEFAULT_BASE_URLS[provider])) {
      const domain = new URL(known).hostname.split('.').slice(-2).join('.');
      if (host === domain || host.endsWith(`.${domain}`)) return { broker: BROKER_NAMES[provider], host };
    }
  }
  return undefined;
}

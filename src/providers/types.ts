import type { Env, Provider } from '../config/types';
import type { ProofResult } from '../core/errors';

export interface Credentials {
  appKey: string;
  appSecret: string;
}

/** A token as the broker handed it out, with its times turned into absolute instants. */
export interface IssuedToken {
  accessToken: string;
  tokenType: string;
  /** Epoch ms; from the broker's KST wall-clock expiry, never from the host's zone. */
  expiresAt: number;
  /** Epoch ms; the broker's own issuance time where it says (JWT iat), else when the answer arrived. */
  issuedAt: number;
  /** The broker's answer as received, for the `raw` JSON sink layout. */
  raw: Record<string, unknown>;
  /** The broker's expiry was beyond the longest plausible lifetime and was cut down to it. */
  expiryClamped: boolean;
}

export type ProofOutcome =
  | { result: Extract<ProofResult, 'ok'> }
  | { result: Extract<ProofResult, 'rejected'>; brokerCode: string; message: string }
  | { result: Extract<ProofResult, 'error'>; message: string };

/**
 * Everything the sidecar needs from a broker. A new broker (LS, a generic OAuth2 client-credentials
 * endpoint) is one new file implementing this.
 */
export interface TokenProvider {
  readonly provider: Provider;
  readonly env: Env;
  /**
   * Throws BrokerError. `timeoutMs` cuts the request sooner than the client's own timeout: the caller's record
   * of when the request may have reached the broker holds only if the request cannot outlive it.
   */
  issue(credentials: Credentials, receivedAt: () => number, timeoutMs?: number): Promise<IssuedToken>;
  /** Throws BrokerError. */
  revoke(credentials: Credentials, accessToken: string): Promise<void>;
  /** Never throws: a failure to prove is an outcome, not an exception. */
  prove(credentials: Credentials, accessToken: string): Promise<ProofOutcome>;
  /** KIS WebSocket approval key; throws BrokerError. */
  issueApprovalKey?(credentials: Credentials): Promise<string>;
}

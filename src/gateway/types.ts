import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import type { CallBudget } from '../budget/call-budget';
import type { AccountConfig, GatewayConfig } from '../config/types';
import type { AccountRef, EventBus } from '../core/events';
import type { ClientBook } from './clients';
import type { LocalApprovalKeys } from './local-approval-keys';
import type { LocalTokens } from './local-tokens';

/** What the gateway needs of an account's lifecycle (AccountLifecycle in production, a fake in unit tests). */
export interface GatewayAccount {
  config: AccountConfig;
  ref: AccountRef;
  token(): { accessToken: string; expiresAt: number } | undefined;
  /** A call was answered "token dead": the lifecycle proves it and re-issues within the rules. */
  tokenRefused(accessToken: string): Promise<void>;
  /** The current token's WebSocket approval key, fetched once per token; or how long until the next try may be made. */
  approvalKey(): Promise<{ key: string } | { retryAfterMs: number }>;
}

/** Everything the gateway's handler works with, handed to it by the wiring. */
export interface GatewayDeps {
  config: GatewayConfig;
  account(name: string): GatewayAccount | undefined;
  clients: ClientBook;
  tokens: LocalTokens;
  /** What `Approval` answers: the client's own key for the real-time endpoint, never the account's real one. */
  approvalKeys: LocalApprovalKeys;
  budget: CallBudget;
  dispatcher: Dispatcher;
  bus: EventBus;
  /** Wall clock, epoch ms: local tokens' times. */
  now(): number;
  /** The request on this socket is a client's: its connection is no longer among the first to evict. */
  authenticated(socket: Socket): void;
}

/**
 * The state both simulated brokers share, and the options resolved to their defaults once, at construction,
 * so a bad option fails there rather than on the first request.
 */
import type { Clock } from '../core/clock';
import type { ApprovalKeyBook } from './approval-keys';
import type { CredentialBook } from './credentials';
import type { TokenLedger } from './ledger';
import type { ApprovalSpacing, PerApiIdBuckets, PerSecondQuota } from './limits';
import type { OrderNumbers } from './orders';
import type { KisJwtMinter } from './token-format';
import type { SimulatedEnv, SimulatorOptions } from './types';

export interface SimulatorSettings {
  spacingMs: number;
  sameTokenWindowMs: number;
  tokenLifetimeMs: number;
  approvalSpacingMs: number;
  tokenErrorStatus: 200 | 500;
  sameDeadTokenAfterMaintenance: boolean;
  kiwoomSameToken: boolean;
  kisCallsPerSecond: Record<SimulatedEnv, number>;
  kiwoomCallsPerSecond: number;
  kiwoomCallBurst: number;
}

export interface BrokerContext {
  clock: Clock;
  settings: SimulatorSettings;
  credentials: CredentialBook;
  ledger: TokenLedger;
  approvals: ApprovalSpacing;
  /** The approval keys issued, which the WebSocket accepts (docs/brokers.md#kis-real-time-session). */
  approvalKeys: ApprovalKeyBook;
  /** KIS calls per app key per second: price and order calls draw on the one budget. */
  quota: PerSecondQuota;
  kiwoomCalls: PerApiIdBuckets;
  orderNumbers: OrderNumbers;
  kisJwt: KisJwtMinter;
}

const HOUR_MS = 3_600_000;

export function resolveSettings(options: SimulatorOptions): SimulatorSettings {
  const settings: SimulatorSettings = {
    spacingMs: options.spacingMs ?? 60_000,
    sameTokenWindowMs: options.sameTokenWindowMs ?? 6 * HOUR_MS,
    tokenLifetimeMs: options.tokenLifetimeMs ?? 24 * HOUR_MS,
    approvalSpacingMs: options.approvalSpacingMs ?? 1000,
    tokenErrorStatus: options.tokenErrorStatus ?? 500,
    sameDeadTokenAfterMaintenance: options.sameDeadTokenAfterMaintenance ?? false,
    kiwoomSameToken: options.kiwoomSameToken ?? false,
    // Defaults: KIS's notice of 2026-04-20 and the Kiwoom measure in docs/brokers.md#kiwoom-call-limits.
    kisCallsPerSecond: { real: options.kisCallsPerSecond?.real ?? 18, mock: options.kisCallsPerSecond?.mock ?? 1 },
    kiwoomCallsPerSecond: options.kiwoomCallsPerSecond ?? 1,
    kiwoomCallBurst: options.kiwoomCallBurst ?? 2,
  };
  for (const name of ['spacingMs', 'sameTokenWindowMs', 'approvalSpacingMs'] as const) {
    if (!Number.isFinite(settings[name]) || settings[name] < 0) {
      throw new RangeError(`simulator option ${name} must be a non-negative number, got ${settings[name]}`);
    }
  }
  // Below one second the JWT exp (whole seconds) could not lie after iat.
  if (!Number.isFinite(settings.tokenLifetimeMs) || settings.tokenLifetimeMs < 1000) {
    throw new RangeError(`simulator option tokenLifetimeMs must be at least 1000, got ${settings.tokenLifetimeMs}`);
  }
  if (settings.tokenErrorStatus !== 200 && settings.tokenErrorStatus !== 500) {
    const got = String(settings.tokenErrorStatus);
    throw new RangeError(`simulator option tokenErrorStatus must be 200 or 500, got ${got}`);
  }
  checkCallLimits(settings);
  return settings;
}

/**
 * The KIS quota counts whole calls in a window and the Kiwoom bucket holds whole calls, so both are positive
 * integers; the Kiwoom refill rate may be a fraction (0.5: one call every two seconds). Zero is refused: a broker
 * that refuses every call is a fault to inject, not a limit.
 */
function checkCallLimits(settings: SimulatorSettings): void {
  const positiveInteger = (value: number): boolean => Number.isInteger(value) && value > 0;
  for (const env of ['real', 'mock'] as const) {
    const value = settings.kisCallsPerSecond[env];
    if (!positiveInteger(value)) throw new RangeError(`simulator option kisCallsPerSecond.${env} must be a positive integer, got ${value}`);
  }
  if (!Number.isFinite(settings.kiwoomCallsPerSecond) || settings.kiwoomCallsPerSecond <= 0) {
    throw new RangeError(`simulator option kiwoomCallsPerSecond must be a positive number, got ${settings.kiwoomCallsPerSecond}`);
  }
  if (!positiveInteger(settings.kiwoomCallBurst)) {
    throw new RangeError(`simulator option kiwoomCallBurst must be a positive integer, got ${settings.kiwoomCallBurst}`);
  }
}

/**
 * The state both simulated brokers share, and the options resolved to their defaults once, at construction,
 * so a bad option fails there rather than on the first request.
 */
import type { Clock } from '../core/clock';
import type { CredentialBook } from './credentials';
import type { TokenLedger } from './ledger';
import type { ApprovalSpacing, PerSecondQuota } from './limits';
import type { KisJwtMinter } from './token-format';
import type { SimulatorOptions } from './types';

export interface SimulatorSettings {
  spacingMs: number;
  sameTokenWindowMs: number;
  tokenLifetimeMs: number;
  approvalSpacingMs: number;
  tokenErrorStatus: 200 | 500;
  sameDeadTokenAfterMaintenance: boolean;
  kiwoomSameToken: boolean;
}

export interface BrokerContext {
  clock: Clock;
  settings: SimulatorSettings;
  credentials: CredentialBook;
  ledger: TokenLedger;
  approvals: ApprovalSpacing;
  quota: PerSecondQuota;
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
  return settings;
}

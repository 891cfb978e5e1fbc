import type { RenewalFailureReason } from '../core/errors';
import type { RenewalPolicy } from '../config/types';

/**
 * How long to wait before the next issuance attempt after `failures` consecutive failures. The one owner of
 * retry timing; pure, so tests pin it exactly.
 *
 * - The first `attempts` tries are `initialDelay` apart (the first system: three tries, five minutes apart),
 *   then the delay doubles (by `multiplier`) up to `maxDelay`.
 * - After EGW00133 the broker's own window is what to wait out: the delay starts at the spacing instead.
 * - While no usable token exists the apps are already failing, so the delay stops growing at `initialDelay`.
 * - Jitter spreads replicas and accounts apart; no delay is ever shorter than the spacing.
 */
export function retryDelayMs(reason: RenewalFailureReason, failures: number, policy: RenewalPolicy, tokenUsable: boolean, random: () => number): number {
  const { retry, spacingMs } = policy;
  const k = Math.max(1, failures);
  let base: number;
  if (reason === 'rate_limited') {
    base = spacingMs * retry.multiplier ** (k - 1);
  } else if (k < retry.attempts) {
    base = retry.initialDelayMs;
  } else {
    base = retry.initialDelayMs * retry.multiplier ** (k - retry.attempts + 1);
  }
  const cap = tokenUsable ? retry.maxDelayMs : Math.max(retry.initialDelayMs, spacingMs);
  const capped = Math.min(base, cap);
  const jittered = capped * (1 + retry.jitter * (2 * random() - 1));
  return Math.max(Math.round(jittered), spacingMs);
}

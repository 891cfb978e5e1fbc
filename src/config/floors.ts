import { formatDuration } from '../core/duration';
import { brokerHostOf } from './hosts';
import type { AccountConfig } from './types';

/**
 * Floors that protect the app key: the lowest value a setting may have while the account talks to a broker's own
 * host. Without them a config error turns into a flood the broker punishes: `spacing: 0` with `retry.initialDelay:
 * 0` sent 555 token requests in 10 s during a failure, and `proof.interval: 0` 735 price calls in 10 s, 573 of
 * them answered EGW00201 from a per-second budget the bots share. The simulator, a proxy or a test server take
 * lower values (tests and the demo need seconds, not minutes).
 *
 * A value under its floor is refused, like every other config error, never silently raised: a setting the
 * sidecar does not keep is one the user believes in and does not have.
 */

const MINUTE = 60_000;

export type FloorKey = 'spacing' | 'retry.initialDelay' | 'proof.interval' | 'probe.interval';

const BROKER_FLOORS: Record<FloorKey, { floorMs: number; why: string }> = {
  // docs/brokers.md#kis-issuance-policy: at most one issuance a minute (README, and EGW00133's own text); Kiwoom's
  // limit is unknown and the KIS rules are applied to it, as everywhere else.
  spacing: { floorMs: MINUTE, why: 'the broker issues at most one token a minute and answers EGW00133 to more' },
  // The backoff never waits less than the spacing anyway; the floor makes the config say what will happen.
  'retry.initialDelay': { floorMs: MINUTE, why: "a retry sooner than the broker's one issuance a minute only meets EGW00133" },
  // docs/brokers.md#kis-call-limits: 18 calls a second real, 1 mock, per app key, shared with every bot. A proof
  // each minute costs 1,440 calls a day; more often finds nothing to act on, as a token found dead cannot be
  // replaced sooner than the spacing.
  'proof.interval': {
    floorMs: MINUTE,
    why: "each proof spends a call of the app key's per-second budget, shared with the bots (EGW00201), and a dead token cannot be replaced more often than once a minute anyway",
  },
  // A probe is meant for a local application; pointed at the broker it is one more caller on the bots' budget.
  'probe.interval': { floorMs: MINUTE, why: 'a probe is a request to the broker, whose per-second limits the bots share' },
};

interface FloorBreach {
  key: FloorKey;
  message: string;
}

/** Every setting of `account` under its floor, when its requests go to a broker's own host. */
export function brokerFloorBreaches(account: AccountConfig): FloorBreach[] {
  const breaches: FloorBreach[] = [];
  const check = (key: FloorKey, valueMs: number, urlKey: string, url: string, elsewhere: string) => {
    const broker = brokerHostOf(url);
    const { floorMs, why } = BROKER_FLOORS[key];
    if (!broker || valueMs >= floorMs) return;
    breaches.push({
      key,
      message: `must be at least ${formatDuration(floorMs)} because ${urlKey} is ${broker.broker}'s own host (${broker.host}): ${why}; a lower value needs ${elsewhere}`,
    });
  };
  const viaBaseUrl = 'a baseUrl elsewhere (the simulator, a proxy)';
  check('spacing', account.renewal.spacingMs, 'baseUrl', account.baseUrl, viaBaseUrl);
  check('retry.initialDelay', account.renewal.retry.initialDelayMs, 'baseUrl', account.baseUrl, viaBaseUrl);
  if (account.proof.enabled) check('proof.interval', account.proof.intervalMs, 'baseUrl', account.baseUrl, viaBaseUrl);
  if (account.probe) check('probe.interval', account.probe.intervalMs, 'probe.url', account.probe.url, 'a probe.url elsewhere');
  return breaches;
}

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { alertKey, evaluateAlerts, type ActiveAlert } from '../src/alerts/conditions';
import type { RealtimeSnapshot } from '../src/core/realtime-vocabulary';
import type { SlackConfig } from '../src/config/types';
import type { AccountView } from '../src/lifecycle/views';
import type { SinkStatus } from '../src/sinks/supervisor';
import type { StoreHealth } from '../src/store/state-store';
import { isUsable, tokenStatus } from '../src/lifecycle/policy';
import type { AccountState } from '../src/store/account-state';
import { HOUR, MINUTE, SECOND, T0, accountState, renewalPolicy, tokenRecord } from './unit-fixtures';

/**
 * evaluateAlerts as a table: which alerts hold for a given state, sink status, store health and time. Rules are
 * all on, with the defaults' numbers (3 failures, 30 s grace for files, 45 min expiring window, 60 s without a
 * token, 60 s store grace) unless a row turns one off.
 */

type Rules = SlackConfig['alerts'];
const rules: Rules = {
  renewalFailing: { enabled: true, threshold: 3 },
  sinkUnrepairable: { enabled: true, graceMs: 30 * SECOND },
  tokenExpiring: { enabled: true, windowMs: 45 * MINUTE },
  tokenInvalidated: { enabled: true },
  rateLimited: { enabled: true },
  credentialsRejected: { enabled: true },
  fileModeNotPrivate: { enabled: true, graceMs: 30 * SECOND },
  storeUnavailable: { enabled: true, graceMs: 60 * SECOND },
  noUsableToken: { enabled: true, graceMs: 60 * SECOND },
  realtimeSessionDown: { enabled: true, graceMs: 60 * SECOND },
  realtimeRegistrationsFull: { enabled: true, graceMs: 5 * MINUTE },
};
const off = <K extends keyof Rules>(kind: K): Rules => ({ ...rules, [kind]: { ...rules[kind], enabled: false } });

const ref = { name: 'main', provider: 'kis' as const, env: 'real' as const };
const now = T0 + 2 * HOUR;

function view(state: Partial<AccountState>, sinks: SinkStatus[] = []): AccountView {
  const full = accountState(state);
  const status = tokenStatus(full, now, renewalPolicy());
  return {
    snapshot: { ref, state: full, status, usable: isUsable(status), plannedRenewalAt: null, nextAttemptAt: now + 5 * MINUTE, waitingFor: 'backoff' },
    sinks,
    ready: true,
  };
}

function sink(overrides: Partial<SinkStatus>): SinkStatus {
  return {
    name: 'kis',
    format: 'kis-auth',
    path: '/shared/KIS/config/KIS20261120',
    files: [],
    present: true,
    healthy: false,
    mode: 0o600,
    expectedMode: 0o600,
    lastWriteAt: null,
    lastError: null,
    consecutiveFailures: 0,
    unhealthySince: now - MINUTE,
    stuckSince: null,
    ...overrides,
  };
}

const fresh = tokenRecord({ issuedAt: T0, expiresAt: T0 + 24 * HOUR });
const failure = { at: now - MINUTE, reason: 'server_error' as const, message: 'KIS tokenP: HTTP 500' };
const summary = (alerts: ActiveAlert[]) => alerts.map((a) => [a.key, a.severity, a.facts]);

describe('evaluateAlerts', () => {
  const rows: Array<[string, { views: AccountView[]; rules?: Rules; store?: StoreHealth; unusableSince?: Record<string, number> }, unknown[]]> = [
    ['a valid token and healthy files: no alert', { views: [view({ token: fresh })] }, []],
    ['no accounts, store up: no alert', { views: [], store: { up: true, downSince: null, message: null } }, []],
    [
      'the shared store down longer than its grace',
      { views: [], store: { up: false, downSince: now - 61 * SECOND, message: 'ECONNREFUSED' } },
      [['store_unavailable', 'warning', { since: now - 61 * SECOND, message: 'ECONNREFUSED' }]],
    ],
    [
      'the shared store down exactly its grace: alerts',
      { views: [], store: { up: false, downSince: now - 60 * SECOND, message: null } },
      [['store_unavailable', 'warning', { since: now - 60 * SECOND, message: null }]],
    ],
    ['the shared store down shorter than its grace: no alert', { views: [], store: { up: false, downSince: now - 59 * SECOND, message: 'x' } }, []],
    ['the shared store down, rule off: no alert', { views: [], rules: off('storeUnavailable'), store: { up: false, downSince: now - HOUR, message: 'x' } }, []],
    [
      'three failures with a usable token: renewal_failing, warning',
      { views: [view({ token: fresh, consecutiveFailures: 3, lastFailure: failure })] },
      [['renewal_failing:main', 'warning', { failures: 3, reason: 'server_error', message: 'KIS tokenP: HTTP 500' }]],
    ],
    ['two failures: below the threshold', { views: [view({ token: fresh, consecutiveFailures: 2, lastFailure: failure })] }, []],
    [
      'three failures and no usable token (inside its grace): renewal_failing, critical',
      { views: [view({ consecutiveFailures: 3, lastFailure: failure })], unusableSince: { main: now - 30 * SECOND } },
      [['renewal_failing:main', 'critical', { failures: 3, reason: 'server_error', message: 'KIS tokenP: HTTP 500' }]],
    ],
    [
      'credentials rejected: that alert, and not renewal_failing on top',
      {
        views: [
          view({
            token: fresh,
            consecutiveFailures: 5,
            lastFailure: { ...failure, reason: 'auth_rejected' },
            authBlock: { at: now, credentialsId: 'c', message: 'EGW00105 유효하지 않은 AppSecret입니다.' },
          }),
        ],
      },
      [['credentials_rejected:main', 'critical', { message: 'EGW00105 유효하지 않은 AppSecret입니다.' }]],
    ],
    [
      'the last attempt met the rate limit: rate_limited',
      {
        views: [
          view({
            token: fresh,
            consecutiveFailures: 1,
            lastFailure: { ...failure, reason: 'rate_limited', message: 'EGW00133' },
            lastAttempt: { at: now - MINUTE, outcome: 'rate_limited', endedAt: now - MINUTE },
          }),
        ],
      },
      [['rate_limited:main', 'warning', { failures: 1, message: 'EGW00133' }]],
    ],
    [
      'a rate-limited attempt followed by a success: no alert',
      { views: [view({ token: fresh, consecutiveFailures: 0, lastAttempt: { at: now - MINUTE, outcome: 'rate_limited', endedAt: now - MINUTE } })] },
      [],
    ],
    [
      'a token the broker refused: token_invalidated, and no expiring alert although it is near expiry',
      {
        views: [
          view({
            token: tokenRecord({ expiresAt: now + 10 * MINUTE }),
            invalidated: { at: now, brokerCode: 'EGW00121', message: '유효하지 않은 token 입니다' },
          }),
        ],
        rules: off('noUsableToken'),
      },
      [['token_invalidated:main', 'warning', { brokerCode: 'EGW00121', message: '유효하지 않은 token 입니다' }]],
    ],
    [
      'no usable token for the whole grace: no_usable_token',
      { views: [view({ lastFailure: failure })], unusableSince: { main: now - 60 * SECOND } },
      [
        [
          'no_usable_token:main',
          'critical',
          { status: 'missing', since: now - 60 * SECOND, reason: 'server_error', message: 'KIS tokenP: HTTP 500', nextAttemptAt: now + 5 * MINUTE },
        ],
      ],
    ],
    ['no usable token for less than the grace: no alert yet', { views: [view({})], unusableSince: { main: now - 59 * SECOND } }, []],
    ['no usable token but never recorded as unusable: no alert', { views: [view({})] }, []],
    [
      '44 min left: token_expiring (not expired)',
      { views: [view({ token: tokenRecord({ expiresAt: now + 44 * MINUTE }) })] },
      [['token_expiring:main', 'critical', { expired: 0, reason: null }]],
    ],
    ['exactly 45 min left: no alert', { views: [view({ token: tokenRecord({ expiresAt: now + 45 * MINUTE }) })] }, []],
    [
      'expired, unusable long enough: said by no_usable_token alone',
      { views: [view({ token: tokenRecord({ expiresAt: now - MINUTE }), lastFailure: failure })], unusableSince: { main: now - 2 * MINUTE } },
      [
        [
          'no_usable_token:main',
          'critical',
          { status: 'expired', since: now - 2 * MINUTE, reason: 'server_error', message: 'KIS tokenP: HTTP 500', nextAttemptAt: now + 5 * MINUTE },
        ],
      ],
    ],
    [
      'expired, unusable for less than the grace: token_expiring says expired',
      { views: [view({ token: tokenRecord({ expiresAt: now - MINUTE }), lastFailure: failure })], unusableSince: { main: now - 30 * SECOND } },
      [['token_expiring:main', 'critical', { expired: 1, reason: 'server_error' }]],
    ],
    [
      'expired with no_usable_token off: token_expiring says expired',
      { views: [view({ token: tokenRecord({ expiresAt: now - MINUTE }) })], rules: off('noUsableToken'), unusableSince: { main: now - HOUR } },
      [['token_expiring:main', 'critical', { expired: 1, reason: null }]],
    ],
    [
      'a sink file missing past the grace: sink_unrepairable',
      { views: [view({ token: fresh }, [sink({ present: false, mode: null, unhealthySince: now - 30 * SECOND })])] },
      [
        [
          'sink_unrepairable:main:kis',
          'critical',
          { path: '/shared/KIS/config/KIS20261120', mode: null, expectedMode: '0600', reason: 'missing', message: null, since: now - 30 * SECOND },
        ],
      ],
    ],
    [
      'a sink that keeps failing to write: its last error is the reason',
      {
        views: [
          view({ token: fresh }, [
            sink({ lastError: { reason: 'read_only', message: 'EROFS: read-only file system', at: now }, unhealthySince: now - MINUTE }),
          ]),
        ],
      },
      [
        [
          'sink_unrepairable:main:kis',
          'critical',
          {
            path: '/shared/KIS/config/KIS20261120',
            mode: '0600',
            expectedMode: '0600',
            reason: 'read_only',
            message: 'EROFS: read-only file system',
            since: now - MINUTE,
          },
        ],
      ],
    ],
    [
      'a present sink file with the wrong content and no error: reason content',
      { views: [view({ token: fresh }, [sink({})])] },
      [
        [
          'sink_unrepairable:main:kis',
          'critical',
          { path: '/shared/KIS/config/KIS20261120', mode: '0600', expectedMode: '0600', reason: 'content', message: null, since: now - MINUTE },
        ],
      ],
    ],
    ['a broken sink inside its grace: no alert', { views: [view({ token: fresh }, [sink({ unhealthySince: now - 29 * SECOND })])] }, []],
    ['a healthy sink: no alert', { views: [view({ token: fresh }, [sink({ healthy: true, unhealthySince: null })])] }, []],
    ['an unhealthy sink with no instant (before any token): no alert', { views: [view({}, [sink({ unhealthySince: null })])] }, []],
    [
      'a file readable by others past the grace: file_mode_not_private, not sink_unrepairable',
      { views: [view({ token: fresh }, [sink({ mode: 0o644 })])] },
      [
        [
          'file_mode_not_private:main:kis',
          'warning',
          { path: '/shared/KIS/config/KIS20261120', mode: '0644', expectedMode: '0600', reason: 'content', message: null, since: now - MINUTE },
        ],
      ],
    ],
    [
      'a wrong mode with its rule off: nothing (it is not called unrepairable)',
      { views: [view({ token: fresh }, [sink({ mode: 0o644 })])], rules: off('fileModeNotPrivate') },
      [],
    ],
  ];
  for (const [what, input, expected] of rows) {
    test(what, () => {
      assert.deepEqual(summary(evaluateAlerts(input.views, now, input.rules ?? rules, input.store, input.unusableSince)), expected);
    });
  }

  test('an alert in full: account, sink, expiry and key', () => {
    const [alert, ...rest] = evaluateAlerts([view({ token: fresh }, [sink({ present: false, mode: null })])], now, rules);
    assert.deepEqual(rest, []);
    assert.deepEqual(alert, {
      key: 'sink_unrepairable:main:kis',
      kind: 'sink_unrepairable',
      severity: 'critical',
      account: ref,
      sink: 'kis',
      facts: { path: '/shared/KIS/config/KIS20261120', mode: null, expectedMode: '0600', reason: 'missing', message: null, since: now - MINUTE },
      expiresAt: T0 + 24 * HOUR,
    });
  });

  test('the store alert comes first and belongs to no account; accounts follow in order', () => {
    const second = {
      ...view({ consecutiveFailures: 3, lastFailure: failure }),
      snapshot: { ...view({ consecutiveFailures: 3, lastFailure: failure }).snapshot, ref: { ...ref, name: 'second' } },
    };
    const alerts = evaluateAlerts([view({ token: tokenRecord({ expiresAt: now + MINUTE }) }), second], now, rules, {
      up: false,
      downSince: now - HOUR,
      message: 'down',
    });
    assert.deepEqual(
      alerts.map((a) => [a.key, a.account?.name]),
      [
        ['store_unavailable', undefined],
        ['token_expiring:main', 'main'],
        ['renewal_failing:second', 'second'],
      ],
    );
  });

  test('real-time sessions: down past its grace with registrations waiting, full past its grace; after the accounts', () => {
    const session = (overrides: Partial<RealtimeSnapshot>): RealtimeSnapshot => ({
      account: ref,
      state: 'open',
      registrations: 3,
      limit: 41,
      clients: 2,
      queueBytes: {},
      lastFrameAt: now,
      downSince: null,
      fullSince: null,
      lastEnd: null,
      framesIn: 0,
      framesOut: 0,
      ...overrides,
    });
    const evaluate = (sessions: RealtimeSnapshot[], r: Rules = rules) =>
      evaluateAlerts([view({ consecutiveFailures: 3, lastFailure: failure })], now, r, undefined, {}, sessions).map((a) => [a.key, a.severity, a.facts]);
    const down = session({ state: 'down', downSince: now - 61 * SECOND, lastEnd: 'key_in_use' });
    assert.deepEqual(evaluate([down]), [
      ['renewal_failing:main', 'critical', { failures: 3, reason: 'server_error', message: 'KIS tokenP: HTTP 500' }],
      ['realtime_session_down:main', 'critical', { since: now - 61 * SECOND, state: 'down', reason: 'key_in_use', registrations: 3 }],
    ]);
    assert.deepEqual(evaluate([session({ state: 'down', downSince: now - 59 * SECOND })]).length, 1, 'inside its grace');
    assert.deepEqual(evaluate([down], off('realtimeSessionDown')).length, 1, 'its rule off');
    const full = session({ registrations: 41, fullSince: now - 5 * MINUTE });
    assert.deepEqual(evaluate([full])[1], ['realtime_registrations_full:main', 'warning', { since: now - 5 * MINUTE, registrations: 41, limit: 41 }]);
    assert.deepEqual(evaluate([session({ registrations: 41, fullSince: now - MINUTE })]).length, 1, 'full for a minute: a client took its 41st');
  });

  test('alertKey: kind alone, with the account, with the account and the sink', () => {
    assert.deepEqual(
      [alertKey('store_unavailable', undefined), alertKey('token_expiring', 'main'), alertKey('sink_unrepairable', 'main', 'json')],
      ['store_unavailable', 'token_expiring:main', 'sink_unrepairable:main:json'],
    );
  });
});

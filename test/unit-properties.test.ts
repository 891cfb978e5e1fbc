import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BrokerError, RENEWAL_FAILURE_REASONS } from '../src/core/errors';
import { formatWallClock } from '../src/core/time';
import type { JsonLayout, SinkConfig } from '../src/config/types';
import { decide, spacingStartsAt } from '../src/lifecycle/policy';
import { retryDelayMs } from '../src/lifecycle/backoff';
import type { BrokerHttpResponse } from '../src/providers/broker-http';
import { parseKisTokenAnswer } from '../src/providers/kis';
import { parseKiwoomTokenAnswer } from '../src/providers/kiwoom';
import { MIN_USEFUL_LIFETIME_MS, brokerText, checkExpiry, checkTokenText } from '../src/providers/token-checks';
import { readSinkToken, renderSink, type TokenView } from '../src/sinks/formats';
import type { IssuedToken } from '../src/providers/types';
import { FILE_ACCESS, HOUR, MINUTE, SECOND, T0, accountState, kisClaims, kisJwt, renewalPolicy, tokenRecord } from './unit-fixtures';

/**
 * Properties of the parsers and the pure functions, over inputs a table would never list. fast-check shrinks a
 * failure to a small counterexample and prints its seed; `FC_SEED=<seed>` replays a run.
 */

const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);
const runs = (numRuns: number) => ({ numRuns, ...(seed === undefined ? {} : { seed }) });

const receivedAt = T0 + 2 * SECOND;
const DAY = 24 * HOUR;
const ALLOWANCE = 10 * MINUTE; // CLOCK_SKEW_ALLOWANCE_MS in token-checks.ts

/** Instants from a day before to two days after the answer: past, useful, and beyond the longest lifetime. */
const nearInstant = fc.integer({ min: receivedAt - DAY, max: receivedAt + 2 * DAY });
// Seconds whose milliseconds a Date can hold (|t| <= 8.64e15 ms); the property past that range is its own, below.
const anyNumber = fc.oneof(
  fc.integer(),
  fc.double({ min: -8e12, max: 8e12, noNaN: true }),
  nearInstant.map((ms) => Math.floor(ms / 1000)),
);

const jwtToken = fc
  .record(
    {
      iat: fc.oneof(
        anyNumber,
        nearInstant.map((ms) => Math.floor(ms / 1000)),
      ),
      exp: fc.oneof(
        anyNumber,
        nearInstant.map((ms) => Math.floor(ms / 1000)),
      ),
    },
    { requiredKeys: [] },
  )
  .map((claims) => kisJwt({ ...kisClaims(T0), iat: undefined, exp: undefined, ...claims }));
const kstWallClock = nearInstant.map((ms) => formatWallClock(ms));
const kstCompact = nearInstant.map((ms) => formatWallClock(ms).replace(/[-: ]/g, ''));
const status = fc.oneof(fc.constantFrom(200, 200, 200, 401, 403, 429, 500, 502), fc.integer({ min: 100, max: 599 }));

const kisBody = fc.record(
  {
    access_token: fc.oneof(jwtToken, fc.string({ minLength: 16 }), fc.jsonValue()),
    access_token_token_expired: fc.oneof(kstWallClock, fc.string(), fc.jsonValue()),
    token_type: fc.oneof(fc.constant('Bearer'), fc.string()),
    expires_in: fc.oneof(fc.constant(86400), fc.jsonValue()),
    error_code: fc.oneof(fc.constantFrom('EGW00133', 'EGW00103', 'EGW00105', 'EGW00123'), fc.string()),
    error_description: fc.string({ unit: 'binary' }),
  },
  { requiredKeys: [] },
);
const kiwoomBody = fc.record(
  {
    token: fc.oneof(fc.base64String({ minLength: 16, maxLength: 120 }), fc.string(), fc.jsonValue()),
    expires_dt: fc.oneof(kstCompact, fc.string(), fc.jsonValue()),
    token_type: fc.oneof(fc.constant('bearer'), fc.string()),
    return_code: fc.oneof(fc.constant(0), fc.integer({ min: -1, max: 9 }), fc.jsonValue()),
    return_msg: fc.oneof(
      fc.constantFrom('[8005:Token이 유효하지 않습니다]', '[1700:허용된 요청 개수를 초과하였습니다]', '[8001:x]'),
      fc.string({ unit: 'binary' }),
    ),
  },
  { requiredKeys: [] },
);
const response = (body: fc.Arbitrary<unknown>): fc.Arbitrary<BrokerHttpResponse> =>
  fc.record({ status, json: fc.oneof(body, fc.jsonValue(), fc.constant(undefined)) }).map(({ status: code, json }) => ({ status: code, json, text: '' }));

const BROKER_REASONS = new Set(['bad_response', 'rate_limited', 'auth_rejected', 'server_error']);

/** What every token a parser returns must be: a plausible token, alive for at least a minute, within the lifetime cap. */
function assertTrustworthy(issued: IssuedToken, maxLifetime: number): void {
  assert.equal(checkTokenText(issued.accessToken, 'property'), issued.accessToken);
  assert.ok(issued.issuedAt <= receivedAt + 5 * MINUTE, `issuedAt ${issued.issuedAt} is in the future`);
  assert.ok(issued.expiresAt <= Math.min(issued.issuedAt, receivedAt) + maxLifetime + ALLOWANCE, `expiresAt ${issued.expiresAt} beyond maxLifetime`);
  if (issued.expiryClamped) assert.equal(issued.expiresAt, Math.min(issued.issuedAt, receivedAt) + maxLifetime);
}

function parsedOrBrokerError(parse: () => IssuedToken, maxLifetime: number): void {
  let issued: IssuedToken;
  try {
    issued = parse();
  } catch (error) {
    assert.ok(error instanceof BrokerError, `threw ${String(error)}, not a BrokerError`);
    assert.ok(BROKER_REASONS.has(error.code), `reason ${error.code}`);
    return;
  }
  assertTrustworthy(issued, maxLifetime);
}

describe('broker answers', () => {
  test('parseKisTokenAnswer: any answer gives a trustworthy token or a BrokerError with a broker reason', () => {
    fc.assert(
      fc.property(response(kisBody), (answer) => parsedOrBrokerError(() => parseKisTokenAnswer(answer, receivedAt, DAY), DAY)),
      runs(600),
    );
  });

  test('parseKisTokenAnswer: a JWT exp of any number gives a token or a BrokerError', () => {
    fc.assert(
      fc.property(fc.double(), (exp) => {
        const answer = { status: 200, text: '', json: { access_token: kisJwt({ ...kisClaims(T0), exp }), token_type: 'Bearer', expires_in: 86400 } };
        parsedOrBrokerError(() => parseKisTokenAnswer(answer, receivedAt, DAY), DAY);
      }),
      runs(200),
    );
  });

  test('parseKiwoomTokenAnswer: any answer gives a trustworthy token or a BrokerError with a broker reason', () => {
    fc.assert(
      fc.property(response(kiwoomBody), (answer) => parsedOrBrokerError(() => parseKiwoomTokenAnswer(answer, receivedAt, DAY), DAY)),
      runs(600),
    );
  });

  test('a token parsed is never already dead (alive a minute after it arrived)', () => {
    // A JWT iat from three days before the answer to its arrival (a same-token answer carries an old one), any expiry.
    fc.assert(
      fc.property(fc.integer({ min: receivedAt - 3 * DAY, max: receivedAt }), kstWallClock, (iat, expired) => {
        const answer = { status: 200, text: '', json: { access_token: kisJwt(kisClaims(iat)), access_token_token_expired: expired } };
        let issued: IssuedToken;
        try {
          issued = parseKisTokenAnswer(answer, receivedAt, DAY);
        } catch {
          return;
        }
        assert.ok(issued.expiresAt > receivedAt + MIN_USEFUL_LIFETIME_MS, `expiresAt ${issued.expiresAt - receivedAt} ms after arrival`);
      }),
      runs(300),
    );
  });

  test('error messages built from broker answers are one line and bounded', () => {
    const check = (parse: () => unknown) => {
      try {
        parse();
      } catch (error) {
        const message = (error as Error).message;
        assert.doesNotMatch(message, /[\n\r]/);
        assert.ok(message.length <= 400, `${message.length} characters`);
      }
    };
    // Whatever text stands where a date should: ASCII with its control characters, up to 600 of them.
    const text = fc.string({ unit: 'binary-ascii', maxLength: 600 });
    fc.assert(
      fc.property(response(kisBody), response(kiwoomBody), text, text, (kis, kiwoom, kisDate, kiwoomDate) => {
        check(() => parseKisTokenAnswer(kis, receivedAt, DAY));
        check(() => parseKiwoomTokenAnswer(kiwoom, receivedAt, DAY));
        check(() =>
          parseKisTokenAnswer({ status: 200, text: '', json: { access_token: kisJwt(kisClaims(T0)), access_token_token_expired: kisDate } }, receivedAt, DAY),
        );
        check(() =>
          parseKiwoomTokenAnswer(
            { status: 200, text: '', json: { token: 'opaque-token-0123456789', return_code: 0, expires_dt: kiwoomDate } },
            receivedAt,
            DAY,
          ),
        );
      }),
      runs(400),
    );
  });
});

describe('checks', () => {
  test('checkExpiry never returns an expiry beyond min(issuedAt, receivedAt) + maxLifetime + the allowance', () => {
    fc.assert(
      fc.property(
        nearInstant,
        fc.integer({ min: -2 * DAY, max: 10 * MINUTE }),
        fc.integer({ min: MINUTE, max: 7 * DAY }),
        (expiresAt, issuedOffset, maxLifetime) => {
          const issuedAt = receivedAt + issuedOffset;
          let result: { expiresAt: number; clamped: boolean };
          try {
            result = checkExpiry(expiresAt, issuedAt, receivedAt, maxLifetime, 'p');
          } catch (error) {
            assert.ok(error instanceof BrokerError && error.code === 'bad_response');
            const cut = Math.min(issuedAt, receivedAt) + maxLifetime;
            assert.ok(
              expiresAt <= receivedAt + MIN_USEFUL_LIFETIME_MS || cut <= receivedAt + MIN_USEFUL_LIFETIME_MS,
              'refused only when already past, as stated or once cut',
            );
            return;
          }
          const base = Math.min(issuedAt, receivedAt);
          assert.ok(result.expiresAt <= base + maxLifetime + ALLOWANCE);
          assert.equal(result.expiresAt, result.clamped ? base + maxLifetime : expiresAt);
        },
      ),
      runs(1000),
    );
  });

  test('checkExpiry never returns an expiry it would itself call already past', () => {
    fc.assert(
      fc.property(nearInstant, fc.integer({ min: -2 * DAY, max: 10 * MINUTE }), (expiresAt, issuedOffset) => {
        try {
          const result = checkExpiry(expiresAt, receivedAt + issuedOffset, receivedAt, DAY, 'p');
          assert.ok(result.expiresAt > receivedAt + MIN_USEFUL_LIFETIME_MS);
        } catch (error) {
          if (!(error instanceof BrokerError)) throw error;
        }
      }),
      runs(1000),
    );
  });

  // Any code point, with line breaks and control characters far more often than chance would bring them.
  const brokerWords = fc.string({
    unit: fc.oneof(fc.constantFrom('\n', '\r', '\t', '\x00', '\x7f', '\u0085', '\u2028', '\u2029'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })),
    maxLength: 600,
  });

  test('brokerText: no control character, at most max characters plus the length note', () => {
    fc.assert(
      fc.property(brokerWords, fc.integer({ min: 1, max: 300 }), (value, max) => {
        const text = brokerText(value, max)!;
        // eslint-disable-next-line no-control-regex
        assert.doesNotMatch(text, /[\x00-\x1f\x7f]/);
        assert.ok(text.length <= max + `… (${value.length} characters)`.length, `${text.length} > ${max}`);
        if (text.length > max) assert.match(text, /… \(\d+ characters\)$/);
      }),
      runs(1000),
    );
  });

  test('brokerText: one line also for Unicode line separators', () => {
    fc.assert(
      fc.property(brokerWords, (value) => {
        assert.doesNotMatch(brokerText(value)!, /[\u0085\u2028\u2029]/);
      }),
      runs(1000),
    );
  });
});

describe('sink files', () => {
  // Realistic tokens: KIS JWTs for every format; base64url opaque tokens (Kiwoom) for the JSON formats. A token
  // YAML would read as something else (a number, an alias) cannot come from either broker.
  const kisToken = fc.integer({ min: T0 - 7 * DAY, max: T0 + 365 * DAY }).map((issued) => kisJwt(kisClaims(issued)));
  const kiwoomToken = fc
    .base64String({ minLength: 16, maxLength: 120 })
    .map((text) => text.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''))
    .filter((t) => t.length >= 16);
  const instant = fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2099, 11, 31) });
  const view = (tokens: fc.Arbitrary<string>) =>
    fc
      .record({ accessToken: tokens, issuedAt: instant, lifetime: fc.integer({ min: MINUTE, max: 2 * DAY }) })
      .map(({ accessToken, issuedAt, lifetime }): TokenView => ({
        accessToken,
        tokenType: 'Bearer',
        issuedAt,
        expiresAt: issuedAt + lifetime,
        raw: {
          access_token: accessToken,
          access_token_token_expired: formatWallClock(issuedAt + lifetime),
          token_type: 'Bearer',
          expires_in: Math.round(lifetime / 1000),
        },
        approvalKey: undefined,
      }));
  const common = { access: FILE_ACCESS, notify: undefined };
  const json = (layout: JsonLayout, timeZone: string): SinkConfig => ({
    ...common,
    name: `${layout}-${timeZone}`,
    format: 'json',
    path: '/t/x.json',
    layout,
    timeZone,
  });
  // Naive wall clocks (kis-auth, kis-client) only in zones without daylight saving: an hour that happens twice has no
  // one reading, for the sidecar or the client.
  const naiveZones = ['Asia/Seoul', 'UTC'];
  const offsetZones = ['Asia/Seoul', 'UTC', 'America/New_York', 'Europe/London'];
  const sinks: Array<[SinkConfig, 'ms' | 's']> = [
    ...naiveZones.map((zone): [SinkConfig, 's'] => [
      { ...common, name: `kis-auth-${zone}`, format: 'kis-auth', dir: '/t', readerTimeZones: [zone], writeAheadMs: 0, validDateTimeZone: zone, keepDays: 1 },
      's',
    ]),
    ...naiveZones.map((zone): [SinkConfig, 'ms'] => [json('kis-client', zone), 'ms']),
    ...offsetZones.map((zone): [SinkConfig, 's'] => [json('overseas-cache', zone), 's']),
    ...offsetZones.map((zone): [SinkConfig, 's'] => [json('kiwoom-token', zone), 's']),
    [json('raw', 'UTC'), 's'],
    [{ ...common, name: 'python-kis', format: 'python-kis', dir: '/t', path: '/t/token.json' }, 's'],
  ];
  const toSecond = (ms: number) => Math.floor(ms / 1000) * 1000;

  test('readSinkToken(renderSink(view)) gives back the token and its expiry, in every format', () => {
    fc.assert(
      fc.property(view(kisToken), (tokenView) => {
        for (const [sink, precision] of sinks) {
          const found = readSinkToken(sink, renderSink(sink, tokenView)!);
          assert.deepEqual(
            found,
            { accessToken: tokenView.accessToken, expiresAt: precision === 'ms' ? tokenView.expiresAt : toSecond(tokenView.expiresAt) },
            sink.name,
          );
        }
      }),
      runs(300),
    );
  });

  test('an opaque (Kiwoom) token round-trips through the JSON formats', () => {
    fc.assert(
      fc.property(view(kiwoomToken), (tokenView) => {
        for (const [sink] of sinks.filter(([s]) => s.format === 'json')) {
          assert.equal(readSinkToken(sink, renderSink(sink, tokenView)!)?.accessToken, tokenView.accessToken, sink.name);
        }
      }),
      runs(300),
    );
  });
});

describe('retries and spacing', () => {
  const policy = renewalPolicy();
  test('retryDelayMs: never shorter than the spacing, never longer than the jittered cap', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...RENEWAL_FAILURE_REASONS),
        fc.integer({ min: 0, max: 200 }),
        fc.boolean(),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (reason, failures, usable, draw) => {
          const delay = retryDelayMs(reason, failures, policy, usable, () => draw);
          const cap = usable ? policy.retry.maxDelayMs : Math.max(policy.retry.initialDelayMs, policy.spacingMs);
          assert.ok(delay >= policy.spacingMs, `${delay} < spacing`);
          assert.ok(delay <= Math.round(cap * (1 + policy.retry.jitter)), `${delay} > cap`);
          assert.equal(Number.isInteger(delay), true);
        },
      ),
      runs(1000),
    );
  });

  test("decide never issues within the spacing of the last request, forced or not, whatever the wall clock did since this process's own", () => {
    const attempt = fc.option(
      fc.record(
        {
          at: fc.integer({ min: T0 - HOUR, max: T0 + HOUR }),
          outcome: fc.constantFrom('pending', 'issued', 'same_token', 'rate_limited', 'network'),
          endedAfter: fc.option(fc.integer({ min: 0, max: 20 * SECOND })),
        },
        { requiredKeys: ['at', 'outcome', 'endedAfter'] },
      ),
    );
    // This process's own request on the monotonic clock: sent at 0, ended (or not) after up to 20 s, `since` ago.
    const own = fc.option(fc.record({ endedAfter: fc.option(fc.integer({ min: 0, max: 20 * SECOND })), since: fc.integer({ min: 0, max: 3 * MINUTE }) }));
    fc.assert(
      fc.property(
        attempt,
        fc.integer({ min: T0 - HOUR, max: T0 + 30 * HOUR }),
        fc.boolean(),
        fc.option(fc.integer({ min: T0, max: T0 + 2 * DAY })),
        fc.option(fc.integer({ min: T0 - DAY, max: T0 + DAY })),
        own,
        (last, now, force, expiresAt, nextRetryAt, mine) => {
          const lastAttempt =
            last === null ? null : { at: last.at, outcome: last.outcome, ...(last.endedAfter === null ? {} : { endedAt: last.at + last.endedAfter }) };
          const state = accountState({ lastAttempt, nextRetryAt, token: expiresAt === null ? null : tokenRecord({ issuedAt: expiresAt - DAY, expiresAt }) });
          const ownAttempt = mine === null ? undefined : { sentAt: 0, endedAt: mine.endedAfter ?? undefined, now: mine.since };
          const decision = decide({ now, state, policy, credentialsId: 'c', force, requestTimeoutMs: 15 * SECOND, ownAttempt });
          const from = spacingStartsAt(lastAttempt, 15 * SECOND);
          if (decision.kind === 'issue' && from !== undefined) assert.ok(now >= from + policy.spacingMs, `issued ${from + policy.spacingMs - now} ms early`);
          if (decision.kind === 'issue' && ownAttempt) {
            const ownFrom = ownAttempt.endedAt ?? 15 * SECOND;
            assert.ok(ownAttempt.now >= ownFrom + policy.spacingMs, `issued ${ownFrom + policy.spacingMs - ownAttempt.now} ms early on the monotonic clock`);
          }
          if (decision.kind === 'wait') assert.ok(decision.until > now, 'a wait ends in the future');
        },
      ),
      runs(1000),
    );
  });
});

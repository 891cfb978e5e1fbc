import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load';
import { DURATION_RANGES, MAX_TIMER_MS } from '../src/config/ranges';
import { ConfigError } from '../src/core/errors';
import { CLI, tempDir } from './helpers';

/**
 * Issue 15 ("Hardening"), the config items: floors that protect the app key against the brokers' own hosts,
 * absurd values refused, errors that name the key and never the value, placeholders that cannot leave the
 * configured directory, and recursive YAML aliases reported as config errors.
 */

const KEY = 'PS' + 'k'.repeat(34); // 36 characters, as KIS issues
const SECRET = 's'.repeat(180);
const ENV = { KIS_KEY: KEY, KIS_SECRET: SECRET };
const SIMULATOR = 'http://127.0.0.1:9400';
/** Something a user could paste by mistake: shaped like a credential, easy to find in any output. */
const PASTED = 'PSsecretMARKERq7Zx9Lw2Vb';

function account(extra = '', provider = 'kis'): string {
  const lines = [
    'name: main',
    `provider: ${provider}`,
    provider === 'kis' ? 'appKey: ${KIS_KEY}' : 'appKey: kiwoomkey123456',
    provider === 'kis' ? 'appSecret: ${KIS_SECRET}' : 'appSecret: kiwoomsecret123456',
    extra.trim().replace(/\n/g, '\n    '),
    'sinks:',
    '  - { format: json, path: ./t.json }',
  ].filter(Boolean);
  return `accounts:\n  - ${lines.join('\n    ')}\n`;
}

function problemsOf(text: string, env: Record<string, string> = ENV): string[] {
  try {
    parseConfig(text, '/tmp/cfg/config.yaml', '/tmp/cfg', { env, hostTimeZone: 'UTC' });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.problems;
  }
  return [];
}

describe("hardening: floors that protect the app key apply against the brokers' own hosts only", () => {
  const floorCases: Array<[string, string, string]> = [
    [
      'issuance spacing',
      'renewal: { spacing: 0 }',
      "accounts[0].renewal.spacing: must be at least 1m because baseUrl is KIS's own host (openapi.koreainvestment.com): the broker issues at most one token a minute and answers EGW00133 to more; a lower value needs a baseUrl elsewhere (the simulator, a proxy)",
    ],
    [
      'first retry delay',
      'renewal: { retry: { initialDelay: 0 } }',
      "accounts[0].renewal.retry.initialDelay: must be at least 1m because baseUrl is KIS's own host (openapi.koreainvestment.com): a retry sooner than the broker's one issuance a minute only meets EGW00133; a lower value needs a baseUrl elsewhere (the simulator, a proxy)",
    ],
    [
      'proof interval',
      'proof: { interval: 5s }',
      "accounts[0].proof.interval: must be at least 1m because baseUrl is KIS's own host (openapi.koreainvestment.com): each proof spends a call of the app key's per-second budget, shared with the bots (EGW00201), and a dead token cannot be replaced more often than once a minute anyway; a lower value needs a baseUrl elsewhere (the simulator, a proxy)",
    ],
  ];
  for (const [what, extra, message] of floorCases) {
    test(`${what}: refused with the default (real) KIS host, accepted with the simulator`, () => {
      assert.deepEqual(problemsOf(account(extra)), [message]);
      assert.deepEqual(problemsOf(account(`${extra}\nbaseUrl: ${SIMULATOR}`)), []);
    });
  }

  test("the incident's settings (spacing 0, initialDelay 0, proof interval 0) against the broker: every key named", () => {
    const problems = problemsOf(account('renewal: { spacing: 0, retry: { initialDelay: 0 } }\nproof: { interval: 1s }'));
    assert.deepEqual(
      problems.map((p) => p.slice(0, p.indexOf(':'))),
      ['accounts[0].proof.interval', 'accounts[0].renewal.retry.initialDelay', 'accounts[0].renewal.spacing'],
    );
  });

  test("a value from `defaults:` is named where it was written; the mock host and Kiwoom's hosts count too", () => {
    assert.match(
      problemsOf(`defaults: { renewal: { spacing: 10s } }\n${account()}`).join('\n'),
      /^defaults\.renewal\.spacing: must be at least 1m because baseUrl is KIS's own host/,
    );
    assert.match(
      problemsOf(account('env: mock\nrenewal: { spacing: 10s }')).join('\n'),
      /^accounts\[0\]\.renewal\.spacing: must be at least 1m because baseUrl is KIS's own host \(openapivts\.koreainvestment\.com\)/,
    );
    assert.match(
      problemsOf(account('renewal: { spacing: 10s }', 'kiwoom')).join('\n'),
      /^accounts\[0\]\.renewal\.spacing: must be at least 1m because baseUrl is Kiwoom's own host \(api\.kiwoom\.com\)/,
    );
    assert.match(
      problemsOf(account('baseUrl: "https://API.Kiwoom.com/"\nrenewal: { spacing: 10s }', 'kiwoom')).join('\n'),
      /because baseUrl is Kiwoom's own host \(api\.kiwoom\.com\)/,
    );
  });

  test('probe interval: floored when the probe itself goes to a broker host, not otherwise', () => {
    assert.deepEqual(problemsOf(account('probe: { url: "https://openapi.koreainvestment.com:9443/", interval: 5s }')), [
      "accounts[0].probe.interval: must be at least 1m because probe.url is KIS's own host (openapi.koreainvestment.com): a probe is a request to the broker, whose per-second limits the bots share; a lower value needs a probe.url elsewhere",
    ]);
    assert.deepEqual(problemsOf(account('probe: { url: "http://127.0.0.1:8000/health", interval: 5s }')), []);
  });

  test('check-config says why, and exits 2; the same file with the simulator as baseUrl is valid', (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'config.yaml');
    writeFileSync(file, account('renewal: { spacing: 0, retry: { initialDelay: 0 } }'));
    const refused = spawnSync(process.execPath, [CLI, 'check-config', '--config', file], { encoding: 'utf8', env: { ...process.env, ...ENV } });
    assert.equal(refused.status, 2, refused.stderr);
    assert.match(
      refused.stderr,
      /accounts\[0\]\.renewal\.spacing: must be at least 1m because baseUrl is KIS's own host \(openapi\.koreainvestment\.com\): the broker issues at most one token a minute/,
    );
    assert.match(refused.stderr, /accounts\[0\]\.renewal\.retry\.initialDelay: must be at least 1m because baseUrl is KIS's own host/);
    assert.ok(!refused.stderr.includes(SECRET) && !refused.stderr.includes(KEY));
    writeFileSync(file, account(`renewal: { spacing: 0, retry: { initialDelay: 0 } }\nbaseUrl: ${SIMULATOR}`));
    const accepted = spawnSync(process.execPath, [CLI, 'check-config', '--config', file], { encoding: 'utf8', env: { ...process.env, ...ENV } });
    assert.equal(accepted.status, 0, accepted.stderr);
  });
});

describe("hardening: absurd values are refused, with the key's range", () => {
  const cases: Array<[string, string, string]> = [
    ['a spacing of 999999999 days', `renewal: { spacing: 999999999d }\nbaseUrl: ${SIMULATOR}`, 'accounts[0].renewal.spacing: must be at most 1h'],
    [
      'a spacing in seconds beyond any timer',
      `renewal: { spacing: 99999999999999999999 }\nbaseUrl: ${SIMULATOR}`,
      'accounts[0].renewal.spacing: must be at most 1h',
    ],
    ['a zero request timeout', 'http: { timeout: 0 }', 'accounts[0].http.timeout: must be at least 100ms'],
    ['a zero connect timeout', 'http: { connectTimeout: 0s }', 'accounts[0].http.connectTimeout: must be at least 100ms'],
    [
      'a proof interval of zero, even against the simulator',
      `proof: { interval: 0 }\nbaseUrl: ${SIMULATOR}`,
      'accounts[0].proof.interval: must be at least 1s',
    ],
    ['a probe interval of zero', 'probe: { url: "http://127.0.0.1:8000/health", interval: 0 }', 'accounts[0].probe.interval: must be at least 1s'],
    ['a retry delay longer than a token lives', 'renewal: { retry: { maxDelay: 30d } }', 'accounts[0].renewal.retry.maxDelay: must be at most 24h'],
    ['a max lifetime of zero', 'renewal: { maxLifetime: 0 }', 'accounts[0].renewal.maxLifetime: must be at least 1m'],
  ];
  for (const [what, extra, message] of cases) {
    test(what, () => assert.deepEqual(problemsOf(account(extra)), [message]));
  }

  test('top-level keys: a zero server request timeout, a Slack reminder every 100 years, a Redis lease of a year', () => {
    const top =
      'server: { requestTimeout: 0 }\nslack: { webhookUrl: "https://hooks.slack.com/services/x", repeatInterval: 36500d }\nstore: { type: redis, url: "redis://r:6379", lockTtl: 365d }\n';
    assert.deepEqual(problemsOf(top + account()), [
      'server.requestTimeout: must be at least 1s',
      'slack.repeatInterval: must be at most 168h',
      'store.lockTtl: must be at most 1h',
    ]);
  });

  /** Every duration key of the schema, each set inside a config that is otherwise valid (JSON is YAML too). */
  const DURATION_KEYS = [
    'accounts.0.renewal.renewBefore',
    'accounts.0.renewal.jitter',
    'accounts.0.renewal.spacing',
    'accounts.0.renewal.scheduleMinAge',
    'accounts.0.renewal.sameTokenWindow',
    'accounts.0.renewal.maxLifetime',
    'accounts.0.renewal.retry.initialDelay',
    'accounts.0.renewal.retry.maxDelay',
    'defaults.renewal.spacing',
    'defaults.proof.interval',
    'defaults.http.timeout',
    'accounts.0.proof.interval',
    'accounts.0.http.connectTimeout',
    'accounts.0.http.timeout',
    'accounts.0.probe.interval',
    'accounts.0.probe.timeout',
    'accounts.0.sinks.0.notify.timeout',
    'accounts.0.sinks.0.writeAhead',
    'server.requestTimeout',
    'slack.repeatInterval',
    'slack.evaluationInterval',
    'slack.timeout',
    'slack.retry.initialDelay',
    'slack.retry.maxDelay',
    'slack.alerts.sinkUnrepairable.grace',
    'slack.alerts.tokenExpiring.window',
    'slack.alerts.fileModeNotPrivate.grace',
    'slack.alerts.storeUnavailable.grace',
    'slack.alerts.noUsableToken.grace',
    'slack.alerts.realtimeSessionDown.grace',
    'slack.alerts.realtimeRegistrationsFull.grace',
    'store.lockTtl',
    'store.connectTimeout',
    'gateway.maxWait',
    'gateway.windowMargin',
    'realtime.idleClose',
    'realtime.registrationSpacing',
    'realtime.stallTimeout',
    'realtime.reconnect.initialDelay',
    'realtime.reconnect.maxDelay',
    'realtime.afterReplaced',
    'realtime.client.maxQueueDelay',
    'realtime.client.pingInterval',
  ];
  function configWith(path: string, value: unknown): string {
    const config: Record<string, any> = {
      slack: { webhookUrl: 'https://hooks.slack.com/services/x' },
      store: { type: 'redis', url: 'redis://r:6379' },
      accounts: [
        {
          name: 'main',
          provider: 'kis',
          appKey: KEY,
          appSecret: SECRET,
          baseUrl: SIMULATOR,
          probe: { url: 'http://127.0.0.1:8000/h' },
          sinks: [{ format: 'kis-auth', dir: './K', notify: { command: 'true' } }],
        },
      ],
    };
    const steps = path.split('.');
    let node = config;
    for (const step of steps.slice(0, -1)) node = node[step] ??= {};
    node[steps.at(-1)!] = value;
    return JSON.stringify(config);
  }
  test('every duration key refuses 999999999d (past any timer: setTimeout fires at once beyond 2^31-1 ms) with its maximum', () => {
    assert.deepEqual(problemsOf(configWith('accounts.0.name', 'main')), []);
    for (const key of DURATION_KEYS) {
      const problems = problemsOf(configWith(key, '999999999d'));
      const where = key.replace(/\.(\d+)/g, '[$1]');
      assert.equal(problems.length, 1, `${key}: ${JSON.stringify(problems)}`);
      assert.match(problems[0]!, new RegExp(`^${where.replace(/[[\].]/g, '\\$&')}: must be at most \\d+[hms]`), key);
    }
  });

  test('the ranges table: no maximum overflows a timer, every minimum is below its maximum', () => {
    for (const [key, { minMs, maxMs }] of Object.entries(DURATION_RANGES)) {
      assert.ok(maxMs <= MAX_TIMER_MS, `${key}: ${maxMs} ms would overflow setTimeout`);
      assert.ok(minMs >= 0 && minMs < maxMs, key);
    }
    const rangeKeyOf = (key: string) =>
      key
        .replace(/^(accounts\.0|defaults)\./, '')
        .replace(/^sinks\.0\.writeAhead$/, 'sink.writeAhead')
        .replace(/^sinks\.0\./, '');
    assert.deepEqual(new Set(DURATION_KEYS.map(rangeKeyOf)), new Set(Object.keys(DURATION_RANGES)), 'the test above tries every key of the table');
  });

  test('a file owner beyond any uid is refused', () => {
    assert.deepEqual(problemsOf(account().replace('path: ./t.json }', 'path: ./t.json, owner: 99999999999 }')), [
      'accounts[0].sinks[0].owner: must be at most 4294967294',
    ]);
  });
});

describe('hardening: a config error names the key, never the value', () => {
  /** The account with one key set to the pasted secret; each entry: the YAML, and the key the message must name. */
  const places: Array<[string, string]> = [
    [`log: { timeZone: "${PASTED}" }\n${account()}`, 'log.timeZone'],
    [account().replace('path: ./t.json }', `path: ./t.json, timeZone: "${PASTED}" }`), 'accounts[0].sinks[0].timeZone'],
    [
      account().replace('{ format: json, path: ./t.json }', `{ format: kis-auth, dir: ./K, readerTimeZones: ["${PASTED}"] }`),
      'accounts[0].sinks[0].readerTimeZones[0]',
    ],
    [
      account().replace('{ format: json, path: ./t.json }', `{ format: kis-auth, dir: ./K, validDateTimeZone: "${PASTED}" }`),
      'accounts[0].sinks[0].validDateTimeZone',
    ],
    [
      account().replace(
        '{ format: json, path: ./t.json }',
        `{ format: json, path: ./a.json, name: "${PASTED}" }\n      - { format: json, path: ./b.json, name: "${PASTED}" }`,
      ),
      'accounts[0].sinks[1].name',
    ],
    [account().replace('appSecret: ${KIS_SECRET}', `appSecretFile: "${PASTED}"`), 'accounts[0].appSecretFile'],
    [account().replace('appKey: ${KIS_KEY}', `appKey: "\${${PASTED}}"`), 'accounts[0].appKey'],
    [account().replace('provider: kis', `provider: "${PASTED}"`), 'accounts[0].provider'],
    [account(`env: "${PASTED}"`), 'accounts[0].env'],
    [account(`baseUrl: "${PASTED}"`), 'accounts[0].baseUrl'],
    [account(`renewal: { spacing: "${PASTED}" }`), 'accounts[0].renewal.spacing'],
    [account(`renewal: { schedule: "${PASTED}" }`), 'accounts[0].renewal.schedule'],
    [account().replace('path: ./t.json }', `path: ./t.json, layout: "${PASTED}" }`), 'accounts[0].sinks[0].layout'],
    [account().replace('path: ./t.json }', `path: ./t.json, mode: "${PASTED}" }`), 'accounts[0].sinks[0].mode'],
    [account().replace('format: json', `format: "${PASTED}"`), 'accounts[0].sinks[0].format'],
    [`log: { level: "${PASTED}" }\n${account()}`, 'log.level'],
    [`server: { port: "${PASTED}" }\n${account()}`, 'server.port'],
    [`slack: { webhookUrl: "${PASTED}" }\n${account()}`, 'slack.webhookUrl'],
    [`slack: { webhookUrl: "https://hooks.slack.com/services/x", language: "${PASTED}" }\n${account()}`, 'slack.language'],
    [`store: { type: redis, url: "${PASTED}" }\n${account()}`, 'store.url'],
    [`store: { type: "${PASTED}" }\n${account()}`, 'store.type'],
    [`store: { type: redis, url: "redis://r:6379", tls: { caFile: "${PASTED}" } }\n${account()}`, 'store.tls.caFile'],
  ];
  for (const [text, key] of places) {
    test(`${key}`, () => {
      const problems = problemsOf(text);
      assert.ok(
        problems.some((p) => p.startsWith(`${key}: `)),
        `no problem names ${key}: ${JSON.stringify(problems)}`,
      );
      for (const problem of problems) assert.ok(!problem.includes(PASTED.slice(0, 12)), `the value is printed back: ${problem}`);
    });
  }

  test('a time zone: the key and what was expected', () => {
    assert.deepEqual(problemsOf(`log: { timeZone: "${PASTED}" }\n${account()}`), ['log.timeZone: must be an IANA time zone such as Asia/Seoul']);
  });

  test('an environment variable with a conventional name is still named; one that is not is not printed', () => {
    assert.deepEqual(problemsOf(account().replace('${KIS_KEY}', '${KIS_APP_KEY_TYPO}')), [
      'accounts[0].appKey: environment variable KIS_APP_KEY_TYPO is not set',
    ]);
    assert.deepEqual(problemsOf(account().replace('${KIS_KEY}', `\${${PASTED}}`)), [
      'accounts[0].appKey: refers to an environment variable that is not set (its name is not printed: not in capitals like a variable name, it could be a pasted secret)',
    ]);
  });

  test('an unknown key is still named, with the nearest known one', () => {
    assert.deepEqual(problemsOf(`stateDirectory: ./x\n${account()}`), ['stateDirectory: unknown key; did you mean stateDir?']);
  });
});

describe('hardening: a path placeholder cannot lead out of its directory', () => {
  const kiwoom = (appKey: string, path: string) =>
    `accounts:\n  - name: kw\n    provider: kiwoom\n    appKey: '${appKey}'\n    appSecret: kiwoomsecret123456\n    sinks:\n      - { format: json, path: "${path}" }\n`;

  test('an app key with "../" in its first 10 characters is refused, naming the key and never the value', () => {
    const problems = problemsOf(kiwoom('../../../etc/cron', './tokens/{appKeyPrefix}.json'));
    assert.deepEqual(problems, [
      'accounts[0].sinks[0].path: {appKeyPrefix} would put characters other than letters, digits, "-" and "_" into the path (the app key\'s first 10 characters hold others), which could lead out of its directory; use another placeholder or a fixed name',
    ]);
  });

  test('any character outside [A-Za-z0-9_-] is refused, in dir templates too', (t) => {
    const dir = tempDir(t);
    for (const key of ['ab.cd.ef.gh', 'abc/def123', 'abc\\def123', 'abc%2e%2e/x']) {
      const problems = problemsOf(kiwoom(key, './t/{appKeyPrefix}.json'));
      assert.deepEqual(
        problems.map((p) => p.slice(0, p.indexOf(': '))),
        ['accounts[0].sinks[0].path'],
        key,
      );
      assert.ok(!problems[0]!.includes(key.slice(0, 6)), key);
    }
    const kis = account().replace('{ format: json, path: ./t.json }', `{ format: kis-auth, dir: "${dir}/KIS/{appKeyPrefix}" }`);
    assert.deepEqual(problemsOf(kis), []);
    const dotted = problemsOf(kis, { ...ENV, KIS_KEY: `../../../${'k'.repeat(27)}` });
    assert.deepEqual(
      dotted.map((p) => p.slice(0, p.indexOf(': '))),
      ['accounts[0].sinks[0].dir'],
    );
  });

  test('a safe key gives its prefix, inside the configured directory', () => {
    const config = parseConfig(kiwoom('Abc_def-12XYZ', './tokens/{appKeyPrefix}-{account}-{env}.json'), '/c/config.yaml', '/c', {
      env: {},
      hostTimeZone: 'UTC',
    });
    const sink = config.accounts[0]!.sinks[0]!;
    assert.equal(sink.format === 'json' && sink.path, '/c/tokens/Abc_def-12-kw-real.json');
  });
});

describe('hardening: YAML aliases', () => {
  test('a recursive alias is a config error with its place, not a stack overflow', () => {
    assert.deepEqual(problemsOf('a: &x [*x]\n'), ['/tmp/cfg/config.yaml: line 1, column 8: the alias *x is inside the node it refers to (a recursive alias)']);
    assert.deepEqual(problemsOf('accounts:\n  - &acc\n    name: main\n    sinks: [*acc]\n'), [
      '/tmp/cfg/config.yaml: line 4, column 13: the alias *acc is inside the node it refers to (a recursive alias)',
    ]);
  });

  test('too many aliases (a resource-exhaustion attack) is a config error too', () => {
    const text =
      'a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n';
    assert.deepEqual(problemsOf(text), ['/tmp/cfg/config.yaml: YAML: too many aliases (more than 100 expansions); write the values out instead']);
  });

  test('an ordinary alias still works', () => {
    const text = `defaults: { renewal: &r { renewBefore: 2h } }\n${account('proof: { interval: 45m }\nrenewal: *r')}`;
    const config = parseConfig(text, '/c/config.yaml', '/c', { env: ENV, hostTimeZone: 'UTC' });
    assert.equal(config.accounts[0]!.renewal.renewBeforeMs, 2 * 3_600_000);
  });
});

describe('hardening: a lifetime the same-token window would outlast', () => {
  test('maxLifetime no longer than sameTokenWindow plus spacing is refused: no renewal could come before the token is believed dead', () => {
    assert.deepEqual(problemsOf(account('renewal: { maxLifetime: 5h }')), [
      'accounts[0].renewal.maxLifetime: must be longer than sameTokenWindow plus spacing (6h1m): the broker gives the same token again within that window, so no renewal could come before the token is believed dead',
    ]);
    assert.deepEqual(problemsOf(account('renewal: { maxLifetime: 7h }')), []);
  });
});

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseConfig } from '../src/config/load';
import { ConfigError } from '../src/core/errors';
import { CLI, recordReliability, tempDir } from './helpers';
import { DURATION_RANGES, MAX_TIMER_MS } from '../src/config/ranges';

const KEY = 'PS' + 'k'.repeat(34); // 36 characters
const KEY2 = 'PS' + 'q'.repeat(34);
const SECRET = 's'.repeat(180);
const ENV = { KIS_KEY: KEY, KIS_SECRET: SECRET, KIS_KEY2: KEY2 };

/** A valid single-account config; `account` replaces the account's body lines. */
function withAccount(account: string, top = ''): string {
  return `${top}accounts:\n  - ${account.trim().replace(/\n/g, '\n    ')}\n`;
}
const GOOD_ACCOUNT = `name: main
provider: kis
appKey: \${KIS_KEY}
appSecret: \${KIS_SECRET}
sinks:
  - { format: kis-auth, dir: ./KIS/config }`;

function problemsOf(text: string, baseDir = '/tmp/cfg', env: Record<string, string> = ENV): string[] {
  try {
    parseConfig(text, join(baseDir, 'config.yaml'), baseDir, { env });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.problems;
  }
  return [];
}

describe('config: one bad fixture per rule, each with its exact message', () => {
  const cases: Array<[string, string, string[]]> = [
    ['unknown top-level key', withAccount(GOOD_ACCOUNT, 'stateDirectory: ./x\n'), ['stateDirectory: unknown key; did you mean stateDir?']],
    [
      'misspelt key, nested in a list and a tagged union',
      withAccount(GOOD_ACCOUNT.replace('dir: ./KIS/config }', 'dir: ./KIS/config, readerTimeZone: [UTC], writeAhaed: 5m }')),
      [
        'accounts[0].sinks[0].readerTimeZone: unknown key; did you mean readerTimeZones?',
        'accounts[0].sinks[0].writeAhaed: unknown key; did you mean writeAhead?',
      ],
    ],
    ['misspelt key with nothing near it', withAccount(GOOD_ACCOUNT, 'telemetry: {}\n'), ['telemetry: unknown key']],
    [
      'unknown nested key',
      withAccount(GOOD_ACCOUNT.replace('dir: ./KIS/config }', 'dir: ./KIS/config, keep: 3 }')),
      ['accounts[0].sinks[0].keep: unknown key'],
    ],
    ['required field missing', withAccount(GOOD_ACCOUNT.replace('provider: kis\n', '')), ['accounts[0].provider: required']],
    ['value outside its set', withAccount(GOOD_ACCOUNT.replace('provider: kis', 'provider: ebest')), ['accounts[0].provider: must be one of "kis", "kiwoom"']],
    ['wrong type', withAccount(GOOD_ACCOUNT, 'server: { port: high }\n'), ['server.port: must be a number']],
    ['number out of range', withAccount(GOOD_ACCOUNT, 'server: { port: 70000 }\n'), ['server.port: must be at most 65535']],
    ['KIS app key length', withAccount(GOOD_ACCOUNT.replace('${KIS_KEY}', 'PSshort')), ['accounts[0].appKey: must be 36 characters (got 7)']],
    ['KIS app secret length', withAccount(GOOD_ACCOUNT.replace('${KIS_SECRET}', 'x'.repeat(179))), ['accounts[0].appSecret: must be 180 characters (got 179)']],
    [
      'app key missing',
      withAccount(GOOD_ACCOUNT.replace('appKey: ${KIS_KEY}\n', '')),
      ['accounts[0].appKey: required (inline, usually ${ENV_VAR}, or as appKeyFile)'],
    ],
    [
      'app key inline and from a file',
      withAccount(GOOD_ACCOUNT.replace('appKey: ${KIS_KEY}', 'appKey: ${KIS_KEY}\nappKeyFile: ./key')),
      ['accounts[0].appKey: set only one of appKey and appKeyFile'],
    ],
    [
      'secret file missing',
      withAccount(GOOD_ACCOUNT.replace('appSecret: ${KIS_SECRET}', 'appSecretFile: /nonexistent/secret')),
      ['accounts[0].appSecretFile: cannot read /nonexistent/secret (ENOENT)'],
    ],
    [
      'white space inside a secret',
      withAccount(GOOD_ACCOUNT.replace('${KIS_SECRET}', `"${'s'.repeat(90)} ${'s'.repeat(89)}"`)),
      ['accounts[0].appSecret: must not contain white space'],
    ],
    [
      'environment variable not set',
      withAccount(GOOD_ACCOUNT.replace('${KIS_KEY}', '${KIS_APP_KEY_TYPO}')),
      ['accounts[0].appKey: environment variable KIS_APP_KEY_TYPO is not set'],
    ],
    [
      'bad duration',
      withAccount(GOOD_ACCOUNT, 'defaults: { renewal: { spacing: 1 minute } }\n'),
      ['defaults.renewal.spacing: must be a duration such as 90s, 5m or 4h30m'],
    ],
    [
      'mode not a quoted octal string',
      withAccount(GOOD_ACCOUNT.replace('dir: ./KIS/config }', 'dir: ./KIS/config, mode: 0640 }')),
      ['accounts[0].sinks[0].mode: must be an octal string in quotes, such as "0600"'],
    ],
    [
      'account name',
      withAccount(GOOD_ACCOUNT.replace('name: main', 'name: Main Account')),
      ['accounts[0].name: must be 1-63 lower-case letters, digits, "-" or "_"'],
    ],
    [
      'no sinks',
      withAccount(GOOD_ACCOUNT.replace(/sinks:\n.*$/s, 'sinks: []')),
      ['accounts[0].sinks: must list at least 1 sink (the files applications read), unless a gateway client uses the account'],
    ],
    ['no accounts', 'accounts: []\n', ['accounts: must list at least 1 account']],
    [
      'unknown sink format',
      withAccount(GOOD_ACCOUNT.replace('format: kis-auth, dir: ./KIS/config', 'format: pickle, path: ./t')),
      ['accounts[0].sinks[0].format: must be one of "kis-auth", "json", "python-kis", "approval-key"'],
    ],
    ['bad base URL', withAccount(`${GOOD_ACCOUNT}\nbaseUrl: ftp://example.com`), ['accounts[0].baseUrl: must be an http(s) URL']],
    [
      'time zone',
      withAccount(GOOD_ACCOUNT.replace('dir: ./KIS/config }', 'dir: ./KIS/config, timeZone: Asia/Busan }')),
      ['accounts[0].sinks[0].timeZone: must be an IANA time zone such as Asia/Seoul'],
    ],
    [
      'reader time zone',
      withAccount(GOOD_ACCOUNT.replace('dir: ./KIS/config }', 'dir: ./KIS/config, readerTimeZones: [UTC, Mars/Olympus] }')),
      ['accounts[0].sinks[0].readerTimeZones[1]: must be an IANA time zone such as Asia/Seoul'],
    ],
    [
      'no reader time zone',
      withAccount(GOOD_ACCOUNT.replace('dir: ./KIS/config }', 'dir: ./KIS/config, readerTimeZones: [] }')),
      ['accounts[0].sinks[0].readerTimeZones: must list at least 1 zone'],
    ],
    [
      'write-ahead longer than half a day',
      withAccount(GOOD_ACCOUNT.replace('dir: ./KIS/config }', 'dir: ./KIS/config, writeAhead: 13h }')),
      ['accounts[0].sinks[0].writeAhead: must be at most 12h'],
    ],
    [
      'python-kis without an HTS id',
      withAccount(GOOD_ACCOUNT.replace('format: kis-auth, dir: ./KIS/config', 'format: python-kis, dir: ./pykis')),
      ['accounts[0].sinks[0].htsId: required'],
    ],
    [
      'python-kis HTS id that is a path',
      withAccount(GOOD_ACCOUNT.replace('format: kis-auth, dir: ./KIS/config', 'format: python-kis, dir: ./pykis, htsId: "../up"')),
      ['accounts[0].sinks[0].htsId: must be an HTS id, with no "/" (it becomes part of a file name)'],
    ],
    [
      'python-kis for Kiwoom',
      withAccount(
        GOOD_ACCOUNT.replace('provider: kis', 'provider: kiwoom').replace('format: kis-auth, dir: ./KIS/config', 'format: python-kis, dir: ./pykis, htsId: me'),
      ),
      ['accounts[0].sinks[0].format: python-kis is a KIS client'],
    ],
    [
      'cron schedule',
      withAccount(`${GOOD_ACCOUNT}\nrenewal: { schedule: "0 */5 * *" }`),
      ['accounts[0].renewal.schedule: must be a 5-field cron expression (minute hour day-of-month month day-of-week)'],
    ],
    [
      'renewal margin longer than the token lives',
      withAccount(GOOD_ACCOUNT, 'defaults: { renewal: { renewBefore: 23h, jitter: 2h } }\n'),
      ['defaults.renewal.renewBefore: renewBefore plus jitter (25h) must be shorter than maxLifetime (24h)'],
    ],
    [
      'retry delays in the wrong order',
      withAccount(`${GOOD_ACCOUNT}\nrenewal: { retry: { initialDelay: 10m, maxDelay: 1m } }`),
      ['accounts[0].renewal.retry.maxDelay: must not be shorter than initialDelay (10m)'],
    ],
    [
      'unknown path placeholder',
      withAccount(GOOD_ACCOUNT.replace('format: kis-auth, dir: ./KIS/config', 'format: json, path: "./t/{accountName}.json"')),
      ['accounts[0].sinks[0].path: has an unknown placeholder; use {account}, {env}, {appKeyPrefix}'],
    ],
    [
      'signal without a pid file',
      withAccount(GOOD_ACCOUNT.replace('dir: ./KIS/config }', 'dir: ./KIS/config, notify: { signal: SIGHUP } }')),
      ['accounts[0].sinks[0].notify.pidFile: required with signal'],
    ],
    ['admin token too short', withAccount(GOOD_ACCOUNT, 'server: { adminToken: "hunter2" }\n'), ['server.adminToken: must be at least 16 characters']],
    [
      'kis-auth and approval-key sinks on a Kiwoom account',
      withAccount(
        'name: kw\nprovider: kiwoom\nappKey: kiwoomkey123456\nappSecret: kiwoomsecret123456\nsinks:\n  - { format: kis-auth, dir: ./k }\n  - { format: approval-key, path: ./a }',
      ),
      ['accounts[0].sinks[0].format: kis-auth files are read by KIS clients only', 'accounts[0].sinks[1].format: approval keys exist for KIS only'],
    ],
    [
      'Slack without a webhook',
      withAccount(GOOD_ACCOUNT, 'slack: { language: ko }\n'),
      ['slack.webhookUrl: required (inline, usually ${SLACK_WEBHOOK_URL}, or as webhookUrlFile)'],
    ],
    [
      'Slack webhook that is not a URL (the value is not echoed)',
      withAccount(GOOD_ACCOUNT, 'slack: { webhookUrl: "T0/B0/secretpart" }\n'),
      ['slack.webhookUrl: must be an http(s) URL'],
    ],
    [
      'Slack language',
      withAccount(GOOD_ACCOUNT, 'slack: { webhookUrl: "https://hooks.slack.com/services/x", language: jp }\n'),
      ['slack.language: must be one of "en", "ko"'],
    ],
    ['Redis URL', withAccount(GOOD_ACCOUNT, 'store: { type: redis, url: "localhost:6379" }\n'), ['store.url: must be a redis:// or rediss:// URL']],
    [
      'Redis lease shorter than a request',
      withAccount(GOOD_ACCOUNT, 'store: { type: redis, url: "redis://r:6379", lockTtl: 10s }\n'),
      ['store.lockTtl: must be longer than the longest request timeout (15s), or a lock could expire while its holder still waits for the broker'],
    ],
    ['unknown store type', withAccount(GOOD_ACCOUNT, 'store: { type: etcd }\n'), ['store.type: must be one of "file", "redis"']],
    [
      'YAML syntax',
      'accounts: [\n  name: x\nfoo',
      ['/tmp/cfg/config.yaml: line 3, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]'],
    ],
  ];
  for (const [rule, text, expected] of cases) {
    test(rule, () => assert.deepEqual(problemsOf(text), expected));
  }
});

describe('config: rules across accounts', () => {
  const second = (name: string, key: string, sink: string) =>
    `  - name: ${name}\n    provider: kis\n    appKey: ${key}\n    appSecret: \${KIS_SECRET}\n    sinks:\n      - ${sink}\n`;
  test('duplicate account name', () => {
    const text = withAccount(GOOD_ACCOUNT) + second('main', '${KIS_KEY2}', '{ format: json, path: ./b.json }');
    assert.deepEqual(problemsOf(text), ['accounts[1].name: already the name of accounts[0]']);
  });
  test('the same app key on two accounts', () => {
    const text = withAccount(GOOD_ACCOUNT) + second('other', '${KIS_KEY}', '{ format: json, path: ./b.json }');
    assert.deepEqual(problemsOf(text), [
      'accounts[1].appKey: same app key as accounts[0]; an app key gets one token at a time, so list several sinks under one account instead',
    ]);
  });
  test('two accounts writing one kis-auth directory', () => {
    const text = withAccount(GOOD_ACCOUNT) + second('other', '${KIS_KEY2}', '{ format: kis-auth, dir: ./KIS/config/ }');
    assert.deepEqual(problemsOf(text), [
      "accounts[1].sinks[0].dir: directory already used by accounts[0].sinks[0]; kis_auth.py's files are not keyed by account, so each account needs its own directory",
    ]);
  });
  test('two sinks writing one file', () => {
    const text = withAccount(`${GOOD_ACCOUNT}\n  - { format: json, path: ./t.json }\n  - { format: json, path: ./t.json, layout: raw }`);
    assert.deepEqual(problemsOf(text), ['accounts[0].sinks[2].path: file already written by accounts[0].sinks[1]']);
  });
});

test('config: several errors are all reported together', () => {
  const text = `stateDir: ./state
bogus: 1
server: { port: -1 }
accounts:
  - name: main
    provider: kis
    appKey: short
    appSecret: \${MISSING_SECRET}
    renewal: { spacing: soon }
    sinks: [{ format: kis-auth, dir: ./KIS, timeZone: Nowhere/Land }]
  - name: second
    provider: kiwoom
    sinks: []
`;
  assert.deepEqual(problemsOf(text), [
    // Behind the schema's errors (bogus, server.port, spacing), the account's other checks ran in the same pass.
    'accounts[0].appKey: must be 36 characters (got 5)',
    'accounts[0].appSecret: environment variable MISSING_SECRET is not set',
    'accounts[0].renewal.spacing: must be a duration such as 90s, 5m or 4h30m',
    'accounts[0].sinks[0].timeZone: must be an IANA time zone such as Asia/Seoul',
    'accounts[1].appKey: required (inline, usually ${ENV_VAR}, or as appKeyFile)',
    'accounts[1].appSecret: required (inline, usually ${ENV_VAR}, or as appSecretFile)',
    'accounts[1].sinks: must list at least 1 sink (the files applications read), unless a gateway client uses the account',
    'bogus: unknown key',
    'server.port: must be at least 0',
  ]);
});

test('config: one run names every problem across schema, secrets, files and floors (no rounds), the missing file by its resolved path', () => {
  // The issue's config: a typo'd key and a bad duration (schema), a missing secret file (files), a secret of the
  // wrong length (secrets) and a spacing under the broker's floor (floors). Before, check-config showed two, then
  // two more once those were fixed, then the missing file.
  const text = `accounts:
  - name: main
    provider: kis
    appKey: \${KIS_KEY}
    appSecretFile: ./secrets/kis_app_secret
    renewal: { spacing: 10s, renewBefor: 1h, jitter: 5x }
    sinks: [{ format: kis-auth, dir: ./KIS }]
  - name: two
    provider: kis
    appKey: \${KIS_KEY_2}
    appSecret: tooshort
    sinks: [{ format: kis-auth, dir: ./KIS2 }]
`;
  const problems = problemsOf(text, '/nonexistent-dir', { ...ENV, KIS_KEY_2: 'P'.repeat(36) });
  assert.deepEqual(problems, [
    "accounts[0].appSecretFile: cannot read /nonexistent-dir/secrets/kis_app_secret (ENOENT; a relative path counts from the config file's folder)",
    'accounts[0].renewal.jitter: must be a duration such as 90s, 5m or 4h30m',
    'accounts[0].renewal.renewBefor: unknown key; did you mean renewBefore?',
    problems.find((p) => p.startsWith('accounts[0].renewal.spacing: must be at least 1m because baseUrl is'))!,
    'accounts[1].appSecret: must be 180 characters (got 8)',
  ]);
});

test('config: the semantic checks of a well-formed account still run when another account is malformed', () => {
  const text = `accounts:
  - name: main
    provider: kis
    appKey: short
    appSecret: \${KIS_SECRET}
    sinks: [{ format: kis-auth, dir: ./KIS }]
  - name: broken
    provider: nope
    sinks: [{ format: json, path: ./x.json }]
`;
  assert.deepEqual(problemsOf(text), ['accounts[0].appKey: must be 36 characters (got 5)', 'accounts[1].provider: must be one of "kis", "kiwoom"']);
});

test('config: defaults fill everything with a sensible value; paths resolve against the config file', () => {
  const config = parseConfig(withAccount(GOOD_ACCOUNT), '/etc/bts/config.yaml', '/etc/bts', { env: ENV, hostTimeZone: 'UTC' });
  const account = config.accounts[0]!;
  assert.equal(config.stateDir, '/etc/bts/data/state');
  assert.deepEqual(config.server, { enabled: true, host: '127.0.0.1', port: 9464, adminToken: undefined, requestTimeoutMs: 10_000 });
  assert.equal(account.env, 'real');
  assert.equal(account.baseUrl, 'https://openapi.koreainvestment.com:9443');
  assert.equal(account.renewal.spacingMs, 60_000);
  assert.equal(account.renewal.renewBeforeMs, 3_600_000);
  assert.deepEqual(account.renewal.retry, { attempts: 3, initialDelayMs: 300_000, multiplier: 2, maxDelayMs: 3_600_000, jitter: 0.1 });
  assert.equal(account.proof.intervalMs, 1_800_000);
  const sink = account.sinks[0]!;
  assert.equal(sink.format, 'kis-auth');
  assert.equal(sink.format === 'kis-auth' && sink.dir, '/etc/bts/KIS/config');
  assert.equal(sink.access.mode, 0o600);
  assert.equal(sink.access.dirMode, 0o700);
  assert.equal(sink.format === 'kis-auth' && sink.keepDays, 7);
  // The readers' clocks: KST hosts, containers on UTC, and this host's own zone (set here; the default reads it off the host).
  assert.deepEqual(sink.format === 'kis-auth' && sink.readerTimeZones, ['Asia/Seoul', 'UTC']);
  assert.equal(sink.format === 'kis-auth' && sink.writeAheadMs, 600_000);
  assert.equal(sink.format === 'kis-auth' && sink.validDateTimeZone, 'Asia/Seoul');
});

test("config: kis-auth reader zones: the host's own zone joins the defaults; a listed set replaces them; the old timeZone key adds its zone", () => {
  const zonesOf = (sinkLine: string, hostTimeZone: string) => {
    const text = withAccount(GOOD_ACCOUNT.replace('{ format: kis-auth, dir: ./KIS/config }', sinkLine));
    const sink = parseConfig(text, '/c/config.yaml', '/c', { env: ENV, hostTimeZone }).accounts[0]!.sinks[0]!;
    return sink.format === 'kis-auth' ? sink.readerTimeZones : undefined;
  };
  assert.deepEqual(zonesOf('{ format: kis-auth, dir: ./K }', 'Asia/Seoul'), ['Asia/Seoul', 'UTC']);
  assert.deepEqual(zonesOf('{ format: kis-auth, dir: ./K }', 'Europe/Berlin'), ['Asia/Seoul', 'UTC', 'Europe/Berlin']);
  assert.deepEqual(zonesOf('{ format: kis-auth, dir: ./K, readerTimeZones: [America/New_York] }', 'UTC'), ['America/New_York']);
  assert.deepEqual(zonesOf('{ format: kis-auth, dir: ./K, timeZone: UTC }', 'Asia/Seoul'), ['Asia/Seoul', 'UTC']);
  assert.deepEqual(zonesOf('{ format: kis-auth, dir: ./K, timeZone: Asia/Tokyo }', 'UTC'), ['Asia/Seoul', 'UTC', 'Asia/Tokyo']);
});

test("config: python-kis: the file name python-kis computes, from the HTS id and the credentials of the account's domain; the secret only in the digest", () => {
  for (const env of ['real', 'mock'] as const) {
    const text = withAccount(
      `${GOOD_ACCOUNT.replace('{ format: kis-auth, dir: ./KIS/config }', '{ format: python-kis, dir: ./pykis, htsId: trader01 }')}\nenv: ${env}`,
    );
    const sink = parseConfig(text, '/c/config.yaml', '/c', { env: ENV }).accounts[0]!.sinks[0]!;
    const digest = createHash('sha1').update(`pykistrader01${KEY}${SECRET}token`).digest('hex');
    assert.equal(sink.format === 'python-kis' && sink.path, `/c/pykis/token_${env === 'real' ? 'real' : 'virtual'}_trader01_${digest}.json`);
    assert.ok(!JSON.stringify(sink).includes(SECRET));
  }
});

test('config: per-account settings override defaults, which override the built-in ones', () => {
  const text = withAccount(
    `${GOOD_ACCOUNT}\nenv: mock\nrenewal: { spacing: 5m, retry: { attempts: 5 } }`,
    'defaults: { renewal: { spacing: 2m, renewBefore: 2h, retry: { maxDelay: 30m } } }\n',
  );
  const account = parseConfig(text, '/c/config.yaml', '/c', { env: ENV }).accounts[0]!;
  assert.equal(account.baseUrl, 'https://openapivts.koreainvestment.com:29443');
  assert.equal(account.renewal.spacingMs, 300_000);
  assert.equal(account.renewal.renewBeforeMs, 7_200_000);
  assert.equal(account.renewal.retry.attempts, 5);
  assert.equal(account.renewal.retry.maxDelayMs, 1_800_000);
});

test('config: secrets from files lose their trailing newline; ${VAR:-fallback} and $${ work; numbers from ${ENV} are numbers', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'key'), `${KEY}\n`);
  writeFileSync(join(dir, 'secret'), `${SECRET}\r\n`);
  const text = `server: { port: "\${PORT}", host: "\${HOST:-0.0.0.0}" }
accounts:
  - name: main
    provider: kis
    appKeyFile: ./key
    appSecretFile: ${join(dir, 'secret')}
    sinks: [{ format: json, name: "literal-$\${x}", path: "./t/{account}.json" }]
`;
  const config = parseConfig(text, join(dir, 'config.yaml'), dir, { env: { PORT: '9999' } });
  assert.equal(config.accounts[0]!.appKey, KEY);
  assert.equal(config.accounts[0]!.appSecret, SECRET);
  assert.equal(config.server.port, 9999);
  assert.equal(config.server.host, '0.0.0.0');
  const sink = config.accounts[0]!.sinks[0]!;
  assert.equal(sink.name, 'literal-${x}');
  assert.equal(sink.format === 'json' && sink.path, join(dir, 't', 'main.json'));
});

test('check-config: exits 2 with every problem and touches no file; exits 0 on a good config', (t) => {
  const dir = tempDir(t);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(
    bad,
    `stateDir: ./state\naccounts:\n  - name: main\n    provider: kis\n    appKey: short\n    appSecret: short\n    sinks: [{ format: kis-auth, dir: ./KIS }]\n`,
  );
  const failed = spawnSync(process.execPath, [CLI, 'check-config', '--config', bad], { encoding: 'utf8' });
  assert.equal(failed.status, 2);
  assert.match(failed.stderr, /accounts\[0\]\.appKey: must be 36 characters \(got 5\)/);
  assert.match(failed.stderr, /accounts\[0\]\.appSecret: must be 180 characters \(got 5\)/);
  assert.deepEqual(readdirSync(dir), ['bad.yaml']);
  // `start` with the same config refuses too, before creating anything.
  const start = spawnSync(process.execPath, [CLI, 'start', '--config', bad], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(start.status, 2);
  assert.deepEqual(readdirSync(dir), ['bad.yaml']);
  recordReliability({
    kind: 'fault',
    category: 'config',
    fault: 'a bad config (wrong key and secret lengths)',
    reason: '(exit code 2)',
    alert: 'none',
    issuances: 0,
    outcome: 'refused to start, every problem named with its path and rule; no file or directory created',
  });

  const good = join(dir, 'good.yaml');
  mkdirSync(join(dir, 'secrets'));
  writeFileSync(join(dir, 'secrets', 'secret'), `${SECRET}\n`);
  writeFileSync(
    good,
    `accounts:\n  - name: main\n    provider: kis\n    appKey: \${KIS_KEY}\n    appSecretFile: ./secrets/secret\n    sinks: [{ format: kis-auth, dir: ./KIS }]\n`,
  );
  const passed = spawnSync(process.execPath, [CLI, 'check-config'], {
    encoding: 'utf8',
    env: { ...process.env, KIS_KEY: KEY, BROKER_TOKEN_SIDECAR_CONFIG: good },
  });
  assert.equal(passed.status, 0, passed.stderr);
  assert.match(passed.stdout, /valid \(1 account\(s\), 1 sink\(s\)/);
  assert.equal(existsSync(join(dir, 'KIS')), false);
  assert.equal(existsSync(join(dir, 'data')), false);
});

/**
 * Issue 15 ("Hardening"), the config items: floors that protect the app key against the brokers' own hosts,
 * absurd values refused, errors that name the key and never the value, placeholders that cannot leave the
 * configured directory, and recursive YAML aliases reported as config errors.
 */

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

/** The problems of a config read on a UTC host, from /tmp/cfg. */
function hostProblemsOf(text: string, env: Record<string, string> = ENV): string[] {
  try {
    parseConfig(text, '/tmp/cfg/config.yaml', '/tmp/cfg', { env, hostTimeZone: 'UTC' });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.problems;
  }
  return [];
}

describe("floors that protect the app key apply against the brokers' own hosts only", () => {
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
      assert.deepEqual(hostProblemsOf(account(extra)), [message]);
      assert.deepEqual(hostProblemsOf(account(`${extra}\nbaseUrl: ${SIMULATOR}`)), []);
    });
  }

  test("the incident's settings (spacing 0, initialDelay 0, proof interval 0) against the broker: every key named", () => {
    const problems = hostProblemsOf(account('renewal: { spacing: 0, retry: { initialDelay: 0 } }\nproof: { interval: 1s }'));
    assert.deepEqual(
      problems.map((p) => p.slice(0, p.indexOf(':'))),
      ['accounts[0].proof.interval', 'accounts[0].renewal.retry.initialDelay', 'accounts[0].renewal.spacing'],
    );
  });

  test("a value from `defaults:` is named where it was written; the mock host and Kiwoom's hosts count too", () => {
    assert.match(
      hostProblemsOf(`defaults: { renewal: { spacing: 10s } }\n${account()}`).join('\n'),
      /^defaults\.renewal\.spacing: must be at least 1m because baseUrl is KIS's own host/,
    );
    assert.match(
      hostProblemsOf(account('env: mock\nrenewal: { spacing: 10s }')).join('\n'),
      /^accounts\[0\]\.renewal\.spacing: must be at least 1m because baseUrl is KIS's own host \(openapivts\.koreainvestment\.com\)/,
    );
    assert.match(
      hostProblemsOf(account('renewal: { spacing: 10s }', 'kiwoom')).join('\n'),
      /^accounts\[0\]\.renewal\.spacing: must be at least 1m because baseUrl is Kiwoom's own host \(api\.kiwoom\.com\)/,
    );
    assert.match(
      hostProblemsOf(account('baseUrl: "https://API.Kiwoom.com/"\nrenewal: { spacing: 10s }', 'kiwoom')).join('\n'),
      /because baseUrl is Kiwoom's own host \(api\.kiwoom\.com\)/,
    );
  });

  test('probe interval: floored when the probe itself goes to a broker host, not otherwise', () => {
    assert.deepEqual(hostProblemsOf(account('probe: { url: "https://openapi.koreainvestment.com:9443/", interval: 5s }')), [
      "accounts[0].probe.interval: must be at least 1m because probe.url is KIS's own host (openapi.koreainvestment.com): a probe is a request to the broker, whose per-second limits the bots share; a lower value needs a probe.url elsewhere",
    ]);
    assert.deepEqual(hostProblemsOf(account('probe: { url: "http://127.0.0.1:8000/health", interval: 5s }')), []);
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

describe("absurd values are refused, with the key's range", () => {
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
    test(what, () => assert.deepEqual(hostProblemsOf(account(extra)), [message]));
  }

  test('top-level keys: a zero server request timeout, a Slack reminder every 100 years, a Redis lease of a year', () => {
    const top =
      'server: { requestTimeout: 0 }\nslack: { webhookUrl: "https://hooks.slack.com/services/x", repeatInterval: 36500d }\nstore: { type: redis, url: "redis://r:6379", lockTtl: 365d }\n';
    assert.deepEqual(hostProblemsOf(top + account()), [
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
    'realtime.replicas.leaseTtl',
    'realtime.replicas.outageHold',
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
    assert.deepEqual(hostProblemsOf(configWith('accounts.0.name', 'main')), []);
    for (const key of DURATION_KEYS) {
      const problems = hostProblemsOf(configWith(key, '999999999d'));
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
    assert.deepEqual(hostProblemsOf(account().replace('path: ./t.json }', 'path: ./t.json, owner: 99999999999 }')), [
      'accounts[0].sinks[0].owner: must be at most 4294967294',
    ]);
  });
});

describe('a config error names the key, never the value', () => {
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
      const problems = hostProblemsOf(text);
      assert.ok(
        problems.some((p) => p.startsWith(`${key}: `)),
        `no problem names ${key}: ${JSON.stringify(problems)}`,
      );
      for (const problem of problems) assert.ok(!problem.includes(PASTED.slice(0, 12)), `the value is printed back: ${problem}`);
    });
  }

  test('a time zone: the key and what was expected', () => {
    assert.deepEqual(hostProblemsOf(`log: { timeZone: "${PASTED}" }\n${account()}`), ['log.timeZone: must be an IANA time zone such as Asia/Seoul']);
  });

  test('an environment variable with a conventional name is still named; one that is not is not printed', () => {
    assert.deepEqual(hostProblemsOf(account().replace('${KIS_KEY}', '${KIS_APP_KEY_TYPO}')), [
      'accounts[0].appKey: environment variable KIS_APP_KEY_TYPO is not set',
    ]);
    assert.deepEqual(hostProblemsOf(account().replace('${KIS_KEY}', `\${${PASTED}}`)), [
      'accounts[0].appKey: refers to an environment variable that is not set (its name is not printed: not in capitals like a variable name, it could be a pasted secret)',
    ]);
  });

  test('an unknown key is still named, with the nearest known one', () => {
    assert.deepEqual(hostProblemsOf(`stateDirectory: ./x\n${account()}`), ['stateDirectory: unknown key; did you mean stateDir?']);
  });
});

describe('a path placeholder cannot lead out of its directory', () => {
  const kiwoom = (appKey: string, path: string) =>
    `accounts:\n  - name: kw\n    provider: kiwoom\n    appKey: '${appKey}'\n    appSecret: kiwoomsecret123456\n    sinks:\n      - { format: json, path: "${path}" }\n`;

  test('an app key with "../" in its first 10 characters is refused, naming the key and never the value', () => {
    const problems = hostProblemsOf(kiwoom('../../../etc/cron', './tokens/{appKeyPrefix}.json'));
    assert.deepEqual(problems, [
      'accounts[0].sinks[0].path: {appKeyPrefix} would put characters other than letters, digits, "-" and "_" into the path (the app key\'s first 10 characters hold others), which could lead out of its directory; use another placeholder or a fixed name',
    ]);
  });

  test('any character outside [A-Za-z0-9_-] is refused, in dir templates too', (t) => {
    const dir = tempDir(t);
    for (const key of ['ab.cd.ef.gh', 'abc/def123', 'abc\\def123', 'abc%2e%2e/x']) {
      const problems = hostProblemsOf(kiwoom(key, './t/{appKeyPrefix}.json'));
      assert.deepEqual(
        problems.map((p) => p.slice(0, p.indexOf(': '))),
        ['accounts[0].sinks[0].path'],
        key,
      );
      assert.ok(!problems[0]!.includes(key.slice(0, 6)), key);
    }
    const kis = account().replace('{ format: json, path: ./t.json }', `{ format: kis-auth, dir: "${dir}/KIS/{appKeyPrefix}" }`);
    assert.deepEqual(hostProblemsOf(kis), []);
    const dotted = hostProblemsOf(kis, { ...ENV, KIS_KEY: `../../../${'k'.repeat(27)}` });
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

describe('YAML aliases', () => {
  test('a recursive alias is a config error with its place, not a stack overflow', () => {
    assert.deepEqual(hostProblemsOf('a: &x [*x]\n'), [
      '/tmp/cfg/config.yaml: line 1, column 8: the alias *x is inside the node it refers to (a recursive alias)',
    ]);
    assert.deepEqual(hostProblemsOf('accounts:\n  - &acc\n    name: main\n    sinks: [*acc]\n'), [
      '/tmp/cfg/config.yaml: line 4, column 13: the alias *acc is inside the node it refers to (a recursive alias)',
    ]);
  });

  test('too many aliases (a resource-exhaustion attack) is a config error too', () => {
    const text =
      'a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n';
    assert.deepEqual(hostProblemsOf(text), ['/tmp/cfg/config.yaml: YAML: too many aliases (more than 100 expansions); write the values out instead']);
  });

  test('an ordinary alias still works', () => {
    const text = `defaults: { renewal: &r { renewBefore: 2h } }\n${account('proof: { interval: 45m }\nrenewal: *r')}`;
    const config = parseConfig(text, '/c/config.yaml', '/c', { env: ENV, hostTimeZone: 'UTC' });
    assert.equal(config.accounts[0]!.renewal.renewBeforeMs, 2 * 3_600_000);
  });
});

describe('a lifetime the same-token window would outlast', () => {
  test('maxLifetime no longer than sameTokenWindow plus spacing is refused: no renewal could come before the token is believed dead', () => {
    assert.deepEqual(hostProblemsOf(account('renewal: { maxLifetime: 5h }')), [
      'accounts[0].renewal.maxLifetime: must be longer than sameTokenWindow plus spacing (6h1m): the broker gives the same token again within that window, so no renewal could come before the token is believed dead',
    ]);
    assert.deepEqual(hostProblemsOf(account('renewal: { maxLifetime: 7h }')), []);
  });
});

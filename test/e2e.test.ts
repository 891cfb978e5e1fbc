import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { systemClock } from '../src/core/clock';
import { parseDuration } from '../src/core/duration';
import { sha256 } from '../src/core/wire';
import { newLocalCredentials } from '../src/gateway/clients';
import { CLI, SECOND, fakeSlack, tier, configText, freePort, markerCredential, spawnForTest, startSimulator, tempDir, until, waitFor } from './helpers';
import { kisRequest, WsProbe } from './realtime-harness';
import { redisAvailable, startRedis } from './redis-harness';

/**
 * The real parts end to end: the sidecar (its CLI, as a process) on the simulator, scraped by Prometheus with the
 * rules from alerts/rules.yml, alerting through Alertmanager with alerts/alertmanager.yml to a Slack-compatible
 * receiver; and every dashboard query answered by that Prometheus.
 */
const ROOT = join(__dirname, '..', '..');
const PROMETHEUS = '/usr/bin/prometheus';
const ALERTMANAGER = '/usr/bin/prometheus-alertmanager';
const ADMIN = 'e2e-admin-token-0123456789';
const TRIGGERED_ALERT = 'BrokerTokenCredentialsRejected';

function available(binary: string): boolean {
  return spawnSync(binary, ['--version'], { encoding: 'utf8' }).status === 0;
}

function run(t: { after(fn: () => void): void }, command: string, args: string[], log: string[]): ChildProcess {
  const child = spawnForTest(t, command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
  return child;
}

async function promQuery(base: string, expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
  const response = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await response.json()) as {
    status: string;
    error?: string;
    data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
  };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
  return body.data.result;
}

/** Every PromQL expression of the dashboard, with its variables filled in for one account. */
function dashboardQueries(vars: Record<string, string>): Array<{ panel: string; expr: string }> {
  const dashboard = JSON.parse(readFileSync(join(ROOT, 'dashboards', 'broker-token-sidecar.json'), 'utf8')) as { panels: any[] };
  const panels: any[] = [];
  const collect = (list: any[]) => list.forEach((p) => (panels.push(p), p.panels && collect(p.panels)));
  collect(dashboard.panels);
  const queries: Array<{ panel: string; expr: string }> = [];
  for (const panel of panels) {
    for (const target of panel.targets ?? []) {
      if (!target.expr) continue;
      let expr: string = target.expr;
      for (const [name, value] of Object.entries(vars)) expr = expr.split(`\${${name}}`).join(value).split(`$${name}`).join(value);
      queries.push({ panel: panel.title, expr });
    }
  }
  return queries;
}

test('Prometheus scrapes the sidecar, the rules fire, Alertmanager delivers to Slack, every dashboard query has data', { timeout: 600_000 }, async (t) => {
  if (!available(PROMETHEUS) || !available(ALERTMANAGER) || !redisAvailable()) {
    if (process.env.CI) assert.fail('prometheus, prometheus-alertmanager and redis-server are required in CI');
    return t.skip('prometheus, alertmanager or redis-server not installed');
  }
  const dir = tempDir(t);
  const logs: string[] = [];

  // A Slack-compatible receiver: what Alertmanager sends lands here.
  const slack = await fakeSlack(t);
  const receiverUrl = slack.origin;

  // The sidecar, on the simulator, as a process.
  const cred = markerCredential('kis', 'e2e');
  const { simulator, url } = await startSimulator(t, [cred], { clock: systemClock as never, spacingMs: SECOND });
  const sidecarPort = await freePort();
  const gatewayPort = await freePort();
  const realtimePort = await freePort();
  // The gateway too, with one bot: its dashboard row and alert rules query what its calls leave; and the real-time
  // endpoint, where the bot subscribes to one stock. The state in Redis, as replicas keep it: the dashboard's replicas
  // panels (the session's holder, frames and the relay's lag through Redis) read what a replica exports, and a lone
  // replica holds the lease and hears its own frames back through Redis.
  const redis = await startRedis(t);
  const bot = { name: 'bot', ...newLocalCredentials() };
  const gatewayYaml = `gateway:\n  enabled: true\n  port: ${gatewayPort}\n  clients:\n    - { name: bot, accounts: [main], appKey: "${bot.appKey}", appSecretSha256: "${sha256(bot.appSecret).toString('hex')}" }\nrealtime:\n  enabled: true\n  port: ${realtimePort}`;
  const config = join(dir, 'sidecar.yaml');
  writeFileSync(
    config,
    configText(join(dir, 'state'), url, [{ name: 'main', credential: cred, extra: 'renewal: { spacing: 1s }' }]).replace(
      'server: { enabled: false }',
      `server: { host: 127.0.0.1, port: ${sidecarPort}, adminToken: ${ADMIN} }\nstore: { type: redis, url: "${redis.url}" }\n${gatewayYaml}`,
    ),
  );
  run(t, process.execPath, [CLI, 'start', '--config', config], logs);
  const sidecar = `http://127.0.0.1:${sidecarPort}`;
  await until('the sidecar to be ready', 30_000, async () => (await fetch(`${sidecar}/readyz`)).status === 200, 500);
  // A bot's day through the gateway, in small: its token asked for (answered locally), a price call, a refused one.
  const gateway = `http://127.0.0.1:${gatewayPort}/main`;
  await until('the gateway', 30_000, async () => (await fetch(`${gateway}/oauth2/tokenP`, { method: 'POST' }).catch(() => undefined)) !== undefined, 500);
  const tokenP = await fetch(`${gateway}/oauth2/tokenP`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'client_credentials', appkey: bot.appKey, appsecret: bot.appSecret }),
  });
  assert.equal(tokenP.status, 200);
  const price = await fetch(`${gateway}/uapi/domestic-stock/v1/quotations/inquire-price?FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930`, {
    headers: { appkey: bot.appKey, appsecret: bot.appSecret, tr_id: 'FHKST01010100', custtype: 'P', authorization: 'Bearer local' },
  });
  assert.equal(((await price.json()) as { rt_cd: string }).rt_cd, '0');
  const approval = await fetch(`${gateway}/oauth2/Approval`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'client_credentials', appkey: bot.appKey, secretkey: bot.appSecret }),
  });
  const { approval_key: approvalKey } = (await approval.json()) as { approval_key: string };
  const realtime = await WsProbe.open(t, `ws://127.0.0.1:${realtimePort}/main/tryitout`);
  realtime.send(kisRequest(approvalKey, 'H0STCNT0', '005930'));
  await realtime.next('a real-time frame', (m) => m.startsWith('0|'));

  // Alertmanager with the example config; the webhook files point at the receiver.
  const amPort = await freePort();
  const amConfig = parseYaml(readFileSync(join(ROOT, 'alerts', 'alertmanager.yml'), 'utf8'));
  const secrets = join(dir, 'secrets');
  mkdirSync(secrets);
  let n = 0;
  for (const receiverConfig of amConfig.receivers as any[]) {
    for (const slackConfig of receiverConfig.slack_configs ?? []) {
      const file = join(secrets, `webhook-${n++}`);
      writeFileSync(file, `${receiverUrl}/${receiverConfig.name}\n`);
      slackConfig.api_url_file = file;
    }
  }
  // The first notification waits group_wait: 1 s in npm test, the example's own in npm run reliability.
  const shortWaits = (route: any) => {
    if (route.group_wait !== undefined) route.group_wait = tier('1s', route.group_wait);
    for (const child of route.routes ?? []) shortWaits(child);
  };
  shortWaits(amConfig.route);
  writeFileSync(join(dir, 'alertmanager.yml'), toYaml(amConfig));
  run(
    t,
    ALERTMANAGER,
    [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'am-data')}`,
      `--web.listen-address=127.0.0.1:${amPort}`,
      '--cluster.listen-address=',
    ],
    logs,
  );
  await until('Alertmanager', 30_000, async () => (await fetch(`http://127.0.0.1:${amPort}/-/ready`)).ok, 500);

  // Prometheus with a copy of the rules, scraping every second. The alert the test triggers waits its `for:` in
  // npm run reliability, 5 s in npm test.
  const rules = parseYaml(readFileSync(join(ROOT, 'alerts', 'rules.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string; for?: string }> }> };
  const rule = rules.groups.flatMap((g) => g.rules).find((r) => r.alert === TRIGGERED_ALERT)!;
  rule.for = tier('5s', rule.for);
  writeFileSync(join(dir, 'rules.yml'), toYaml(rules));
  const promPort = await freePort();
  writeFileSync(
    join(dir, 'prometheus.yml'),
    toYaml({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [join(dir, 'rules.yml')],
      alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${amPort}`] }] }] },
      scrape_configs: [{ job_name: 'broker-token-sidecar', static_configs: [{ targets: [`127.0.0.1:${sidecarPort}`] }] }],
    }),
  );
  run(
    t,
    PROMETHEUS,
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'prom-data')}`, `--web.listen-address=127.0.0.1:${promPort}`],
    logs,
  );
  const prom = `http://127.0.0.1:${promPort}`;
  await until('the first scrapes', 60_000, async () => Number((await promQuery(prom, 'count_over_time(broker_token_usable[1m])'))[0]?.value[1] ?? 0) >= 5, 500);

  // Every dashboard query, its variables filled in, returns data.
  const vars = {
    job: 'broker-token-sidecar',
    instance: `127.0.0.1:${sidecarPort}`,
    account: 'main',
    env: 'real',
    __rate_interval: '1m',
    __interval: '15s',
    __range: '1h',
    datasource: 'prometheus',
  };
  const empty: string[] = [];
  for (const { panel, expr } of dashboardQueries(vars)) {
    if ((await promQuery(prom, expr)).length === 0) empty.push(`${panel}: ${expr}`);
  }
  assert.deepEqual(empty, [], 'dashboard queries without data');
  const firingBefore = await promQuery(prom, 'ALERTS{alertstate="firing"}');
  assert.deepEqual(
    firingBefore.map((s) => s.metric.alertname),
    [],
    'nothing fires while all is well',
  );

  // A failure through the simulator: the broker rejects the app secret at the next (forced) renewal.
  simulator.injectFault({
    endpoint: 'kis.token',
    kind: 'status',
    status: 403,
    body: { error_description: '유효하지 않은 AppSecret입니다.', error_code: 'EGW00105' },
  });
  const renew = await fetch(`${sidecar}/renew/main?force=true`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
  assert.equal(renew.status, 502);
  const forMs = parseDuration(rule.for ?? '0s') ?? 0;
  const fired = await waitFor(
    `${TRIGGERED_ALERT} to fire in Prometheus`,
    forMs + 60_000,
    async () => {
      const alerts = await promQuery(prom, `ALERTS{alertname="${TRIGGERED_ALERT}", alertstate="firing"}`);
      return alerts.length > 0 ? alerts : undefined;
    },
    500,
  );
  assert.equal(fired[0]!.metric.account, 'main');
  assert.equal(fired[0]!.metric.severity, 'critical');

  const group = (amConfig.route.group_wait as string | undefined) ?? '30s';
  const delivered = await waitFor('Alertmanager to deliver to the Slack receiver', (parseDuration(group) ?? 30_000) + 90_000, () =>
    slack.delivered().find((body) => body.includes(TRIGGERED_ALERT)),
  );
  const text = JSON.stringify(JSON.parse(delivered));
  assert.match(text, /main/);
  assert.match(text, /runbooks\.md#brokertokencredentialsrejected/);
  for (const secret of [cred.appKey, cred.appSecret, ADMIN]) assert.ok(!text.includes(secret), 'no secret in the alert');
});

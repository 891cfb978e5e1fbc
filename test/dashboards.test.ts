import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { createCatalogue, registerProcessMetrics } from '../src/metrics/catalogue';

const ROOT = join(__dirname, '..', '..');
const DASHBOARDS = join(ROOT, 'dashboards');
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

interface Target {
  refId?: unknown;
  expr?: unknown;
  datasource?: unknown;
}
interface Panel {
  id?: unknown;
  type?: unknown;
  title?: unknown;
  datasource?: unknown;
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name?: unknown;
  type?: unknown;
  query?: unknown;
  datasource?: unknown;
  multi?: unknown;
  includeAll?: unknown;
  allValue?: unknown;
  current?: { value?: unknown };
}
interface Dashboard {
  uid?: unknown;
  title?: unknown;
  schemaVersion?: unknown;
  refresh?: unknown;
  time?: unknown;
  templating?: { list?: Variable[] };
  panels?: Panel[];
}

function loadDashboard(): Dashboard {
  return JSON.parse(readFileSync(join(DASHBOARDS, 'broker-token-sidecar.json'), 'utf8')) as Dashboard;
}

/** Every panel that queries, including those inside collapsed rows. */
function queryPanels(panels: Panel[] = []): Panel[] {
  return panels.flatMap((p) => [...(p.type === 'row' ? [] : [p]), ...queryPanels(p.panels)]);
}

function queries(dashboard: Dashboard): { where: string; expr: string }[] {
  return queryPanels(dashboard.panels).flatMap((p) => (p.targets ?? []).map((t) => ({ where: `${String(p.title)} ${String(t.refId)}`, expr: String(t.expr) })));
}

// ── A small PromQL reader: the metric selectors of an expression ─────────────────────────────────────

interface Selector {
  metric: string;
  matchers: Map<string, string>;
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset']);
const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const AGGREGATIONS = new Set(['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile']);

/** Index just past the string literal that starts at `i`. */
function skipString(expr: string, i: number): number {
  const quote = expr[i];
  let j = i + 1;
  while (j < expr.length && expr[j] !== quote) j += expr[j] === '\\' ? 2 : 1;
  return j + 1;
}

/** Index just past the bracket that closes the one at `i`, skipping string literals inside. */
function skipBracket(expr: string, i: number, close: string): number {
  let j = i + 1;
  while (j < expr.length && expr[j] !== close) j = expr[j] === '"' || expr[j] === "'" ? skipString(expr, j) : j + 1;
  assert.ok(j < expr.length, `unclosed ${expr[i]} in ${expr}`);
  return j + 1;
}

function parseMatchers(body: string): Map<string, string> {
  const matchers = new Map<string, string>();
  for (const m of body.matchAll(/([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)) matchers.set(m[1]!, `${m[2]!}"${m[3]!}"`);
  return matchers;
}

/** The metric selectors of a PromQL expression: every identifier that is not a function, keyword or label list. */
function selectors(expr: string): Selector[] {
  const found: Selector[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i]!;
    if (c === '"' || c === "'") i = skipString(expr, i);
    else if (c === '[') i = skipBracket(expr, i, ']');
    else if (c === '#') i = expr.indexOf('\n', i) === -1 ? expr.length : expr.indexOf('\n', i);
    else if (/[0-9.]/.test(c)) i += /^[0-9.]+(?:e[+-]?[0-9]+)?[a-zA-Z]*/.exec(expr.slice(i))![0].length;
    else if (/[a-zA-Z_:]/.test(c)) {
      const name = /^[a-zA-Z_:][\w:]*/.exec(expr.slice(i))![0];
      i += name.length;
      const next = i + /^\s*/.exec(expr.slice(i))![0].length;
      if (GROUPING.has(name)) i = expr[next] === '(' ? skipBracket(expr, next, ')') : i;
      else if (KEYWORDS.has(name) || AGGREGATIONS.has(name) || expr[next] === '(')
        continue; // an operator, function or aggregation
      else if (expr[next] === '{') {
        const end = skipBracket(expr, next, '}');
        found.push({ metric: name, matchers: parseMatchers(expr.slice(next + 1, end - 1)) });
        i = end;
      } else found.push({ metric: name, matchers: new Map() });
    } else if (c === '{') {
      const end = skipBracket(expr, i, '}'); // a selector without a metric name
      found.push({ metric: '', matchers: parseMatchers(expr.slice(i + 1, end - 1)) });
      i = end;
    } else i += 1;
  }
  return found;
}

// ── What the sidecar exports ─────────────────────────────────────────────────────────────────────────

interface Exported {
  labels: readonly string[];
  histogram: boolean;
}

function exported(registry: Registry): Map<string, Exported> {
  const metrics = new Map<string, Exported>();
  for (const m of registry.getMetricsAsArray()) {
    // prom-client keeps the label names on the metric object, but does not declare them in its types.
    const labels = (m as unknown as { labelNames?: readonly string[] }).labelNames ?? [];
    metrics.set(m.name, { labels, histogram: String(m.type) === 'histogram' });
  }
  return metrics;
}

const catalogueRegistry = new Registry();
createCatalogue(catalogueRegistry, () => undefined);
const CATALOGUE = exported(catalogueRegistry);
const processRegistry = new Registry();
registerProcessMetrics(processRegistry);
const PROCESS = exported(processRegistry);

/** The exported metric a series name belongs to: a histogram's _bucket, _sum and _count are its own. */
function lookup(name: string): Exported | undefined {
  const registry = name.startsWith('broker_token_') ? CATALOGUE : /^(process|nodejs)_/.test(name) ? PROCESS : undefined;
  if (name === 'up') return { labels: [], histogram: false };
  if (!registry) return undefined;
  const direct = registry.get(name);
  if (direct) return direct;
  const base = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1];
  const histogram = base === undefined ? undefined : registry.get(base);
  return histogram?.histogram ? histogram : undefined;
}

/** Every problem with one query: a metric the sidecar does not export, or a selector missing a variable's filter. */
function problems(expr: string): string[] {
  const found: string[] = [];
  const list = selectors(expr);
  if (list.length === 0) found.push('selects no metric');
  for (const { metric, matchers } of list) {
    const info = lookup(metric);
    if (!info) {
      found.push(`${metric || '{…}'} is not a metric the sidecar exports`);
      continue;
    }
    const wanted = info.labels.includes('account') ? ['job', 'instance', 'account', 'env'] : ['job', 'instance'];
    for (const label of wanted) {
      if (matchers.get(label) !== `=~"$${label}"`) found.push(`${metric} does not filter ${label}=~"$${label}"`);
    }
  }
  return found;
}

// ── The dashboard ────────────────────────────────────────────────────────────────────────────────────

test('the query checker catches unknown metrics and missing filters', () => {
  const all = 'job=~"$job", instance=~"$instance", account=~"$account", env=~"$env"';
  assert.deepEqual(problems(`broker_token_nope{${all}}`), ['broker_token_nope is not a metric the sidecar exports']);
  assert.deepEqual(problems('nodejs_active_handles_total{job=~"$job", instance=~"$instance"}'), [
    'nodejs_active_handles_total is not a metric the sidecar exports',
  ]);
  assert.deepEqual(problems(`broker_token_usable_count{${all}}`), ['broker_token_usable_count is not a metric the sidecar exports']);
  assert.deepEqual(problems(`kis_token_age_hours{${all}}`), ['kis_token_age_hours is not a metric the sidecar exports']);
  assert.deepEqual(problems(`(broker_token_expiry_timestamp_seconds{${all}} - time()) and (broker_token_expiry_timestamp_seconds > 0)`), [
    'broker_token_expiry_timestamp_seconds does not filter job=~"$job"',
    'broker_token_expiry_timestamp_seconds does not filter instance=~"$instance"',
    'broker_token_expiry_timestamp_seconds does not filter account=~"$account"',
    'broker_token_expiry_timestamp_seconds does not filter env=~"$env"',
  ]);
  assert.deepEqual(problems('broker_token_usable{job=~"$job", instance=~"$instance", env=~"$env"}'), [
    'broker_token_usable does not filter account=~"$account"',
  ]);
  assert.deepEqual(problems('sum by (result) (increase(broker_token_slack_notifications_total{job=~"$job"}[1h]))'), [
    'broker_token_slack_notifications_total does not filter instance=~"$instance"',
  ]);
  assert.deepEqual(problems('time()'), ['selects no metric']);
  // Accepted: histogram series, digits in names, label lists, strings and ranges that look like metrics.
  assert.deepEqual(
    problems(`histogram_quantile(0.99, sum by (le, account) (rate(broker_token_renewal_duration_seconds_bucket{${all}}[$__rate_interval])))`),
    [],
  );
  assert.deepEqual(
    problems('nodejs_eventloop_lag_p99_seconds{job=~"$job", instance=~"$instance"} and on (job, instance) up{job=~"$job", instance=~"$instance"}'),
    [],
  );
  assert.deepEqual(problems(`max by (account) (broker_token_state{${all}, state="valid"} or broker_token_state{${all}, state="expired"} * 3)`), []);
});

test('the dashboard has its uid, schema, refresh, time range and the five variables', () => {
  const d = loadDashboard();
  assert.equal(d.uid, 'broker-token-sidecar');
  assert.equal(d.title, 'Broker token sidecar');
  assert.ok(typeof d.schemaVersion === 'number' && d.schemaVersion >= 39, `schemaVersion ${String(d.schemaVersion)}`);
  assert.equal(d.refresh, '30s');
  assert.deepEqual(d.time, { from: 'now-24h', to: 'now' });

  const variables = d.templating?.list ?? [];
  assert.deepEqual(
    variables.map((v) => v.name),
    ['datasource', 'job', 'instance', 'account', 'env'],
  );
  const [datasource, ...filters] = variables;
  assert.equal(datasource?.type, 'datasource');
  assert.equal(datasource?.query, 'prometheus');
  const expected: Record<string, string> = {
    job: 'label_values(broker_token_build_info, job)',
    instance: 'label_values(broker_token_build_info{job=~"$job"}, instance)',
    account: 'label_values(broker_token_state{job=~"$job", instance=~"$instance"}, account)',
    env: 'label_values(broker_token_state{job=~"$job", instance=~"$instance", account=~"$account"}, env)',
  };
  for (const v of filters) {
    const name = String(v.name);
    const query = typeof v.query === 'string' ? v.query : (v.query as { query?: unknown } | undefined)?.query;
    assert.equal(v.type, 'query', name);
    assert.equal(query, expected[name], name);
    assert.deepEqual(v.datasource, DATASOURCE, name);
    assert.equal(v.multi, true, `${name} is multi-select`);
    assert.equal(v.includeAll, true, `${name} offers All`);
    assert.equal(v.allValue, '.*', `${name}: All matches every value`);
    // The metrics the variables read are exported, with the labels the variables take.
    const metric = /^label_values\((\w+)/.exec(query as string)?.[1] ?? '';
    assert.ok(CATALOGUE.get(metric)?.labels.includes(name) || ['job', 'instance'].includes(name), `${metric} has no ${name} label`);
  }
});

test('every panel and every query uses the datasource variable', () => {
  const panels = queryPanels(loadDashboard().panels);
  assert.ok(panels.length >= 20, `only ${panels.length} panels`);
  const ids = new Set<unknown>();
  for (const p of panels) {
    const title = String(p.title);
    assert.ok(!ids.has(p.id), `panel id ${String(p.id)} used twice`);
    ids.add(p.id);
    assert.deepEqual(p.datasource, DATASOURCE, title);
    assert.ok((p.targets ?? []).length > 0, `${title} has no query`);
    const refIds = new Set<unknown>();
    for (const t of p.targets ?? []) {
      assert.ok(typeof t.refId === 'string' && t.refId !== '' && !refIds.has(t.refId), `${title}: refId ${String(t.refId)}`);
      refIds.add(t.refId);
      assert.ok(typeof t.expr === 'string' && t.expr.trim() !== '', `${title} ${t.refId}: no expr`);
      assert.deepEqual(t.datasource, DATASOURCE, `${title} ${t.refId}`);
    }
  }
});

test('every query uses only metrics the sidecar exports, filtered by the dashboard variables', () => {
  const all = queries(loadDashboard());
  const failures = all.flatMap(({ where, expr }) => problems(expr).map((p) => `${where}: ${p}`));
  assert.deepEqual(failures, []);
  // Only the variables that the query test against a real Prometheus substitutes.
  const allowed = new Set(['job', 'instance', 'account', 'env', '__rate_interval', '__interval', '__range']);
  for (const { where, expr } of all) {
    for (const m of expr.matchAll(/\$\{?(\w+)/g)) assert.ok(allowed.has(m[1]!), `${where}: $${m[1]!}`);
  }
});

test('the dashboard covers the token, its issuances, proofs, files, Slack and the process', () => {
  const used = new Set(queries(loadDashboard()).flatMap(({ expr }) => selectors(expr).map((s) => s.metric)));
  const required = [
    'broker_token_expiry_timestamp_seconds',
    'broker_token_state',
    'broker_token_usable',
    'broker_token_ready',
    'broker_token_issuances_total',
    'broker_token_same_token_total',
    'broker_token_renewal_attempts_total',
    'broker_token_renewal_failures_total',
    'broker_token_rate_limited_total',
    'broker_token_consecutive_failures',
    'broker_token_credentials_rejected',
    'broker_token_last_renewal_timestamp_seconds',
    'broker_token_next_renewal_timestamp_seconds',
    'broker_token_proofs_total',
    'broker_token_last_proof_success_timestamp_seconds',
    'broker_token_invalidations_total',
    'broker_token_renewal_duration_seconds_bucket',
    'broker_token_sink_file_healthy',
    'broker_token_sink_file_present',
    'broker_token_sink_file_mode_ok',
    'broker_token_sink_repairs_total',
    'broker_token_sink_write_failures_total',
    'broker_token_sink_files_cleaned_total',
    'broker_token_slack_notifications_total',
    'broker_token_slack_queue_length',
    'broker_token_build_info',
    'process_resident_memory_bytes',
    'process_cpu_seconds_total',
    'up',
  ];
  assert.deepEqual(
    required.filter((m) => !used.has(m)),
    [],
  );
});

test('a point in time is shown relative to now only when it is set (0 means never)', () => {
  for (const { where, expr } of queries(loadDashboard())) {
    if (!/\btime\(\)/.test(expr)) continue;
    for (const metric of new Set(
      selectors(expr)
        .map((s) => s.metric)
        .filter((m) => m.endsWith('_timestamp_seconds')),
    )) {
      assert.match(expr, new RegExp(`${metric}\\{[^}]*\\}\\s*> 0\\b`), `${where}: ${metric} - time() without a guard against 0`);
    }
  }
});

test('the expiry panel turns red under an hour and orange under six hours', () => {
  const panel: (Panel & { fieldConfig?: { defaults?: { unit?: string; thresholds?: { steps?: { color: string; value: number | null }[] } } } }) | undefined =
    queryPanels(loadDashboard().panels).find((p) => (p.targets ?? []).some((t) => String(t.expr).includes('broker_token_expiry_timestamp_seconds')));
  assert.ok(panel, 'no panel shows the expiry');
  const defaults = panel.fieldConfig?.defaults;
  assert.equal(defaults?.unit, 's');
  assert.deepEqual(
    (defaults?.thresholds?.steps ?? []).map((s) => [s.color, s.value]),
    [
      ['red', null],
      ['orange', 3600],
      ['green', 21600],
    ],
  );
});

// ── Provisioning ─────────────────────────────────────────────────────────────────────────────────────

function readYaml(...path: string[]): unknown {
  return parse(readFileSync(join(DASHBOARDS, 'provisioning', ...path), 'utf8'));
}

test('the provisioned datasource is the default Prometheus the dashboard selects', () => {
  const file = readYaml('datasources', 'prometheus.yml') as { apiVersion?: unknown; datasources?: Record<string, unknown>[] };
  assert.equal(file.apiVersion, 1);
  assert.equal(file.datasources?.length, 1);
  const ds = file.datasources?.[0];
  assert.equal(ds?.name, 'Prometheus');
  assert.equal(ds?.uid, 'prometheus');
  assert.equal(ds?.type, 'prometheus');
  assert.equal(ds?.url, 'http://prometheus:9090');
  assert.equal(ds?.isDefault, true);
  const variable = loadDashboard().templating?.list?.find((v) => v.name === 'datasource');
  assert.equal(variable?.current?.value, ds?.uid, 'the datasource variable defaults to the provisioned uid');
});

test('the dashboard provider reads the folder the README and docker-compose put the dashboards in', () => {
  const file = readYaml('dashboards', 'broker-token-sidecar.yml') as { apiVersion?: unknown; providers?: { type?: unknown; options?: { path?: unknown } }[] };
  assert.equal(file.apiVersion, 1);
  assert.equal(file.providers?.length, 1);
  const provider = file.providers?.[0];
  assert.equal(provider?.type, 'file');
  const path = provider?.options?.path;
  assert.equal(path, '/var/lib/grafana/dashboards');

  const readme = readFileSync(join(DASHBOARDS, 'README.md'), 'utf8');
  assert.ok(readme.includes(`\`dashboards/\` itself at \`${String(path)}\``), 'dashboards/README.md names the mount');
  for (const dir of ['datasources', 'dashboards']) {
    assert.ok(readme.includes(`\`dashboards/provisioning/${dir}\` at \`/etc/grafana/provisioning/${dir}\``), `README: provisioning/${dir}`);
  }

  const composeFile = join(ROOT, 'docker-compose.yml');
  if (!existsSync(composeFile)) return;
  const compose = parse(readFileSync(composeFile, 'utf8')) as { services?: Record<string, { image?: unknown; volumes?: unknown[] }> };
  const grafana = Object.values(compose.services ?? {}).find((s) => String(s.image).startsWith('grafana/grafana'));
  assert.ok(grafana, 'docker-compose.yml has a Grafana service');
  const mounts = (grafana.volumes ?? []).map((v) => String(v).replace(/:ro$/, ''));
  assert.ok(mounts.includes(`./dashboards:${String(path)}`), `Grafana mounts ./dashboards at ${String(path)}: ${mounts.join(', ')}`);
  for (const dir of ['datasources', 'dashboards']) {
    assert.ok(mounts.includes(`./dashboards/provisioning/${dir}:/etc/grafana/provisioning/${dir}`), `Grafana mounts provisioning/${dir}`);
  }
});

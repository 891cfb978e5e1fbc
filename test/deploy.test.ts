import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { parseConfig } from '../src/config/load';
import { runAfterWrite } from '../src/sinks/after-write';
import { exited, spawnForTest, tempDir, until } from './helpers';

const ROOT = join(__dirname, '..', '..');
const K8S = join(ROOT, 'deploy', 'kubernetes');

function which(binary: string): string | undefined {
  return spawnSync('sh', ['-c', `command -v ${binary}`], { encoding: 'utf8' }).stdout.trim() || undefined;
}

function requireTool(t: { skip(message: string): void }, binary: string): string | undefined {
  const found = which(binary);
  if (!found && process.env.CI) throw new Error(`${binary} is required in CI`);
  if (!found) t.skip(`${binary} not installed`);
  return found;
}

type Doc = Record<string, any>;
function kubernetesObjects(): Array<{ file: string; doc: Doc }> {
  const objects: Array<{ file: string; doc: Doc }> = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.ya?ml$/.test(entry.name)) {
        for (const doc of parseAllDocuments(readFileSync(path, 'utf8'))) {
          assert.deepEqual(doc.errors, [], `${path}: YAML errors`);
          objects.push({ file: path.slice(K8S.length + 1), doc: doc.toJS() as Doc });
        }
      }
    }
  };
  walk(K8S);
  return objects;
}

function podSpec(doc: Doc): Doc | undefined {
  if (doc.kind === 'Deployment' || doc.kind === 'StatefulSet') return doc.spec.template.spec;
  if (doc.kind === 'CronJob') return doc.spec.jobTemplate.spec.template.spec;
  return undefined;
}

describe('docker compose', () => {
  test('`docker-compose config` accepts docker-compose.yml, with the simulator and with a real-broker env file', (t) => {
    const compose = requireTool(t, 'docker-compose');
    if (!compose) return;
    const check = spawnSync(compose, ['-f', join(ROOT, 'docker-compose.yml'), 'config', '-q'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
    const real = spawnSync(compose, ['-f', join(ROOT, 'docker-compose.yml'), 'config'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, SIDECAR_ENV_FILE: 'deploy/compose/real.env.example', SIDECAR_CONFIG: 'real.yaml' },
    });
    assert.equal(real.status, 0, real.stderr);
    assert.match(real.stdout, /\/config\/real\.yaml/);
  });

  test('every file the compose project mounts exists, and its sidecar configs are valid', () => {
    const compose = parseYaml(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as Doc;
    for (const [name, service] of Object.entries<Doc>(compose.services)) {
      for (const volume of (service.volumes ?? []) as string[]) {
        const source = volume.split(':')[0]!;
        if (source.startsWith('.')) assert.ok(existsSync(resolve(ROOT, source)), `${name}: ${source} is missing`);
      }
    }
    assert.deepEqual(Object.keys(compose.services).sort(), [
      'alertmanager',
      'bot',
      'grafana',
      'kis-config',
      'prometheus',
      'sidecar',
      'simulator',
      'slack-receiver',
    ]);
    // The sidecar, the bot and the one-shot services run with a read-only root, no capabilities, no privilege escalation.
    const merged = parseYaml(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as Doc;
    for (const name of ['sidecar', 'bot', 'kis-config', 'simulator']) {
      const hardened = merged.services[name] as Doc;
      assert.equal(hardened.read_only, true, `${name}: read_only`);
      assert.deepEqual(hardened.cap_drop, ['ALL'], `${name}: cap_drop`);
      assert.ok((hardened.security_opt as string[]).includes('no-new-privileges:true'), `${name}: no-new-privileges`);
    }
    const env = Object.fromEntries(
      readFileSync(join(ROOT, 'deploy', 'compose', 'simulator.env'), 'utf8')
        .split('\n')
        .filter((l) => /^[A-Z_]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    for (const file of ['simulator.yaml', 'real.yaml']) {
      const path = join(ROOT, 'deploy', 'compose', 'config', file);
      const config = parseConfig(readFileSync(path, 'utf8'), path, '/', { env });
      assert.equal(config.server.host, '0.0.0.0');
      assert.ok(
        config.accounts.every((a) => a.sinks.every((s) => s.access.mode === 0o640)),
        'the app container reads the files as another user',
      );
    }
  });

  test("the bot beside the sidecar: kis_devlp.yaml put beside the token files first, the folder read-only as the bot's ~/KIS/config, a signal after each token", () => {
    const compose = parseYaml(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as Doc;
    const { sidecar, bot } = compose.services;
    const kisConfig = compose.services['kis-config'];
    const path = join(ROOT, 'deploy', 'compose', 'config', 'simulator.yaml');
    const env = { KIS_APP_KEY: `PS${'k'.repeat(34)}`, KIS_APP_SECRET: 's'.repeat(180), KIWOOM_APP_KEY: 'k', KIWOOM_APP_SECRET: 's' };
    const sink = parseConfig(readFileSync(path, 'utf8'), path, '/', { env }).accounts[0]!.sinks.find((s) => s.format === 'kis-auth')!;
    assert.ok(sink.format === 'kis-auth');
    // The same volume is /tokens in the sidecar and the bot's HOME: the sink's folder is the bot's ~/KIS/config.
    const mountOf = (service: Doc, volume: string) => (service.volumes as string[]).find((v) => v.startsWith(`${volume}:`))!.split(':');
    const [, sidecarAt] = mountOf(sidecar, 'tokens');
    const [, , mode] = mountOf(bot, 'tokens');
    assert.equal(mode, 'ro', 'the bot sees the token folder read-only');
    assert.equal(sink.dir.replace(sidecarAt!, bot.environment.HOME), join(bot.environment.HOME, 'KIS', 'config'));
    // kis-config copies the user's kis_devlp.yaml into that folder before the sidecar starts.
    assert.match(
      kisConfig.entrypoint.join(' '),
      new RegExp(`cp /kis_devlp.yaml ${sink.dir.replace(sidecarAt!, mountOf(kisConfig, 'tokens')[1]!)}/kis_devlp.yaml`),
    );
    assert.equal(sidecar.depends_on['kis-config'].condition, 'service_completed_successfully');
    assert.equal(bot.depends_on.sidecar.condition, 'service_healthy');
    assert.equal(bot.pid, 'service:sidecar', 'the sidecar can signal the bot');
    assert.deepEqual(bot.profiles, ['bot']);
    const devlp = parseYaml(readFileSync(join(ROOT, 'deploy', 'compose', 'kis_devlp.yaml'), 'utf8')) as Doc;
    assert.equal(
      devlp.my_app,
      readFileSync(join(ROOT, 'deploy', 'compose', 'simulator.env'), 'utf8').match(/^KIS_APP_KEY=(.*)$/m)![1],
      "the demo kis_devlp.yaml holds the simulator's made-up key",
    );
    assert.match(readFileSync(join(ROOT, 'examples', 'kis-auth', 'Dockerfile'), 'utf8'), /ENTRYPOINT \["python3", "\/bot\/bot\.py"/);
  });

  test('the notify commands of the compose and Kubernetes configs signal the bot, never themselves', async (t) => {
    const commands: Array<[string, string, string]> = [
      [join(ROOT, 'deploy', 'compose', 'config', 'simulator.yaml'), 'python3', '/bot/bot.py'],
      [join(ROOT, 'deploy', 'kubernetes', 'single-pod', 'config.yaml'), 'python3', '/app/bot.py'],
    ];
    for (const [file, interpreter, script] of commands) {
      const text = readFileSync(file, 'utf8');
      const yamlText = file.includes('kubernetes') ? (parseYaml(text) as Doc).data['config.yaml'] : text;
      const raw = parseYaml(yamlText) as Doc;
      const notify = raw.accounts[0].sinks.find((s: Doc) => s.format === 'kis-auth').notify;
      const marker = join(tempDir(t), 'hup');
      // A process whose command line is the bot's, that records SIGHUP.
      const bot = spawnForTest(t, 'bash', [
        '-c',
        `trap 'echo hup > ${marker}; exit 0' HUP; exec -a "${interpreter} ${script} --pid-file /tmp/bot.pid" bash -c 'trap "echo hup > ${marker}; exit 0" HUP; while :; do sleep 0.05; done'`,
      ]);
      await new Promise((r) => setTimeout(r, 300));
      await runAfterWrite(
        { command: notify.command, signal: undefined, pidFile: undefined, timeoutMs: 5_000 },
        { account: 'main', sink: 'kis-auth', path: '/tokens/KIS/config/KIS20261201' },
      );
      await until(`${file}: the bot signalled`, 3_000, () => existsSync(marker), 20);
      assert.equal(await exited(bot), 0);
    }
  });

  test('the Dockerfile is multi-stage, runs as a non-root user and has a HEALTHCHECK', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    assert.equal((dockerfile.match(/^FROM /gm) ?? []).length, 2);
    assert.match(dockerfile, /^USER node$/m);
    assert.match(dockerfile, /^HEALTHCHECK .*\n?.*\/healthz/m);
    assert.match(dockerfile, /^ENTRYPOINT \["node", "\/app\/dist\/src\/cli\.js"\]$/m);
  });
});

describe('Kubernetes examples', () => {
  test('every object parses, and every pod runs as non-root with a read-only root file system', () => {
    const objects = kubernetesObjects();
    assert.ok(objects.length >= 8);
    for (const { file, doc } of objects) {
      assert.ok(doc.apiVersion && doc.kind && doc.metadata?.name, `${file}: apiVersion, kind and metadata.name`);
      const spec = podSpec(doc);
      if (!spec) continue;
      assert.equal(spec.securityContext?.runAsNonRoot, true, `${file}: runAsNonRoot`);
      for (const container of [...(spec.initContainers ?? []), ...spec.containers]) {
        assert.equal(container.securityContext?.readOnlyRootFilesystem, true, `${file} ${container.name}: read-only root`);
        assert.deepEqual(container.securityContext?.capabilities?.drop, ['ALL'], `${file} ${container.name}: capabilities`);
        for (const mount of container.volumeMounts ?? []) {
          assert.ok(
            spec.volumes.some((v: Doc) => v.name === mount.name),
            `${file} ${container.name}: volume ${mount.name}`,
          );
        }
      }
    }
  });

  test('the sidecar pod: a native sidecar probed on /readyz and /healthz, found by the Service and the ServiceMonitor', () => {
    const objects = kubernetesObjects().map((o) => o.doc);
    const deployment = objects.find((d) => d.kind === 'Deployment' && d.metadata.name === 'trading-bot')!;
    const spec = podSpec(deployment)!;
    const sidecar = spec.initContainers.find((c: Doc) => c.name === 'broker-token-sidecar');
    assert.equal(sidecar.restartPolicy, 'Always');
    assert.deepEqual(sidecar.args, ['start', '--config', '/config/config.yaml']);
    assert.equal(sidecar.startupProbe.httpGet.path, '/readyz');
    assert.equal(sidecar.readinessProbe.httpGet.path, '/readyz');
    assert.equal(sidecar.livenessProbe.httpGet.path, '/healthz');
    const portName = sidecar.ports[0].name;
    assert.equal(sidecar.startupProbe.httpGet.port, portName);
    const tokens = spec.volumes.find((v: Doc) => v.name === 'tokens');
    assert.equal(tokens.emptyDir.medium, 'Memory');
    const service = objects.find((d) => d.kind === 'Service' && d.metadata.name === 'broker-token-sidecar')!;
    const podLabels = deployment.spec.template.metadata.labels;
    for (const [key, value] of Object.entries(service.spec.selector)) assert.equal(podLabels[key], value, `Service selector ${key}`);
    assert.equal(service.spec.ports[0].targetPort, portName);
    const monitor = objects.find((d) => d.kind === 'ServiceMonitor')!;
    for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels))
      assert.equal(service.metadata.labels[key], value, `ServiceMonitor selector ${key}`);
    assert.equal(monitor.spec.endpoints[0].port, service.spec.ports[0].name);
    assert.equal(service.metadata.labels[monitor.spec.jobLabel], 'broker-token-sidecar', 'the job label the alert rules expect');
  });

  test('the ConfigMap holds a valid sidecar config whose secret files the pod mounts', () => {
    const objects = kubernetesObjects().map((o) => o.doc);
    const configMap = objects.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'broker-token-sidecar-config')!;
    const secret = objects.find((d) => d.kind === 'Secret')!;
    const files: Record<string, string> = {
      '/secrets/kis-app-key': `PS${'k'.repeat(34)}\n`,
      '/secrets/kis-app-secret': `${'s'.repeat(180)}\n`,
      '/secrets/slack-webhook-url': 'https://hooks.slack.com/services/T/B/x\n',
    };
    const config = parseConfig(configMap.data['config.yaml'], '/config/config.yaml', '/config', {
      env: {},
      readText: (path) => {
        if (!(path in files)) throw Object.assign(new Error('missing'), { code: 'ENOENT' });
        return files[path]!;
      },
    });
    assert.equal(config.stateDir, '/state');
    for (const path of Object.keys(files)) assert.ok(path.slice('/secrets/'.length) in secret.stringData, `${path} is a key of the Secret`);
  });

  test('the replicas example shares one Redis: its config is valid, and its pods can reach the Redis Service', () => {
    const objects = kubernetesObjects().map((o) => o.doc);
    const configMap = objects.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'broker-token-sidecar-shared-config')!;
    const files: Record<string, string> = {
      '/secrets/kis-app-key': `PS${'k'.repeat(34)}\n`,
      '/secrets/kis-app-secret': `${'s'.repeat(180)}\n`,
      '/secrets/redis-password': 'redis-secret\n',
    };
    const config = parseConfig(configMap.data['config.yaml'], '/config/config.yaml', '/config', {
      env: {},
      readText: (path) => {
        if (!(path in files)) throw Object.assign(new Error('missing'), { code: 'ENOENT' });
        return files[path]!;
      },
    });
    assert.equal(config.store.type, 'redis');
    const host = config.store.type === 'redis' ? new URL(config.store.url).hostname : '';
    const service = objects.find((d) => d.kind === 'Service' && d.metadata.name === host);
    assert.ok(service, `a Service named ${host}`);
    const deployment = objects.find((d) => d.kind === 'Deployment' && d.metadata.name === 'trading-bot-replicated')!;
    assert.ok(deployment.spec.replicas > 1);
    const policy = objects.find((d) => d.kind === 'NetworkPolicy')!;
    for (const [key, value] of Object.entries(policy.spec.ingress[0].from[0].podSelector.matchLabels)) {
      assert.equal(deployment.spec.template.metadata.labels[key], value, 'the sidecar pods are let through to Redis');
    }
  });

  test('the generated PrometheusRule and dashboard ConfigMap are up to date with alerts/ and dashboards/', () => {
    const check = spawnSync(process.execPath, [join(ROOT, 'scripts', 'generate-kubernetes.js'), '--check'], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
    const rule = parseYaml(readFileSync(join(K8S, 'generated', 'prometheusrule.yaml'), 'utf8')) as Doc;
    const rules = parseYaml(readFileSync(join(ROOT, 'alerts', 'rules.yml'), 'utf8')) as Doc;
    assert.deepEqual(rule.spec.groups, rules.groups);
    const dashboards = parseYaml(readFileSync(join(K8S, 'generated', 'grafana-dashboard.yaml'), 'utf8')) as Doc;
    assert.equal(dashboards.metadata.labels.grafana_dashboard, '1');
    assert.deepEqual(
      JSON.parse(dashboards.data['broker-token-sidecar.json']),
      JSON.parse(readFileSync(join(ROOT, 'dashboards', 'broker-token-sidecar.json'), 'utf8')),
    );
  });
});

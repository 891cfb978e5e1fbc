/**
 * Measurement 1: /metrics throughput and latency of the sidecar in steady state, against a bare Node server
 * serving the same bytes and against prometheus-node-exporter serving a textfile of the same series, round by
 * round with the same wrk settings.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { BenchEnv } from './env';
import { childEnv, freePort, httpGet, median, progress, startChild, stopChild, until200, type Child } from './lib';
import { GZIP_HEADER, WRK_DURATION, WRK_WARMUP, runWrk, wrkCommand, type WrkResult } from './wrk';

export const ROUNDS = 3;
export const TARGETS = ['sidecar', 'bare', 'node-exporter', 'sidecar-gzip', 'bare-gzip'] as const;
export type Target = (typeof TARGETS)[number];
/** The targets scraped with `Accept-Encoding: gzip`, as Prometheus scrapes. */
const GZIP_TARGETS: ReadonlySet<Target> = new Set(['sidecar-gzip', 'bare-gzip']);
const headersOf = (target: Target): string[] => (GZIP_TARGETS.has(target) ? [GZIP_HEADER] : []);

export interface TargetResult {
  url: string;
  command: string;
  bodyBytes: number;
  series: number;
  rounds: WrkResult[];
  rps: number;
  p50: number;
  p99: number;
}

export interface ScrapeResult {
  accounts: number;
  contentType: string;
  /** The sidecar's answer to a scraper that takes gzip, as Prometheus does (the bytes on the wire). */
  gzipBytes: number;
  /** One compression of the plain body as the sidecar does it (zlib level 1), median of 5, in this process. */
  gzipMs: number;
  targets: Record<Target, TargetResult>;
  /** Medians of the per-round ratios (each round's targets were measured minutes apart at most). */
  sidecarOverBareRps: number;
  /** The same, both serving gzip. */
  sidecarGzipOverBareGzipRps: number;
  sidecarOverExporterRps: number;
  sidecarOverExporterP99: number;
  droppedFamilies: string[];
  commands: { sidecar: string; bare: string; bareGzip: string; exporter: string };
}

/** Lines that are samples, not comments or blank: one per series. */
function seriesCount(text: string): number {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
}

/** The exposition without the families node_exporter exports itself (process_*, nodejs_*), which it would refuse. */
function withoutOwnFamilies(text: string): { text: string; dropped: string[] } {
  const dropped = new Set<string>();
  const keep = text.split('\n').filter((line) => {
    const name = line.startsWith('# ') ? (line.split(' ')[2] ?? '') : (/^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0] ?? '');
    if (/^(process|nodejs)_/.test(name)) {
      dropped.add(name.replace(/_(bucket|sum|count)$/, ''));
      return false;
    }
    return true;
  });
  return { text: keep.join('\n'), dropped: [...dropped] };
}

const NODE_EXPORTER = 'prometheus-node-exporter';

function exporterArgs(dir: string, port: number): string[] {
  return ['--collector.disable-defaults', '--collector.textfile', `--collector.textfile.directory=${dir}`, `--web.listen-address=127.0.0.1:${port}`];
}

export async function measureScrape(env: BenchEnv): Promise<ScrapeResult> {
  const n = env.accounts;
  progress(`/metrics at ${n} accounts: starting the sidecar`);
  const sidecar = env.startSidecar();
  const children: Child[] = [sidecar];
  try {
    await env.waitSteady(sidecar, 300_000);
    const sidecarUrl = `${env.base}/metrics`;
    const first = await httpGet(sidecarUrl);
    if (first.status !== 200) throw new Error(`GET ${sidecarUrl}: ${first.status}`);
    const contentType = String(first.headers['content-type']);
    const bodyText = first.body.toString('utf8');
    progress(`/metrics at ${n} accounts: steady; body ${first.body.length} bytes, ${seriesCount(bodyText)} series (${contentType})`);

    // (a) the bare server with the same bytes
    const bodyFile = join(env.dir, 'metrics-body.txt');
    writeFileSync(bodyFile, first.body);
    const barePort = await freePort();
    const bareArgs = [join(__dirname, 'bare-server.js'), bodyFile, contentType, String(barePort)];
    const bare = startChild(process.execPath, bareArgs, childEnv());
    children.push(bare);
    const bareUrl = `http://127.0.0.1:${barePort}/metrics`;
    await until200('the bare server', bareUrl, bare);
    const bareBody = (await httpGet(bareUrl)).body;
    if (!bareBody.equals(first.body)) throw new Error("the bare server does not serve the sidecar's bytes");

    // (a') the same, gzipped: the sidecar's gzip answer, and the bare server serving those bytes
    const zipped = await httpGet(sidecarUrl, 10_000, { 'accept-encoding': 'gzip' });
    if (zipped.status !== 200 || zipped.headers['content-encoding'] !== 'gzip')
      throw new Error(`GET ${sidecarUrl} with Accept-Encoding: gzip: ${zipped.status}, content-encoding ${String(zipped.headers['content-encoding'])}`);
    const gzipBodyText = gunzipSync(zipped.body).toString('utf8');
    const gzipFile = join(env.dir, 'metrics-body.txt.gz');
    writeFileSync(gzipFile, zipped.body);
    const bareGzipPort = await freePort();
    const bareGzipArgs = [join(__dirname, 'bare-server.js'), gzipFile, contentType, String(bareGzipPort), 'gzip'];
    const bareGzip = startChild(process.execPath, bareGzipArgs, childEnv());
    children.push(bareGzip);
    const bareGzipUrl = `http://127.0.0.1:${bareGzipPort}/metrics`;
    await until200('the bare server (gzip)', bareGzipUrl, bareGzip);

    // (b) node_exporter serving the same series from a textfile
    const textDir = join(env.dir, 'textfile');
    mkdirSync(textDir, { recursive: true });
    const { text: promText, dropped } = withoutOwnFamilies(bodyText);
    writeFileSync(join(textDir, 'sidecar.prom.tmp'), promText);
    renameSync(join(textDir, 'sidecar.prom.tmp'), join(textDir, 'sidecar.prom'));
    const exporterPort = await freePort();
    const exporter = startChild(NODE_EXPORTER, exporterArgs(textDir, exporterPort), childEnv());
    children.push(exporter);
    const exporterUrl = `http://127.0.0.1:${exporterPort}/metrics`;
    await until200('node_exporter', exporterUrl, exporter);
    const exporterText = (await httpGet(exporterUrl, 30_000)).body.toString('utf8');
    if (!/^node_textfile_scrape_error 0$/m.test(exporterText) || !exporterText.includes('broker_token_')) {
      throw new Error(
        `node_exporter did not accept the textfile: ${(/^node_textfile_scrape_error .*$/m.exec(exporterText) ?? ['no node_textfile_scrape_error'])[0]}\n${exporter.output()}`,
      );
    }

    const urls: Record<Target, string> = {
      sidecar: sidecarUrl,
      bare: bareUrl,
      'node-exporter': exporterUrl,
      'sidecar-gzip': sidecarUrl,
      'bare-gzip': bareGzipUrl,
    };
    const bodies: Record<Target, string> = {
      sidecar: bodyText,
      bare: bodyText,
      'node-exporter': exporterText,
      'sidecar-gzip': gzipBodyText,
      'bare-gzip': gzipBodyText,
    };
    const wireBytes: Record<Target, number> = {
      sidecar: first.body.length,
      bare: first.body.length,
      'node-exporter': Buffer.byteLength(exporterText),
      'sidecar-gzip': zipped.body.length,
      'bare-gzip': zipped.body.length,
    };
    for (const target of TARGETS) {
      progress(`/metrics at ${n} accounts: warm-up ${target} (${WRK_WARMUP})`);
      await runWrk(urls[target], WRK_WARMUP, headersOf(target));
    }
    const rounds: Record<Target, WrkResult[]> = { sidecar: [], bare: [], 'node-exporter': [], 'sidecar-gzip': [], 'bare-gzip': [] };
    for (let round = 1; round <= ROUNDS; round++) {
      for (const target of TARGETS) {
        const result = await runWrk(urls[target], WRK_DURATION, headersOf(target));
        rounds[target].push(result);
        progress(
          `/metrics at ${n} accounts, round ${round}/${ROUNDS}, ${target}: ${result.rps} req/s, p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms${result.problems.length ? ` (${result.problems.join('; ')})` : ''}`,
        );
        if (!sidecar.running()) throw new Error(`the sidecar exited during the measurement: ${sidecar.output()}`);
      }
    }
    const targets = {} as Record<Target, TargetResult>;
    for (const target of TARGETS) {
      const r = rounds[target];
      targets[target] = {
        url: urls[target],
        command: wrkCommand(urls[target], WRK_DURATION, headersOf(target)),
        bodyBytes: wireBytes[target],
        series: seriesCount(bodies[target]),
        rounds: r,
        rps: median(r.map((x) => x.rps)),
        p50: median(r.map((x) => x.p50)),
        p99: median(r.map((x) => x.p99)),
      };
    }
    const perRound = (f: (i: number) => number) => median(Array.from({ length: ROUNDS }, (_, i) => f(i)));
    return {
      accounts: n,
      contentType,
      gzipBytes: zipped.body.length,
      gzipMs: median(
        Array.from({ length: 5 }, () => {
          const start = performance.now();
          gzipSync(first.body, { level: 1 });
          return performance.now() - start;
        }),
      ),
      targets,
      sidecarOverBareRps: perRound((i) => rounds.sidecar[i]!.rps / rounds.bare[i]!.rps),
      sidecarGzipOverBareGzipRps: perRound((i) => rounds['sidecar-gzip'][i]!.rps / rounds['bare-gzip'][i]!.rps),
      sidecarOverExporterRps: perRound((i) => rounds.sidecar[i]!.rps / rounds['node-exporter'][i]!.rps),
      sidecarOverExporterP99: perRound((i) => rounds.sidecar[i]!.p99 / rounds['node-exporter'][i]!.p99),
      droppedFamilies: dropped,
      commands: {
        sidecar: env.command(),
        bare: `node dist/bench/bare-server.js ${bodyFile} '${contentType}' ${barePort}`,
        bareGzip: `node dist/bench/bare-server.js ${gzipFile} '${contentType}' ${bareGzipPort} gzip`,
        exporter: `${NODE_EXPORTER} ${exporterArgs(textDir, exporterPort).join(' ')}`,
      },
    };
  } finally {
    for (const child of children.reverse()) await stopChild(child);
  }
}

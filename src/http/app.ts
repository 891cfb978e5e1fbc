import { timingSafeEqual } from 'node:crypto';
import { bearerToken, sha256 } from '../core/wire';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { EventBus } from '../core/events';
import type { SecretRegistry } from '../core/secrets';
import type { RenewOutcome } from '../lifecycle/issuance';
import type { AccountView } from '../lifecycle/views';
import type { MetricsExporter } from '../metrics/exporter';
import { formatIsoInZone } from '../core/time';
import { accountReport } from './status';

/** What the HTTP layer needs from the running sidecar. */
export interface SidecarControl {
  /** True until the sidecar has started every account (its ports are bound before that). */
  startingUp(): boolean;
  views(): AccountView[];
  /** Names of loops that are stuck (a tick running far too long); empty when all is well. */
  stuckLoops(): string[];
  /** Sinks (`account/sink`) with a file operation running far too long; empty when all is well. */
  stuckSinks(): string[];
  renew(account: string, force: boolean): Promise<RenewOutcome | undefined>;
}

interface HttpAppOptions {
  control: SidecarControl;
  metrics: MetricsExporter;
  now: () => number;
  adminToken: string | undefined;
  secrets: SecretRegistry;
  /** Where refused admin requests are reported, to be counted and logged (a guessing client leaves a trace). */
  bus: EventBus;
  /** The gateway's port, when it runs: shown by /healthz, which fails while the port cannot accept. */
  gateway?: () => GatewayHealth | undefined;
}

interface GatewayHealth {
  listening: boolean;
  connections: number;
  maxConnections: number;
  /** New connections refused in the last minute because every place was serving a client. */
  refusedLastMinute: number;
}

/** Bearer token check in constant time (digests have equal length whatever was sent). */
function bearerMatches(header: string | undefined, expected: string): boolean | undefined {
  const presented = bearerToken(header);
  if (presented === undefined) return undefined;
  return timingSafeEqual(sha256(presented), sha256(expected));
}

/**
 * The sidecar's HTTP surface, built without listening so tests call it in-process. Every answer is JSON except
 * /metrics; unknown paths are 404, wrong methods 405 with Allow, bodies over 1 KiB 413. A scrape of exactly
 * `/metrics` goes straight to the exporter's cached bytes: Express's router would cost more than the rest of
 * a small scrape (docs/benchmarks.md). Every other request, other /metrics methods included, goes to Express.
 */
export function createHttpApp(options: HttpAppOptions): RequestListener {
  const serveMetrics = metricsHandler(options.metrics);
  const app = createExpressApp(options, serveMetrics);
  return (req, res) => {
    if ((req.method === 'GET' || req.method === 'HEAD') && (req.url === '/metrics' || req.url?.startsWith('/metrics?'))) {
      serveMetrics(req, res);
      return;
    }
    app(req, res);
  };
}

/**
 * Whether the client takes gzip: `gzip` or `*` listed in Accept-Encoding without `q=0`. Prometheus always
 * sends `Accept-Encoding: gzip`.
 */
export function acceptsGzip(header: string | undefined): boolean {
  return (header ?? '').split(',').some((entry) => {
    const [coding, ...params] = entry.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return (coding === 'gzip' || coding === '*') && (q === undefined || Number(q.slice(2)) > 0);
  });
}

/** Answers a scrape: Prometheus text, or OpenMetrics when the scraper asks for it, gzipped when it takes gzip. */
function metricsHandler(metrics: MetricsExporter): (req: IncomingMessage, res: ServerResponse) => void {
  const send = (req: IncomingMessage, res: ServerResponse, headers: Record<string, string>, parts: Buffer[]) => {
    res.writeHead(200, { ...headers, vary: 'accept-encoding', 'content-length': String(parts.reduce((n, part) => n + part.length, 0)) });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    // One writev for all the parts, not a write each.
    res.cork();
    for (const part of parts.slice(0, -1)) res.write(part);
    res.end(parts[parts.length - 1]);
    res.uncork();
  };
  const fail = (res: ServerResponse) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify({ error: 'internal error' }));
  };
  return (req, res) => {
    const openMetrics = (req.headers.accept ?? '').includes('application/openmetrics-text');
    if (acceptsGzip(req.headers['accept-encoding'])) {
      metrics.renderGzip(openMetrics).then(
        ({ contentType, body }) => send(req, res, { 'content-type': contentType, 'content-encoding': 'gzip' }, [body]),
        () => fail(res),
      );
      return;
    }
    metrics.renderParts(openMetrics).then(
      ({ contentType, parts }) => send(req, res, { 'content-type': contentType }, parts),
      () => fail(res),
    );
  };
}

/** Everything but the fast path: JSON endpoints and the 404/405/413 answers. */
function createExpressApp(options: HttpAppOptions, serveMetrics: (req: IncomingMessage, res: ServerResponse) => void): express.Express {
  const { control, now, adminToken, secrets, bus } = options;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('json spaces', 2);

  const allow = (methods: string) => (req: Request, res: Response, next: NextFunction) => {
    if (methods.split(', ').includes(req.method) || (req.method === 'HEAD' && methods.includes('GET'))) return next();
    res
      .set('allow', methods)
      .status(405)
      .json({ error: `method ${req.method} not allowed; use ${methods}` });
  };

  app.all('/metrics', allow('GET'), (req, res) => serveMetrics(req, res));

  app.all('/healthz', allow('GET'), (_req, res) => {
    const stuckLoops = control.stuckLoops();
    const stuckSinks = control.stuckSinks();
    const gateway = options.gateway?.();
    // A gateway whose listener closed takes no client any more: a restart is what brings it back.
    const gatewayDown = gateway !== undefined && !gateway.listening;
    const ok = stuckLoops.length === 0 && stuckSinks.length === 0 && !gatewayDown;
    const status = ok ? 'ok' : gatewayDown ? 'gateway_down' : 'stuck';
    res.status(ok ? 200 : 503).json({
      status,
      stuckLoops,
      stuckSinks,
      ...(gateway ? { gateway: { ...gateway, accepting: gateway.listening && gateway.refusedLastMinute === 0 } } : {}),
    });
  });

  app.all('/readyz', allow('GET'), (_req, res) => {
    // The port is bound before the accounts start, and an orchestrator polls: while they start, the answer costs
    // nothing (going over a thousand accounts' state takes ~10 ms, and a tight poll starved the start-up itself).
    if (control.startingUp()) {
      res.status(503).json({ ready: false, startingUp: true });
      return;
    }
    const views = control.views();
    const accounts = views.map((v) => ({
      account: v.snapshot.ref.name,
      ready: v.ready,
      state: v.snapshot.status,
      sinks: v.sinks.map((s) => ({ name: s.name, healthy: s.healthy })),
    }));
    const ready = views.length > 0 && views.every((v) => v.ready);
    res.status(ready ? 200 : 503).json({ ready, accounts });
  });

  app.all('/status', allow('GET'), (_req, res) => {
    const at = now();
    res.json(secrets.redactDeep({ time: formatIsoInZone(at), accounts: control.views().map((v) => accountReport(v, at)) }));
  });

  app.all('/renew/:account', allow('POST'), express.json({ limit: '1kb' }), async (req, res, next) => {
    if (adminToken === undefined) {
      res.status(404).json({ error: 'admin endpoints are off; set server.adminToken or server.adminTokenFile to use them' });
      return;
    }
    const authorized = bearerMatches(req.get('authorization'), adminToken);
    if (authorized !== true) {
      // What was presented stays here: the event names the reason and the peer only.
      bus.emit('http.admin_auth_failed', { reason: authorized === undefined ? 'missing' : 'wrong', remoteAddress: req.socket.remoteAddress });
    }
    if (authorized === undefined) {
      res.set('www-authenticate', 'Bearer').status(401).json({ error: 'missing bearer token' });
      return;
    }
    if (!authorized) {
      res.status(403).json({ error: 'wrong bearer token' });
      return;
    }
    try {
      const force = typeof req.query.force === 'string' && ['1', 'true', 'yes'].includes(req.query.force);
      const account = String(req.params.account);
      const outcome = await control.renew(account, force);
      if (!outcome) {
        res.status(404).json({ error: `no account named "${account}"` });
        return;
      }
      sendRenewOutcome(res, outcome, now());
    } catch (error) {
      next(error);
    }
  });

  app.use((_req, res) => {
    res.status(404).json({ error: 'not found; try /metrics, /healthz, /readyz or /status' });
  });

  // Errors are answered with their status and a redacted message, never a stack.
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = (error as { status?: number }).status ?? 500;
    const message = status === 413 ? 'request body too large' : status < 500 ? 'bad request' : 'internal error';
    res.status(status).json({ error: secrets.redact(message) });
  });

  return app;
}

function sendRenewOutcome(res: Response, outcome: RenewOutcome, now: number): void {
  switch (outcome.result) {
    case 'issued':
      res.status(200).json({ result: 'issued', expiresAt: formatIsoInZone(outcome.expiresAt) });
      return;
    case 'same_token':
      res.status(200).json({ result: 'same_token', nextAttemptAt: formatIsoInZone(outcome.nextAttemptAt) });
      return;
    case 'failed':
      res.status(502).json({ result: 'failed', reason: outcome.reason, message: outcome.message });
      return;
    case 'wait': {
      if (outcome.why === 'renewal_planned') {
        res
          .status(200)
          .json({ result: 'not_needed', message: 'the token is valid; add ?force=true to replace it anyway', plannedAt: formatIsoInZone(outcome.until) });
        return;
      }
      const seconds = Math.max(1, Math.ceil((outcome.until - now) / 1000));
      if (outcome.why === 'auth_rejected') {
        res.status(409).json({
          result: 'blocked',
          reason: 'auth_rejected',
          message: 'the broker rejected these credentials; fix them, or add ?force=true to try once more',
        });
        return;
      }
      res.set('retry-after', String(seconds)).status(429).json({ result: 'wait', why: outcome.why, retryAfterSeconds: seconds });
      return;
    }
  }
}

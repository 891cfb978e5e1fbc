import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { SecretRegistry } from '../core/secrets';
import type { RenewOutcome } from '../lifecycle/account';
import type { AccountView, MetricsExporter } from '../metrics/exporter';
import { formatIsoInZone } from '../core/time';
import { accountReport } from './status';

/** What the HTTP layer needs from the running sidecar. */
export interface SidecarControl {
  views(): AccountView[];
  /** Names of loops that are stuck (a tick running far too long); empty when all is well. */
  stuckLoops(): string[];
  renew(account: string, force: boolean): Promise<RenewOutcome | undefined>;
}

export interface HttpAppOptions {
  control: SidecarControl;
  metrics: MetricsExporter;
  now: () => number;
  adminToken: string | undefined;
  secrets: SecretRegistry;
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/** Bearer token check in constant time (digests have equal length whatever was sent). */
function bearerMatches(header: string | undefined, expected: string): boolean | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!match) return undefined;
  return timingSafeEqual(digest(match[1]!), digest(expected));
}

/**
 * The sidecar's HTTP surface, built without listening so tests call it in-process. Every answer is JSON except
 * /metrics; unknown paths are 404, wrong methods 405 with Allow, bodies over 1 KiB 413.
 */
export function createHttpApp(options: HttpAppOptions): express.Express {
  const { control, metrics, now, adminToken, secrets } = options;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('json spaces', 2);

  const allow = (methods: string) => (req: Request, res: Response, next: NextFunction) => {
    if (methods.split(', ').includes(req.method) || (req.method === 'HEAD' && methods.includes('GET'))) return next();
    res.set('allow', methods).status(405).json({ error: `method ${req.method} not allowed; use ${methods}` });
  };

  app.all('/metrics', allow('GET'), async (req, res, next) => {
    try {
      const openMetrics = (req.get('accept') ?? '').includes('application/openmetrics-text');
      const { contentType, parts } = await metrics.renderParts(openMetrics);
      res.set({ 'content-type': contentType, 'content-length': String(parts.reduce((n, part) => n + part.length, 0)) });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      for (const part of parts.slice(0, -1)) res.write(part);
      res.end(parts[parts.length - 1]);
    } catch (error) {
      next(error);
    }
  });

  app.all('/healthz', allow('GET'), (_req, res) => {
    const stuck = control.stuckLoops();
    res.status(stuck.length === 0 ? 200 : 503).json({ status: stuck.length === 0 ? 'ok' : 'stuck', stuckLoops: stuck });
  });

  app.all('/readyz', allow('GET'), (_req, res) => {
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
    if (authorized === undefined) {
      res.set('www-authenticate', 'Bearer').status(401).json({ error: 'missing bearer token' });
      return;
    }
    if (!authorized) {
      res.status(403).json({ error: 'wrong bearer token' });
      return;
    }
    try {
      const force = ['1', 'true', 'yes'].includes(String(req.query.force ?? ''));
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
        res.status(200).json({ result: 'not_needed', message: 'the token is valid; add ?force=true to replace it anyway', plannedAt: formatIsoInZone(outcome.until) });
        return;
      }
      const seconds = Math.max(1, Math.ceil((outcome.until - now) / 1000));
      if (outcome.why === 'auth_rejected') {
        res.status(409).json({ result: 'blocked', reason: 'auth_rejected', message: 'the broker rejected these credentials; fix them, or add ?force=true to try once more' });
        return;
      }
      res.set('retry-after', String(seconds)).status(429).json({ result: 'wait', why: outcome.why, retryAfterSeconds: seconds });
      return;
    }
  }
}

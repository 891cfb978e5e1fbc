/**
 * BrokerSimulator: one express app serving both simulated brokers (their paths do not collide) and the
 * control API. It logs nothing, so no secret can leak through it; tests read what happened from stats()
 * and requestLog().
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type ErrorRequestHandler, type Express } from 'express';
import { ApprovalKeyBook } from './approval-keys';
import { CONTROL_PREFIX, controlRouter, type SimulatorControl } from './control';
import { resolveSettings, type BrokerContext } from './context';
import { CredentialBook } from './credentials';
import { brokerEndpoint, type EndpointDeps } from './endpoint';
import { FaultQueue, PendingTimers } from './faults';
import { TokenLedger } from './ledger';
import { ApprovalSpacing, PerApiIdBuckets, PerSecondQuota } from './limits';
import { OrderNumbers } from './orders';
import { brokerRoutes } from './routes';
import { realtimeRouter, REALTIME_CONTROL_PATH } from './realtime/control';
import { RealtimeSimulator } from './realtime/hub';
import { parseCredential, parseFaultSpec } from './schemas';
import { StatsBook } from './stats';
import { KisJwtMinter } from './token-format';
import type { FaultSpec, RequestRecord, SimulatorCredential, SimulatorOptions, SimulatorStats } from './types';

const BODY_LIMIT = '1mb';

export class BrokerSimulator implements SimulatorControl {
  readonly app: Express;
  private readonly ctx: BrokerContext;
  private readonly faults = new FaultQueue();
  private readonly timers = new PendingTimers();
  private readonly statsBook = new StatsBook();
  /** The brokers' WebSockets on the same port: `/tryitout` (KIS) and `/api/dostk/websocket` (Kiwoom). */
  readonly realtime: RealtimeSimulator;
  private server: Server | undefined;

  constructor(options: SimulatorOptions) {
    const settings = resolveSettings(options);
    this.ctx = {
      clock: options.clock,
      settings,
      credentials: new CredentialBook(options.credentials.map((c) => parseCredential(c))),
      ledger: new TokenLedger(settings),
      approvals: new ApprovalSpacing(settings.approvalSpacingMs),
      approvalKeys: new ApprovalKeyBook(),
      quota: new PerSecondQuota(),
      kiwoomCalls: new PerApiIdBuckets(settings.kiwoomCallsPerSecond, settings.kiwoomCallBurst),
      orderNumbers: new OrderNumbers(),
      kisJwt: new KisJwtMinter(),
    };
    this.realtime = new RealtimeSimulator({ clock: options.clock, approvalKeys: this.ctx.approvalKeys, ledger: this.ctx.ledger }, options.realtime);
    this.app = this.buildApp();
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    if (this.server) throw new Error('simulator is already listening');
    const server = createServer(this.app);
    server.on('upgrade', (req, socket, head) => this.realtime.handleUpgrade(req, socket, head));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => {
        this.server = undefined; // a failed listen can be retried
        reject(error);
      };
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    const hostPart = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${hostPart}:${address.port}`;
  }

  /** The listening server, for tests that watch the connections themselves. */
  get httpServer(): Server | undefined {
    return this.server;
  }

  /** Closes promptly: hung requests, keep-alive connections and pending delays are all cut. */
  async close(): Promise<void> {
    this.timers.cancelAll();
    this.realtime.close();
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  stats(appKey?: string): SimulatorStats {
    return this.statsBook.stats(appKey);
  }

  requestLog(): RequestRecord[] {
    return this.statsBook.requests();
  }

  injectFault(fault: FaultSpec): void {
    this.faults.add(parseFaultSpec(fault));
  }

  clearFaults(): void {
    this.faults.clear();
  }

  maintenance(): void {
    this.ctx.ledger.invalidateAll(this.ctx.clock.now());
  }

  addCredential(credential: SimulatorCredential): void {
    this.ctx.credentials.add(parseCredential(credential));
  }

  reset(): void {
    this.ctx.ledger.clear();
    this.ctx.approvals.clear();
    this.ctx.approvalKeys.clear();
    this.realtime.reset();
    this.ctx.quota.clear();
    this.ctx.kiwoomCalls.clear();
    this.faults.clear();
    this.statsBook.clear();
  }

  private buildApp(): Express {
    const app = express();
    app.disable('x-powered-by');
    app.set('etag', false);
    // Bodies are read as text whatever their content-type, so a malformed one gets the broker's own answer.
    app.use(express.text({ type: () => true, limit: BODY_LIMIT }));
    app.use(CONTROL_PREFIX + REALTIME_CONTROL_PATH, realtimeRouter(this.realtime));
    app.use(CONTROL_PREFIX, controlRouter(this));

    const deps: EndpointDeps = {
      clock: this.ctx.clock,
      faults: this.faults,
      timers: this.timers,
      stats: this.statsBook,
    };
    for (const { method, path, spec } of brokerRoutes(this.ctx)) app[method](path, brokerEndpoint(deps, spec));

    app.use((req, res) => {
      res.status(404).json({ error: `the simulator has no endpoint ${req.method} ${req.path}` });
    });
    app.use(bodyErrorHandler);
    return app;
  }
}

/** Bodies the text parser refused (too large, unknown charset) are answered plainly; nothing else throws. */
const bodyErrorHandler: ErrorRequestHandler = (error: unknown, _req, res, _next) => {
  const status = (error as { status?: unknown }).status;
  res.status(typeof status === 'number' ? status : 500);
  const message = error instanceof Error ? error.message : 'simulator error';
  res.json({ error: message });
};

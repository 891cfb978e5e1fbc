/**
 * The real-time endpoint: a WebSocket port of its own (`realtime.port`), speaking each broker's own protocol, so
 * an unchanged client changes one URL: KIS at `/{account}/tryitout` (kis_devlp.yaml's `ops`, python-kis's
 * websocket domain), Kiwoom at `/{account}/api/dostk/websocket`; without the account, the credential names it.
 *
 * Why a port of its own rather than the gateway's: every client already configures its WebSocket host apart from
 * its REST host (`ops` beside `prod`, python-kis's two domains, Kiwoom's socket URL), so a second port costs a
 * user nothing; and its connections live for hours, where the gateway's connection guard rightly evicts an HTTP
 * connection that has been idle a while. Here the policy is the other way round: an authenticated session is never
 * evicted; a newcomer may take only the place of one that has not authenticated; when every place serves a client
 * the newcomer is refused (503 before the upgrade).
 *
 * Authentication (the gateway's credentials, src/gateway/): a KIS client's every message carries the approval key
 * the gateway's `Approval` gave it (local-approval-keys.ts), a Kiwoom client logs in with its local token. A refused
 * client gets the broker's own error and its socket stays open, closed only after UNAUTHENTICATED_HOLD_MS: the
 * official KISWebSocket reconnects at once after any close, so closing at once would invite a hot loop.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { SidecarConfig } from '../config/types';
import type { Clock } from '../core/clock';
import type { EventBus } from '../core/events';
import type { GatewayCredentials } from '../gateway/start';
import type { GatewayAccount } from '../gateway/types';
import { mayUse } from '../gateway/clients';
import { ClientConnection } from './client';
import { KisSession } from './kis-session';
import { isFillTr, KIS_ANSWERS, kisControl, kisPingpong, readKisClientMessage } from './kis-wire';
import { KiwoomSession } from './kiwoom-session';
import { KIWOOM_PING, KIWOOM_REFUSALS, kiwoomAnswer, readKiwoomClientMessage } from './kiwoom-wire';
import type { SessionContext, SharedSession } from './session';
import { UPGRADE_MARGIN } from './limits';
import type { ReplicaRelay } from './replicas';

interface RealtimeStart {
  config: SidecarConfig;
  account(name: string): GatewayAccount | undefined;
  credentials: GatewayCredentials;
  bus: EventBus;
  clock: Clock;
  random?: () => number;
  /** With replicas (a Redis store): a KIS account's part in the deployment's one session (replicas.ts). */
  relay?: (account: GatewayAccount) => ReplicaRelay;
}

export interface RunningRealtime {
  url: string;
  /** Client connections now, and the most allowed. */
  readonly connections: number;
  readonly maxClients: number;
  readonly listening: boolean;
  close(): Promise<void>;
}

// Client messages are a few hundred bytes (a registration); anything this long is no client's.
const MAX_CLIENT_MESSAGE_BYTES = 64 * 1024;
/** A connection that has not authenticated (silent, or refused) is closed this long after its last chance. */
const UNAUTHENTICATED_HOLD_MS = 60_000;
/** A newcomer may evict an unauthenticated connection only once that one had this long to present a credential. */
const NEWCOMER_GRACE_MS = 1_000;
/** How often slow clients, silent ones, snapshots and token changes are looked at. */
const SWEEP_MS = 250;
const SNAPSHOT_MS = 1_000;
/** At shutdown, how long clients have to answer the close frame before their sockets are cut. */
const SHUTDOWN_CLOSE_MS = 1_000;

const KIS_PATH = /^(?:\/([a-z0-9][a-z0-9_-]{0,62}))?\/tryitout(?:\/[A-Za-z0-9]{1,16})?\/?$/;
const KIWOOM_PATH = /^(?:\/([a-z0-9][a-z0-9_-]{0,62}))?\/api\/dostk\/websocket\/?$/;

type Provider = 'kis' | 'kiwoom';

interface Route {
  provider: Provider;
  /** The account the path names, if it names one. */
  account: string | undefined;
}

export async function startRealtime(start: RealtimeStart): Promise<RunningRealtime> {
  const endpoint = new RealtimeEndpoint(start);
  return endpoint.listen();
}

class RealtimeEndpoint {
  private readonly config: SidecarConfig['realtime'];
  private readonly sessions = new Map<string, KisSession | KiwoomSession>();
  private readonly relays = new Map<string, ReplicaRelay>();
  private readonly connections = new Set<ClientConnection>();
  private readonly routes = new WeakMap<ClientConnection, Route>();
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CLIENT_MESSAGE_BYTES, perMessageDeflate: false });
  private readonly server: Server;
  private readonly stop = new AbortController();
  private loops: Promise<void>[] = [];
  private lastSnapshots = new Map<string, string>();

  constructor(private readonly start: RealtimeStart) {
    this.config = start.config.realtime;
    for (const account of start.config.accounts) {
      const gatewayAccount = start.account(account.name);
      if (!gatewayAccount) continue;
      const followed = following(gatewayAccount, () => start.account(account.name));
      const relay = start.relay?.(followed);
      if (relay) this.relays.set(account.name, relay);
      const ctx: SessionContext = {
        account: followed,
        clock: start.clock,
        random: start.random ?? Math.random,
        policy: { ...this.config, reconnect: this.config.reconnect },
        bus: start.bus,
        fills: this.config.fills,
        relay: relay?.carriers(),
      };
      this.sessions.set(account.name, account.provider === 'kis' ? new KisSession(ctx) : new KiwoomSession(ctx));
    }
    this.server = createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain', connection: 'close', upgrade: 'websocket' });
      res.end('the real-time endpoint takes WebSocket connections only: /{account}/tryitout (KIS), /{account}/api/dostk/websocket (Kiwoom)\n');
    });
    this.server.headersTimeout = 5_000;
    this.server.requestTimeout = 5_000;
    this.server.maxConnections = this.config.maxClients + UPGRADE_MARGIN;
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
  }

  async listen(): Promise<RunningRealtime> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.port, this.config.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.server.on('error', () => undefined);
    this.loops = [this.every(SWEEP_MS, () => this.sweep()), this.every(SNAPSHOT_MS, () => this.snapshots()), this.keepAlive()];
    for (const relay of this.relays.values()) relay.start();
    for (const session of this.sessions.values()) session.begin();
    this.snapshots();
    const address = this.server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const { server, connections } = this;
    let closing: Promise<void> | undefined;
    return {
      url: `ws://${host}:${address.port}`,
      get connections() {
        return connections.size;
      },
      maxClients: this.config.maxClients,
      get listening() {
        return server.listening;
      },
      close: () => (closing ??= this.close()),
    };
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const route = this.routeOf(req.url);
    if (!route) return rejectUpgrade(socket, 404, 'Not Found');
    if (this.connections.size >= this.config.maxClients && !this.evictOne()) {
      this.start.bus.emit('realtime.refused', { account: null, client: null, reason: 'full', code: '503' });
      return rejectUpgrade(socket, 503, 'Service Unavailable');
    }
    this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      const connection = new ClientConnection(ws, (socket as Socket).remoteAddress, this.start.clock, this.config.client);
      this.connections.add(connection);
      this.routes.set(connection, route);
      this.start.bus.emit('realtime.client', { account: null, client: null, change: 'opened', reason: null, queuedBytes: 0 });
      connection.whenClosed((reason) => {
        this.connections.delete(connection);
        const session = connection.account === undefined ? undefined : this.sessions.get(connection.account);
        this.start.bus.emit('realtime.client', {
          account: session?.ref ?? null,
          client: connection.client ?? null,
          change: 'closed',
          reason,
          queuedBytes: connection.queuedAtClose,
        });
      });
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (!connection.open) return;
        connection.heard();
        if (isBinary) return;
        const text = data.toString('utf8');
        if (route.provider === 'kis') this.kisMessage(connection, route, text);
        else void this.kiwoomMessage(connection, route, text);
      });
    });
  }

  /** The route a path names: its broker, and its account if named (which must exist and be of that broker). */
  private routeOf(url: string | undefined): Route | undefined {
    let path: string;
    try {
      path = new URL(url ?? '/', 'http://endpoint').pathname;
    } catch {
      return undefined;
    }
    const kis = KIS_PATH.exec(path);
    const kiwoom = kis ? null : KIWOOM_PATH.exec(path);
    const match = kis ?? kiwoom;
    if (!match) return undefined;
    const provider: Provider = kis ? 'kis' : 'kiwoom';
    const account = match[1];
    if (account !== undefined && this.start.account(account)?.config.provider !== provider) return undefined;
    return { provider, account };
  }

  /** A KIS client's message: every one carries the approval key, checked against the connection's client. */
  private kisMessage(connection: ClientConnection, route: Route, text: string): void {
    const message = readKisClientMessage(text);
    if (message.kind === 'pingpong') return;
    if (message.kind === 'malformed') {
      connection.send(kisControl(message.answer, message.trId, message.trKey, false));
      this.refuse(connection, 'malformed', message.answer.code);
      return;
    }
    const who = message.approvalKey === undefined ? undefined : this.start.credentials.approvalKeys.verify(message.approvalKey);
    const refusal = this.bindOrRefuse(connection, route, who, 'kis');
    if (refusal) {
      connection.send(kisControl(KIS_ANSWERS.approvalNotFound, message.trId, message.trKey, isFillTr(message.trId), undefined, refusal.note));
      this.refuse(connection, refusal.reason, KIS_ANSWERS.approvalNotFound.code);
      return;
    }
    const session = this.sessions.get(connection.account!) as KisSession;
    if (message.refusal) {
      connection.send(kisControl(message.refusal, message.trId, message.trKey, isFillTr(message.trId)));
      this.refuse(connection, 'malformed', message.refusal.code);
      return;
    }
    session.request(connection, message);
  }

  /** A Kiwoom client's message: LOGIN with its local token binds it; REG and REMOVE need that first. */
  private async kiwoomMessage(connection: ClientConnection, route: Route, text: string): Promise<void> {
    const message = readKiwoomClientMessage(text);
    if (message.kind === 'ping' || message.kind === 'ignored') return;
    if (message.kind === 'refused') {
      connection.send(kiwoomAnswer(message.trnm, message.refusal));
      this.refuse(connection, 'malformed', String(message.refusal.returnCode));
      return;
    }
    if (message.kind === 'login') {
      const verified = message.token === undefined ? 'invalid' : await this.start.credentials.tokens.verify(message.token, this.start.clock.now());
      if (!connection.open) return;
      const who = typeof verified === 'string' ? undefined : { client: verified.client, account: verified.account };
      const refusal = this.bindOrRefuse(connection, route, who, 'kiwoom');
      if (refusal) {
        connection.send(kiwoomAnswer('LOGIN', KIWOOM_REFUSALS.tokenInvalid(typeof verified === 'string' ? `local token ${verified}` : refusal.note)));
        this.refuse(connection, refusal.reason, '8005');
        return;
      }
      connection.send((this.sessions.get(connection.account!) as KiwoomSession).loginAnswer);
      return;
    }
    if (connection.account === undefined) {
      connection.send(kiwoomAnswer(message.trnm, KIWOOM_REFUSALS.tokenInvalid('LOGIN first, with the local token the gateway gave')));
      this.refuse(connection, 'unauthenticated', '8005');
      return;
    }
    (this.sessions.get(connection.account) as KiwoomSession).change(connection, message.trnm, message.group, message.refresh, message.pairs);
  }

  /**
   * Binds a connection to the client and account its credential names, on its first accepted message; after
   * that a credential must name the same. Returns why it is refused, if it is.
   */
  private bindOrRefuse(
    connection: ClientConnection,
    route: Route,
    who: { client: string; account: string } | undefined,
    provider: Provider,
  ): { reason: 'unauthenticated' | 'forbidden'; note: string } | undefined {
    if (!who) return { reason: 'unauthenticated', note: 'not a credential of this sidecar: use the one its gateway gave' };
    const client = this.start.credentials.clients.byClientName(who.client);
    const session = this.sessions.get(who.account);
    if (!client) return { reason: 'unauthenticated', note: 'a credential of no current client' };
    if (!session || this.start.account(who.account)?.config.provider !== provider || !mayUse(client, who.account)) {
      return { reason: 'forbidden', note: `this client may not use ${who.account}` };
    }
    if (route.account !== undefined && route.account !== who.account)
      return { reason: 'forbidden', note: `the credential is for another account than ${route.account}` };
    if (connection.client !== undefined) {
      return connection.client === who.client && connection.account === who.account
        ? undefined
        : { reason: 'forbidden', note: "another client's credential on this connection" };
    }
    connection.client = who.client;
    connection.account = who.account;
    connection.refusedAt = undefined;
    session.attach(connection);
    return undefined;
  }

  private refuse(connection: ClientConnection, reason: 'unauthenticated' | 'forbidden' | 'malformed', code: string): void {
    if (!connection.authenticated) connection.refusedAt = this.start.clock.monotonic();
    const session = connection.account === undefined ? undefined : this.sessions.get(connection.account);
    this.start.bus.emit('realtime.refused', { account: session?.ref ?? null, client: connection.client ?? null, reason, code });
  }

  /** Makes room for a newcomer: the oldest connection that has not authenticated and had its chance. */
  private evictOne(): boolean {
    const settled = this.start.clock.monotonic() - NEWCOMER_GRACE_MS;
    for (const connection of this.connections) {
      if (!connection.authenticated && connection.connectedAt <= settled) {
        connection.close('evicted', 'its place was needed and it had not authenticated');
        return true;
      }
    }
    return false;
  }

  /** Slow clients closed by their bound even when no frame comes for them; unauthenticated ones after their hold. */
  private sweep(): void {
    const now = this.start.clock.monotonic();
    for (const connection of [...this.connections]) {
      if (connection.overBound())
        connection.close('slow', `client too slow: over ${this.config.client.maxQueueBytes} bytes or ${this.config.client.maxQueueDelayMs} ms behind`);
      else if (!connection.authenticated && now - (connection.refusedAt ?? connection.connectedAt) > UNAUTHENTICATED_HOLD_MS) {
        connection.close(connection.refusedAt === undefined ? 'silent' : 'refused', 'no accepted credential');
      }
    }
    for (const session of this.sessions.values()) if (session instanceof KiwoomSession) session.tick();
  }

  /** The broker's own keep-alive, on the endpoint's clock, whatever the upstream does: clients see one rhythm. */
  private async keepAlive(): Promise<void> {
    const interval = this.config.client.pingIntervalMs;
    while (!this.stop.signal.aborted) {
      await this.start.clock.sleep(interval, this.stop.signal);
      if (this.stop.signal.aborted) return;
      for (const session of this.sessions.values()) {
        session.keepAlive(session instanceof KisSession ? kisPingpong(this.start.clock.now()) : KIWOOM_PING, 3 * interval);
      }
    }
  }

  /** Each session's snapshot, emitted when it changed (or frames moved): the metrics and the alerts read it. */
  private snapshots(): void {
    for (const [name, session] of this.sessions) {
      const snapshot = session.snapshot();
      const { framesIn, framesOut, ...gauges } = snapshot;
      const key = JSON.stringify(gauges);
      if (framesIn === 0 && framesOut === 0 && this.lastSnapshots.get(name) === key) continue;
      this.lastSnapshots.set(name, key);
      this.start.bus.emit('realtime.snapshot', snapshot);
    }
    for (const relay of this.relays.values()) this.start.bus.emit('realtime.relay', relay.snapshot());
  }

  private async every(ms: number, run: () => void): Promise<void> {
    while (!this.stop.signal.aborted) {
      await this.start.clock.sleep(ms, this.stop.signal);
      if (!this.stop.signal.aborted) run();
    }
  }

  private async close(): Promise<void> {
    this.stop.abort();
    const sockets = [...this.connections].map((connection) => connection.ws);
    for (const connection of [...this.connections]) connection.close('shutdown', 'the sidecar is stopping');
    for (const session of this.sessions.values()) (session as SharedSession).stop();
    // The deployment's session closed (if this replica held it) before its lease is given back.
    await Promise.all([...this.relays.values()].map((relay) => relay.stop()));
    this.snapshots();
    await Promise.all(this.loops);
    // A client has a moment to answer the close frame; then its socket goes, so the port closes within a bound.
    await until(() => sockets.every((ws) => ws.readyState === ws.CLOSED), SHUTDOWN_CLOSE_MS);
    for (const ws of sockets) ws.terminate();
    this.wss.close();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.server.closeAllConnections(), 2_000);
      this.server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      this.server.closeIdleConnections();
    });
  }
}

/**
 * The account as the sidecar has it now: a config reload that changes an account replaces its lifecycle, and the
 * session must ask the new one for its token and approval key (its name, provider and URLs are read at start).
 */
function following(first: GatewayAccount, current: () => GatewayAccount | undefined): GatewayAccount {
  return {
    config: first.config,
    ref: first.ref,
    token: () => current()?.token(),
    tokenRefused: (accessToken) => current()?.tokenRefused(accessToken) ?? Promise.resolve(),
    approvalKey: () => current()?.approvalKey() ?? Promise.resolve({ retryAfterMs: 5_000 }),
  };
}

async function until(done: () => boolean, boundMs: number): Promise<void> {
  for (let waited = 0; waited < boundMs && !done(); waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
}

function rejectUpgrade(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ConnectionDropReason } from '../core/errors';
import { guardConnections, type ConnectionGuard } from './connection-guard';
import { MAX_CONNECTIONS } from './descriptors';

/**
 * Listens for the sidecar's request handler with the timeouts a sidecar needs against slow or stuck clients, at most
 * `maxConnections` connections at once (see connection-guard.ts), and closes within a bound on shutdown.
 */
export interface RunningServer {
  url: string;
  maxConnections: number;
  guard: ConnectionGuard;
  /** False once the listener closed or failed: no new connection can be accepted. */
  readonly listening: boolean;
  close(boundMs?: number): Promise<void>;
}

interface ListenLimits {
  /** From the descriptor limit (descriptors.ts); the most a sidecar's clients could need when not given. */
  maxConnections?: number;
  onDrop?: (reason: ConnectionDropReason, remoteAddress: string | undefined) => void;
  /** Requests count as a client's only once the handler says so (connection-guard.ts). */
  requestsStartUnauthenticated?: boolean;
}

// Prometheus, a kubelet and curl send their request the moment they connect; 5 s leaves a loaded host ample margin.
const FIRST_BYTE_TIMEOUT_MS = 5_000;

/**
 * The kernel's accept queue: connections beyond the guard's limit wait here while it evicts. Node's default (511) is
 * smaller than a flood of reconnecting clients beyond the limit, and when it is full the kernel drops a client's SYN,
 * which the client's kernel sends again only after 1 s, then 3 s: an authenticated call measured at 3.2 s behind 1,000
 * trickling connections. 4096 is Linux's default `net.core.somaxconn` (which caps it) since 5.4.
 */
const ACCEPT_BACKLOG = 4_096;

export async function listen(app: RequestListener, host: string, port: number, requestTimeoutMs: number, limits: ListenLimits = {}): Promise<RunningServer> {
  const headersTimeoutMs = Math.min(requestTimeoutMs, 10_000);
  const server: Server = createServer(
    {
      requestTimeout: requestTimeoutMs,
      headersTimeout: headersTimeoutMs,
      // Node checks those timeouts only this often (30 s by default): a slow client would hold on that long.
      connectionsCheckingInterval: 1_000,
    },
    app,
  );
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 50;
  const maxConnections = limits.maxConnections ?? MAX_CONNECTIONS;
  // Well before Node's headers timeout, which closes a silent connection too (Node 20 starts it at connect), uncounted.
  const firstByteTimeoutMs = Math.min(FIRST_BYTE_TIMEOUT_MS, headersTimeoutMs / 2);
  const guard = guardConnections(server, {
    maxConnections,
    firstByteTimeoutMs,
    requestsStartUnauthenticated: limits.requestsStartUnauthenticated,
    onDrop: limits.onDrop ?? (() => undefined),
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: ACCEPT_BACKLOG }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  // After start, a failing listener (EMFILE on accept is retried by Node itself) is reported, not thrown.
  server.on('error', () => undefined);
  return {
    url: `http://${shownHost}:${address.port}`,
    maxConnections,
    guard,
    get listening() {
      return server.listening;
    },
    close: (boundMs = 5_000) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), boundMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}

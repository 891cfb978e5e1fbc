import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Listens for the sidecar's request handler with the timeouts a sidecar needs against slow or stuck clients, and closes
 * within a bound on shutdown.
 */
export interface RunningServer {
  url: string;
  close(boundMs?: number): Promise<void>;
}

export async function listen(app: RequestListener, host: string, port: number, requestTimeoutMs: number): Promise<RunningServer> {
  const server: Server = createServer(
    {
      requestTimeout: requestTimeoutMs,
      headersTimeout: Math.min(requestTimeoutMs, 10_000),
      // Node checks those timeouts only this often (30 s by default): a slow client would hold on that long.
      connectionsCheckingInterval: 1_000,
    },
    app,
  );
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 50;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}`,
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

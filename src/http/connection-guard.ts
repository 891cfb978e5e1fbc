import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionDropReason } from '../core/errors';

interface ConnectionGuardOptions {
  maxConnections: number;
  /** A connection that has sent no byte by then is closed: real clients send their request as soon as they connect. */
  firstByteTimeoutMs: number;
  onDrop(reason: ConnectionDropReason, remoteAddress: string | undefined): void;
}

/**
 * Keeps the HTTP server within `maxConnections`, so its descriptors never crowd out the token files. When a new
 * connection finds the limit reached, the oldest connection with no request in progress (silent, sending its
 * headers slowly, or keep-alive between requests) is closed to make room: a flood of idle connections then costs
 * its own oldest members, while a probe that connects and sends its request at once is answered. Only when every
 * connection is serving a request is the new one refused. Silent connections are also closed after
 * `firstByteTimeoutMs`, without waiting for the limit.
 *
 * Node's `server.maxConnections` would refuse the newcomer instead, which lets a few idle clients lock every
 * probe out; and Node's headers timeout (which in Node 20 does start at connect) is a bound per connection, not
 * on how many there are.
 */
export function guardConnections(server: Server, options: ConnectionGuardOptions): void {
  // Insertion order is connection order: the first idle entry is the oldest idle connection.
  const requestsInProgress = new Map<Socket, number>();

  const drop = (socket: Socket, reason: ConnectionDropReason) => {
    const remoteAddress = socket.remoteAddress;
    requestsInProgress.delete(socket);
    socket.destroy();
    options.onDrop(reason, remoteAddress);
  };

  server.on('connection', (socket: Socket) => {
    if (requestsInProgress.size >= options.maxConnections) {
      const idle = oldestIdle(requestsInProgress);
      if (!idle) {
        drop(socket, 'refused');
        return;
      }
      drop(idle, 'evicted');
    }
    requestsInProgress.set(socket, 0);
    const silence = setTimeout(() => {
      if (socket.bytesRead === 0 && requestsInProgress.has(socket)) drop(socket, 'silent');
    }, options.firstByteTimeoutMs);
    silence.unref();
    socket.once('close', () => {
      clearTimeout(silence);
      requestsInProgress.delete(socket);
    });
  });

  // Before the app's own listener, so a response ended at once is seen in progress first.
  server.prependListener('request', (req, res) => {
    const socket = req.socket;
    const requests = requestsInProgress.get(socket);
    if (requests === undefined) return;
    requestsInProgress.set(socket, requests + 1);
    res.once('close', () => {
      const now = requestsInProgress.get(socket);
      if (now !== undefined) requestsInProgress.set(socket, now - 1);
    });
  });
}

function oldestIdle(requestsInProgress: Map<Socket, number>): Socket | undefined {
  for (const [socket, requests] of requestsInProgress) if (requests === 0) return socket;
  return undefined;
}

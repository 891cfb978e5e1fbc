import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionDropReason } from '../core/errors';

interface ConnectionGuardOptions {
  maxConnections: number;
  /** A connection that has sent no byte by then is closed: real clients send their request as soon as they connect. */
  firstByteTimeoutMs: number;
  /**
   * Requests start unauthenticated, and only `authenticated(socket)` makes them count as a client's (the gateway,
   * where a caller proves who it is with its headers); otherwise every request is a client's from its first line.
   */
  requestsStartUnauthenticated?: boolean;
  onDrop(reason: ConnectionDropReason, remoteAddress: string | undefined): void;
  /** Milliseconds on a monotonic clock. */
  now?: () => number;
}

/** What a connection is doing, from least to most worth keeping. */
type ConnectionState = 'idle' | 'unauthenticated' | 'serving';

/**
 * A connection idle for less than this has just been opened: its request is on its way. It is evicted only after
 * every connection that had its chance (idle longer, or a request that has not authenticated): under a flood of
 * reconnecting clients, a newcomer that sends its request at once is otherwise evicted before it is read.
 */
const NEWCOMER_GRACE_MS = 1_000;

export interface ConnectionGuard {
  /** The request on this socket comes from an authenticated client: it is no longer among the first to evict. */
  authenticated(socket: Socket): void;
  readonly connections: number;
  readonly maxConnections: number;
  /** New connections refused in the last `withinMs` (every place was serving an authenticated request). */
  refusedWithin(withinMs: number): number;
}

/**
 * Keeps an HTTP server within `maxConnections`, so its descriptors never crowd out the token files. When a new
 * connection finds the limit reached, the oldest connection that serves no client is closed to make room: first one
 * idle for a while (silent, sending its headers slowly, keep-alive between requests), then one whose request has not
 * authenticated (a body trickling in to a token endpoint), and only then one just opened. A flood of such connections so costs its own oldest
 * members, while a client that connects and sends its request at once is served. Only when every connection is
 * serving a client is the new one refused. Silent connections are also closed after `firstByteTimeoutMs`, without
 * waiting for the limit.
 *
 * Node's `server.maxConnections` would refuse the newcomer instead, which lets a few idle clients lock every
 * probe out; and Node's headers timeout (which in Node 20 does start at connect) is a bound per connection, not
 * on how many there are.
 */
export function guardConnections(server: Server, options: ConnectionGuardOptions): ConnectionGuard {
  // Insertion order is connection order: the first entry in a state is the oldest connection in it.
  const states = new Map<Socket, ConnectionState>();
  /** When each connection last became idle (connected, or answered and kept alive). */
  const idleSince = new Map<Socket, number>();
  const now = options.now ?? (() => performance.now());
  const refusals: number[] = [];
  const startState: ConnectionState = options.requestsStartUnauthenticated ? 'unauthenticated' : 'serving';

  const drop = (socket: Socket, reason: ConnectionDropReason) => {
    const remoteAddress = socket.remoteAddress;
    states.delete(socket);
    idleSince.delete(socket);
    socket.destroy();
    options.onDrop(reason, remoteAddress);
  };

  server.on('connection', (socket: Socket) => {
    if (states.size >= options.maxConnections) {
      const settled = now() - NEWCOMER_GRACE_MS;
      const victim =
        oldestIn(states, 'idle', (socket) => (idleSince.get(socket) ?? 0) <= settled) ?? oldestIn(states, 'unauthenticated') ?? oldestIn(states, 'idle');
      if (!victim) {
        refusals.push(now());
        if (refusals.length > 1_000) refusals.splice(0, refusals.length - 1_000);
        drop(socket, 'refused');
        return;
      }
      drop(victim, 'evicted');
    }
    states.set(socket, 'idle');
    idleSince.set(socket, now());
    const silence = setTimeout(() => {
      if (socket.bytesRead === 0 && states.has(socket)) drop(socket, 'silent');
    }, options.firstByteTimeoutMs);
    silence.unref();
    socket.once('close', () => {
      clearTimeout(silence);
      states.delete(socket);
      idleSince.delete(socket);
    });
  });

  // Before the app's own listener, so a response ended at once is seen in progress first.
  server.prependListener('request', (req, res) => {
    const socket = req.socket;
    if (!states.has(socket)) return;
    states.set(socket, startState);
    res.once('close', () => {
      if (!states.has(socket)) return;
      states.set(socket, 'idle');
      idleSince.set(socket, now());
    });
  });

  return {
    authenticated(socket) {
      if (states.get(socket) === 'unauthenticated') states.set(socket, 'serving');
    },
    get connections() {
      return states.size;
    },
    maxConnections: options.maxConnections,
    refusedWithin(withinMs) {
      const since = now() - withinMs;
      return refusals.filter((at) => at >= since).length;
    },
  };
}

function oldestIn(states: Map<Socket, ConnectionState>, wanted: ConnectionState, also: (socket: Socket) => boolean = () => true): Socket | undefined {
  for (const [socket, state] of states) if (state === wanted && also(socket)) return socket;
  return undefined;
}

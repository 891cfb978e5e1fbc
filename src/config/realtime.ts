import type { Env, Provider, RealtimeConfig } from './types';
import type { ResolveContext } from './resolve-context';
import type { RawAccount, RawGateway, RawRealtime } from './schema';
import { formatDuration } from '../core/duration';

/**
 * The `realtime:` section and each account's `websocketUrl`: the endpoint that holds one WebSocket session per
 * app key and shares it between the gateway's clients (src/realtime/). Clients authenticate with their gateway
 * credentials, so the endpoint needs the gateway.
 */

/**
 * The brokers' WebSocket hosts, without a path (docs/brokers.md#kis-real-time-session, #kiwoom-real-time-session):
 * KIS's `ops`/`vops` of kis_devlp.yaml (plain ws), Kiwoom's socket host (its path is /api/dostk/websocket).
 */
const DEFAULT_WEBSOCKET_URLS: Record<Provider, Record<Env, string>> = {
  kis: { real: 'ws://ops.koreainvestment.com:21000', mock: 'ws://ops.koreainvestment.com:31000' },
  kiwoom: { real: 'wss://api.kiwoom.com:10000', mock: 'wss://mockapi.kiwoom.com:10000' },
};

/**
 * The endpoint's defaults. Off, on loopback, on the port after the gateway's. 64 clients (ten bots with a few
 * connections each, and room). A client may fall 1 MiB or 5 s behind (about 1,700 trade records, 4 s of a full
 * set of 41 registrations at 10 records a second) before it is closed. The session is replaced after 30 s without
 * a frame (the endpoint pings every 10 s, as the official client's websockets library does every 20 s). With
 * replicas, a holder's lease lives 1.5 s past its last renewal (renewed every 375 ms), so a holder killed is
 * replaced within about 2 s; one cut off from Redis keeps its session a minute for its own clients.
 */
const DEFAULT_REALTIME = {
  host: '127.0.0.1',
  port: 9466,
  maxClients: 64,
  idleCloseMs: 60_000,
  registrationSpacingMs: 10,
  stallTimeoutMs: 30_000,
  reconnect: { initialDelayMs: 1_000, maxDelayMs: 60_000 },
  afterReplacedMs: 5 * 60_000,
  replicas: { leaseTtlMs: 1_500, outageHoldMs: 60_000 },
  client: { maxQueueBytes: 1024 * 1024, maxQueueDelayMs: 5_000, pingIntervalMs: 30_000 },
};

/**
 * An account's WebSocket host: the configured one; the broker's own when the account talks to the broker's own
 * REST host; otherwise the REST base's origin as ws(s) (the simulator serves both on one port), so an account
 * pointed elsewhere never opens a session at the real broker by default.
 */
export function websocketUrlOf(account: RawAccount, env: Env): string {
  if (account.websocketUrl !== undefined) return account.websocketUrl.replace(/\/+$/, '');
  if (account.baseUrl === undefined) return DEFAULT_WEBSOCKET_URLS[account.provider][env];
  const base = new URL(account.baseUrl);
  return `${base.protocol === 'https:' ? 'wss:' : 'ws:'}//${base.host}`;
}

export function resolveRealtime(raw: RawRealtime | undefined, gateway: RawGateway | undefined, ctx: ResolveContext): RealtimeConfig {
  const D = DEFAULT_REALTIME;
  const enabled = raw?.enabled ?? false;
  if (enabled && !(gateway?.enabled ?? false)) {
    ctx.problems.add(
      ['realtime', 'enabled'],
      'needs the gateway (gateway.enabled: true): clients connect with their gateway credentials (KIS: the approval key its Approval gives; Kiwoom: its local token)',
    );
  }
  const reconnect = {
    initialDelayMs: raw?.reconnect?.initialDelay ?? D.reconnect.initialDelayMs,
    maxDelayMs: raw?.reconnect?.maxDelay ?? D.reconnect.maxDelayMs,
  };
  if (reconnect.maxDelayMs < reconnect.initialDelayMs) {
    ctx.problems.add(['realtime', 'reconnect', 'maxDelay'], `must not be shorter than initialDelay (${formatDuration(reconnect.initialDelayMs)})`);
  }
  const clients = new Set((gateway?.clients ?? []).map((c) => c.name));
  const fills: Record<string, string[]> = {};
  for (const [client, htsIds] of Object.entries(raw?.fills ?? {})) {
    if (!clients.has(client)) ctx.problems.add(['realtime', 'fills', client], 'names no client of the gateway');
    fills[client] = [...new Set(htsIds)];
  }
  return {
    enabled,
    host: raw?.host ?? D.host,
    port: raw?.port ?? D.port,
    maxClients: raw?.maxClients ?? D.maxClients,
    keepOpen: raw?.keepOpen ?? false,
    idleCloseMs: raw?.idleClose ?? D.idleCloseMs,
    registrationSpacingMs: raw?.registrationSpacing ?? D.registrationSpacingMs,
    stallTimeoutMs: raw?.stallTimeout ?? D.stallTimeoutMs,
    reconnect,
    afterReplacedMs: raw?.afterReplaced ?? D.afterReplacedMs,
    replicas: {
      leaseTtlMs: raw?.replicas?.leaseTtl ?? D.replicas.leaseTtlMs,
      outageHoldMs: raw?.replicas?.outageHold ?? D.replicas.outageHoldMs,
    },
    client: {
      maxQueueBytes: raw?.client?.maxQueueBytes ?? D.client.maxQueueBytes,
      maxQueueDelayMs: raw?.client?.maxQueueDelay ?? D.client.maxQueueDelayMs,
      pingIntervalMs: raw?.client?.pingInterval ?? D.client.pingIntervalMs,
    },
    fills,
  };
}

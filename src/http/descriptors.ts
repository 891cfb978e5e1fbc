import { readFileSync } from 'node:fs';

/**
 * How many HTTP connections the sidecar accepts at once, from its descriptor limit. Every connection holds a
 * descriptor, and a descriptor the HTTP server holds is one a token file write cannot open (EMFILE): 150 idle
 * connections under `ulimit -n 64` left a deleted token file unrepaired. So the server gets what the limit leaves
 * after a reserve for the sidecar's own work, and never more than a sidecar's few clients (Prometheus, a kubelet,
 * an operator's curl) could need.
 */

// Measured: an idle sidecar with one account and two sinks holds 21 descriptors (Node's event loop, stdio, the
// inotify watch, the state lock, the listening socket, a broker keep-alive). The rest of the 32 is for what comes
// and goes: sink and state writes in flight (a temporary file and its directory each), Redis, Slack.
const RUNTIME_DESCRIPTORS = 32;
/** The gateway's keep-alive connections to the brokers (src/gateway/start.ts): each a descriptor of their own. */
export const GATEWAY_BROKER_CONNECTIONS = 32;
/** More is never legitimate for a sidecar's HTTP surface (Prometheus, a kubelet, an operator's curl), whatever the limit allows. */
export const MAX_CONNECTIONS = 256;
/** The gateway's clients are bots with keep-alive pools of their own; past this many, something is wrong with them. */
const MAX_GATEWAY_CONNECTIONS = 1_024;
/** Below this, scrapes and probes (or a gateway's clients) would queue behind each other; a limit that leaves less is reported. */
const MIN_CONNECTIONS = 8;

interface ConnectionBudget {
  /** The HTTP port's share. */
  maxConnections: number;
  /** The gateway port's share (0 without a gateway). */
  gatewayConnections: number;
  /** The soft RLIMIT_NOFILE, when it could be read and is finite. */
  descriptorLimit: number | undefined;
  /** Descriptors kept for the sidecar's own work: the runtime, one per broker request that may be in flight, the gateway's pool. */
  reserved: number;
  /** The limit leaves less than MIN_CONNECTIONS a port after the reserve: the sidecar may still run out; raise `ulimit -n`. */
  tooLow: boolean;
}

/** The soft open-files limit from /proc/self/limits; undefined where there is no /proc (macOS) or it is unlimited. */
export function openFileLimit(readLimits: () => string = () => readFileSync('/proc/self/limits', 'utf8')): number | undefined {
  let text: string;
  try {
    text = readLimits();
  } catch {
    return undefined;
  }
  const match = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  return match && match[1] !== 'unlimited' ? Number(match[1]) : undefined;
}

/**
 * One descriptor budget for both ports: what the limit leaves after the reserve, a quarter of it (at most 64) for
 * the HTTP port and the rest for the gateway's clients, so that a flood on one port can neither take the other's
 * places nor the descriptors the token files need.
 */
export function connectionBudget(descriptorLimit: number | undefined, maxConcurrentBrokerRequests: number, gateway = false): ConnectionBudget {
  const reserved = RUNTIME_DESCRIPTORS + maxConcurrentBrokerRequests + (gateway ? GATEWAY_BROKER_CONNECTIONS : 0);
  if (descriptorLimit === undefined) {
    return { maxConnections: MAX_CONNECTIONS, gatewayConnections: gateway ? MAX_GATEWAY_CONNECTIONS : 0, descriptorLimit, reserved, tooLow: false };
  }
  const left = descriptorLimit - reserved;
  if (!gateway) {
    return { maxConnections: clamp(left, MIN_CONNECTIONS, MAX_CONNECTIONS), gatewayConnections: 0, descriptorLimit, reserved, tooLow: left < MIN_CONNECTIONS };
  }
  const http = clamp(Math.floor(left / 4), MIN_CONNECTIONS, 64);
  const gatewayShare = clamp(left - http, MIN_CONNECTIONS, MAX_GATEWAY_CONNECTIONS);
  return { maxConnections: http, gatewayConnections: gatewayShare, descriptorLimit, reserved, tooLow: left - http < MIN_CONNECTIONS };
}

const clamp = (value: number, low: number, high: number): number => Math.min(high, Math.max(low, value));

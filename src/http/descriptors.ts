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
/** More is never legitimate for a sidecar's HTTP surface, whatever the limit allows. */
export const MAX_CONNECTIONS = 256;
/** Below this, scrapes and probes would queue behind each other; a limit that leaves less is reported as too low. */
const MIN_CONNECTIONS = 8;

interface ConnectionBudget {
  maxConnections: number;
  /** The soft RLIMIT_NOFILE, when it could be read and is finite. */
  descriptorLimit: number | undefined;
  /** Descriptors kept for the sidecar's own work: the runtime and one per broker request that may be in flight. */
  reserved: number;
  /** The limit leaves less than MIN_CONNECTIONS after the reserve: the sidecar may still run out; raise `ulimit -n`. */
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

export function connectionBudget(descriptorLimit: number | undefined, maxConcurrentBrokerRequests: number): ConnectionBudget {
  const reserved = RUNTIME_DESCRIPTORS + maxConcurrentBrokerRequests;
  if (descriptorLimit === undefined) return { maxConnections: MAX_CONNECTIONS, descriptorLimit, reserved, tooLow: false };
  const left = descriptorLimit - reserved;
  return { maxConnections: Math.min(MAX_CONNECTIONS, Math.max(MIN_CONNECTIONS, left)), descriptorLimit, reserved, tooLow: left < MIN_CONNECTIONS };
}

/**
 * Every failure the sidecar reports has a stable code from a closed set. Metrics pre-set one series per code,
 * alerts and runbooks key on them, so adding a code is a deliberate change in one place.
 */

/** Why an issuance (or renewal) attempt failed. */
export const RENEWAL_FAILURE_REASONS = [
  'rate_limited', // KIS EGW00133 / Kiwoom's request limit: wait out the spacing
  'auth_rejected', // EGW00103, EGW00105, Kiwoom key/secret codes: permanent until the credentials change
  'server_error', // 5xx, or a broker error that is neither of the above
  'timeout', // no complete answer in time
  'network', // refused, reset, DNS, TLS
  'bad_response', // garbage, truncated, missing fields, an expiry already past, a redirect
  'token_rejected', // a token fresh from the broker that the broker's own API refuses
  'store_error', // the attempt could not be recorded durably, so it was not sent
] as const;
export type RenewalFailureReason = (typeof RENEWAL_FAILURE_REASONS)[number];

/** Outcome of proving a token against the broker's cheap authenticated call. */
export const PROOF_RESULTS = ['ok', 'rejected', 'error'] as const;
export type ProofResult = (typeof PROOF_RESULTS)[number];

/** Why writing a sink file failed. */
export const SINK_WRITE_FAILURE_REASONS = ['permission_denied', 'read_only', 'disk_full', 'symlink', 'not_regular_file', 'io_error'] as const;
export type SinkWriteFailureReason = (typeof SINK_WRITE_FAILURE_REASONS)[number];

/** Why a sink file was rewritten although the token had not changed. */
export const SINK_REPAIR_REASONS = [
  'missing',
  'empty',
  'truncated',
  'corrupt',
  'other_token',
  'special_file', // a FIFO, socket or device at the path: replaced (a reader opening it would block or read garbage)
  'mode',
  'owner',
] as const;
export type SinkRepairReason = (typeof SINK_REPAIR_REASONS)[number];

/** Why the sidecar's own state file could not be used. */
export const STATE_ERROR_REASONS = [
  'corrupt',
  'unreadable',
  'write_failed',
  'set_aside', // read well but not believable: another app key, a token naming another key, an expiry beyond maxLifetime
] as const;
export type StateErrorReason = (typeof STATE_ERROR_REASONS)[number];

/** Why a request to the admin endpoint was refused: no bearer token (or another scheme), or a wrong one. */
export const ADMIN_AUTH_FAILURE_REASONS = ['missing', 'wrong'] as const;
export type AdminAuthFailureReason = (typeof ADMIN_AUTH_FAILURE_REASONS)[number];

/**
 * Why the HTTP server closed a connection before answering it, to keep descriptors for the token files: it sent
 * nothing in time (`silent`), it was idle when a new one needed its place (`evicted`), or every place was taken
 * by a request in progress (`refused`, the new one).
 */
export const CONNECTION_DROP_REASONS = ['silent', 'evicted', 'refused'] as const;
export type ConnectionDropReason = (typeof CONNECTION_DROP_REASONS)[number];

abstract class SidecarError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A broker call failed; `reason` is what metrics and retries key on. */
export class BrokerError extends SidecarError {
  readonly code: RenewalFailureReason;
  constructor(
    reason: RenewalFailureReason,
    message: string,
    readonly detail: { status?: number; brokerCode?: string } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = reason;
  }
}

export class SinkWriteError extends SidecarError {
  readonly code: SinkWriteFailureReason;
  constructor(reason: SinkWriteFailureReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = reason;
  }
}

/**
 * A directory on the way from / to a file is a symbolic link (`symlink`) or not a directory (`not_regular_file`):
 * nothing is written, read or deleted through it. `component` is the first such path, the one to fix.
 */
export class PathComponentError extends SinkWriteError {
  constructor(
    reason: 'symlink' | 'not_regular_file',
    readonly component: string,
    /** The file or directory the walk was going to. */
    readonly destination: string,
  ) {
    const where = component === destination ? '' : ` on the way to ${destination}`;
    super(
      reason,
      reason === 'symlink'
        ? `${component} is a symbolic link${where}; refusing to go through it (set followSymlinks to allow)`
        : `${component} is not a directory${where}`,
    );
  }
}

export class StateError extends SidecarError {
  readonly code: StateErrorReason;
  constructor(reason: StateErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = reason;
  }
}

/** Every problem found in a config file, reported together. */
export class ConfigError extends SidecarError {
  readonly code = 'config_invalid';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}

/** Another live sidecar owns the state directory. */
export class StateLockedError extends SidecarError {
  readonly code = 'state_locked';
}

/** The one place any error from an issuance attempt becomes a metric reason. */
export function classifyRenewalError(error: unknown): RenewalFailureReason {
  if (error instanceof BrokerError) return error.code;
  if (error instanceof StateError) return 'store_error';
  return 'bad_response';
}

/** Maps a Node.js file-system error to a sink write reason. */
export function classifyFsError(error: unknown): SinkWriteFailureReason {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission_denied';
    case 'EROFS':
      return 'read_only';
    case 'ENOSPC':
    case 'EDQUOT':
      return 'disk_full';
    case 'ELOOP':
      return 'symlink';
    case 'EISDIR':
    case 'ENOTDIR':
      return 'not_regular_file';
    default:
      return error instanceof SinkWriteError ? error.code : 'io_error';
  }
}

// The last line of defence for words that came from outside (a broker, a file system): no message is longer.
const MAX_ERROR_MESSAGE = 1_000;

/** A message fit for logs and /status: the error's own words, never a stack or a request body, and bounded. */
export function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > MAX_ERROR_MESSAGE ? `${message.slice(0, MAX_ERROR_MESSAGE)}…` : message;
}

import pino, { type Logger, type DestinationStream } from 'pino';
import { REDACTED, type SecretRegistry } from '../core/secrets';
import { KST_ZONE, formatIsoInZone } from '../core/time';

export type { Logger } from 'pino';
type LogFormat = 'json' | 'pretty';
type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

// Field names that hold secrets wherever they appear. Values registered with the SecretRegistry are caught
// even under other names or inside message text; these paths catch the ones not registered yet.
const SECRET_PATHS = [
  'appKey',
  'appSecret',
  'secretkey',
  'appsecret',
  'appkey',
  'accessToken',
  'access_token',
  'token',
  'approvalKey',
  'approval_key',
  'webhookUrl',
  'adminToken',
  'authorization',
  'password',
  '*.appKey',
  '*.appSecret',
  '*.accessToken',
  '*.access_token',
  '*.token',
  '*.approvalKey',
  '*.webhookUrl',
  '*.authorization',
  '*.password',
  'headers.authorization',
];

interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  secrets: SecretRegistry;
  /** Where lines go; stderr by default, so stdout stays free for command output. */
  destination?: DestinationStream;
  /** The zone of the pretty form's timestamps (the JSON form keeps UTC): KST, as /status and `status` show times. */
  timeZone?: string;
}

export function createLogger(options: LoggerOptions): Logger {
  const { secrets } = options;
  const pretty = options.format === 'pretty';
  const zone = options.timeZone ?? KST_ZONE;
  const destination =
    options.destination ??
    (pretty
      ? // Loaded only when asked for: the JSON form needs none of it. The time is already in the reader's zone.
        (require('pino-pretty') as typeof import('pino-pretty'))({
          destination: 2,
          sync: true,
          colorize: process.stderr.isTTY,
          translateTime: false,
          ignore: 'service',
        })
      : pino.destination({ dest: 2, sync: true }));
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'broker-token-sidecar' },
      // A person reads the pretty form beside /status and `status`: one clock for both (2026-12-01 08:30:00.123+09:00).
      timestamp: pretty ? () => `,"time":"${prettyTime(Date.now(), zone)}"` : pino.stdTimeFunctions.isoTime,
      redact: { paths: SECRET_PATHS, censor: REDACTED },
      serializers: {
        err: (error: unknown) => secrets.redactDeep(error instanceof Error ? error : new Error(String(error))),
      },
      formatters: {
        level: (label) => ({ level: label }),
        log: (object) => secrets.redactDeep(object),
      },
      hooks: {
        logMethod(args, method) {
          const cleaned = args.map((arg) => (typeof arg === 'string' ? secrets.redact(arg) : arg));
          method.apply(this, cleaned as Parameters<typeof method>);
        },
      },
    },
    destination,
  );
}

function prettyTime(instant: number, zone: string): string {
  const iso = formatIsoInZone(instant, zone);
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${String(instant % 1000).padStart(3, '0')}${iso.slice(19)}`;
}

import pino, { type Logger, type DestinationStream } from 'pino';
import { REDACTED, type SecretRegistry } from './secrets';

export type { Logger } from 'pino';
export type LogFormat = 'json' | 'pretty';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

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

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  secrets: SecretRegistry;
  /** Where lines go; stderr by default, so stdout stays free for command output. */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const { secrets } = options;
  const destination =
    options.destination ??
    (options.format === 'pretty'
      ? // Loaded only when asked for: the JSON form needs none of it.
        (require('pino-pretty') as typeof import('pino-pretty'))({ destination: 2, sync: true, colorize: process.stderr.isTTY, translateTime: 'SYS:standard', ignore: 'service' })
      : pino.destination({ dest: 2, sync: true }));
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'broker-token-sidecar' },
      timestamp: pino.stdTimeFunctions.isoTime,
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

/** A logger that drops everything, for code paths and tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

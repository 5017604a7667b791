// pino logger factory. Secrets are redacted twice: by path (fields that hold them), and in the
// finished line (passwords in connection strings, bearer tokens, API-key fields, and every value
// registered with registerSecret: DATABASE_URL's password, API keys read through config), so
// that a secret inside an error message, a stack or a nested object never reaches the output.
import pino, { type Logger } from 'pino';
import { redactSecrets } from './errors.js';

export type { Logger };

export interface LogOptions {
  level: string;
  pretty?: boolean;
  /** Destination stream; defaults to stderr so that stdout stays for command output. */
  destination?: NodeJS.WritableStream;
}

export const REDACT_PATHS = [
  'apiKey', '*.apiKey', 'password', '*.password', 'connectionString', '*.connectionString', 'databaseUrl', '*.databaseUrl',
  'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization', 'headers["api-key"]', '*.headers["api-key"]',
];

export function createLogger(opts: LogOptions): Logger {
  const redact = { paths: REDACT_PATHS, censor: '***' };
  const hooks = { streamWrite: (line: string) => redactSecrets(line) };
  if (opts.pretty) {
    return pino({ level: opts.level, redact, hooks, transport: { target: 'pino-pretty', options: { destination: 2, colorize: true } } });
  }
  return pino({ level: opts.level, redact, hooks }, opts.destination ?? pino.destination(2));
}

/** A logger that drops everything, for library use and tests. */
export const silentLogger: Logger = pino({ level: 'silent' });

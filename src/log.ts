// pino logger factory. Secrets are redacted by path and inside messages.
import pino, { type Logger } from 'pino';
import { redactSecrets } from './errors.js';

export type { Logger };

export interface LogOptions {
  level: string;
  pretty?: boolean;
  /** Destination stream; defaults to stderr so that stdout stays for command output. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(opts: LogOptions): Logger {
  const redact = {
    paths: ['apiKey', '*.apiKey', 'password', '*.password', 'connectionString', '*.connectionString', 'headers.authorization', '*.headers.authorization'],
    censor: '***',
  };
  const hooks = {
    logMethod(this: Logger, args: Parameters<Logger['info']>, method: (...a: unknown[]) => void) {
      method.apply(this, args.map((a) => (typeof a === 'string' ? redactSecrets(a) : a)));
    },
  };
  if (opts.pretty) {
    return pino({ level: opts.level, redact, hooks, transport: { target: 'pino-pretty', options: { destination: 2, colorize: true } } });
  }
  return pino({ level: opts.level, redact, hooks }, opts.destination ?? pino.destination(2));
}

/** A logger that drops everything, for library use and tests. */
export const silentLogger: Logger = pino({ level: 'silent' });

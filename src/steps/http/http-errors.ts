// The error an HTTP step attempt throws. The engine reads two fields (StepErrorHints in
// src/pipeline/types.ts): `retryable: false` fails the run at once; `retryAfterMs` (the server's
// Retry-After) makes the next attempt wait at least that long.
import { redactSecrets } from '../../errors.js';

export class HttpStepError extends Error {
  override name = 'HttpStepError';
  readonly retryable: boolean;
  readonly retryAfterMs?: number;
  /** The response status, when there was a response. */
  readonly status?: number;

  constructor(message: string, opts: { retryable: boolean; retryAfterMs?: number; status?: number }) {
    super(redactSecrets(message));
    this.retryable = opts.retryable;
    if (opts.retryAfterMs !== undefined) this.retryAfterMs = opts.retryAfterMs;
    if (opts.status !== undefined) this.status = opts.status;
  }
}

/** A connection failure in a line: the system code and message (ECONNREFUSED 127.0.0.1:80…). */
export function describeNetworkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}

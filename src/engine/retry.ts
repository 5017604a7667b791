// Retry decisions: exponential backoff with full jitter, and which errors are worth retrying.
import { redactSecrets, UserError } from '../errors.js';
import type { RetryPolicy, StepErrorHints } from '../pipeline/types.js';
import { backoffMs } from '../util/backoff.js';

export const DEFAULT_RETRY: Required<Omit<RetryPolicy, 'retryable'>> = {
  maxAttempts: 5,
  initialDelayMs: 1_000,
  maxDelayMs: 5 * 60_000,
};

/** Throw this from a step to fail the run at once, whatever the retry policy. */
export class NonRetryableError extends Error {
  override name = 'NonRetryableError';
  readonly retryable = false;
}

/** A step returned something that cannot be stored as JSON (a BigInt, a cycle): a bug, not retried. */
export class OutputNotJsonError extends NonRetryableError {
  override name = 'OutputNotJsonError';
}

/** A run's input does not fit its pipeline's declared shape (Pipeline.checkInput): retrying cannot change it. */
export class RunInputError extends NonRetryableError {
  override name = 'RunInputError';
}

/** A step attempt that ran past its timeoutMs. Retryable. */
export class StepTimeoutError extends Error {
  override name = 'StepTimeoutError';
}

export function isRetryable(err: unknown, policy: RetryPolicy | undefined): boolean {
  // A UserError names a definition or data problem (a missing column, a bad key): retrying cannot help.
  if (err instanceof NonRetryableError || err instanceof UserError) return false;
  if (err && typeof err === 'object' && (err as { retryable?: unknown }).retryable === false) return false;
  return policy?.retryable ? policy.retryable(err) : true;
}

/** A step error's `retryAfterMs` hint (StepErrorHints), when it is a usable number. */
export function retryAfterHintMs(err: unknown): number | undefined {
  const v = err && typeof err === 'object' ? (err as StepErrorHints).retryAfterMs : undefined;
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined;
}

/**
 * Delay before attempt `nextAttempt` (2 for the first retry): uniform in [0, min(max, initial·2^(n-2))]
 * (full jitter); after an error `err` with a `retryAfterMs` hint, no shorter than the hint, but never
 * longer than the policy's maxDelayMs (which wins over the hint).
 */
export function retryDelayMs(policy: RetryPolicy | undefined, nextAttempt: number, random: () => number = Math.random, err?: unknown): number {
  const initialMs = policy?.initialDelayMs ?? DEFAULT_RETRY.initialDelayMs;
  const maxMs = policy?.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs;
  const backoff = backoffMs(nextAttempt - 2, { initialMs, maxMs }, random);
  const hint = retryAfterHintMs(err);
  return hint === undefined ? backoff : Math.min(maxMs, Math.max(backoff, Math.ceil(hint)));
}

export function maxAttempts(policy: RetryPolicy | undefined): number {
  return policy?.maxAttempts ?? DEFAULT_RETRY.maxAttempts;
}

/** Errors are stored as JSON: message, name, stack, and a code when there is one. */
export interface StoredError {
  message: string;
  name?: string;
  stack?: string;
  code?: string;
  step?: string;
  attempt?: number;
}

export function toStoredError(err: unknown, extra: Partial<StoredError> = {}): StoredError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return {
      message: redactSecrets(err.message),
      name: err.name,
      ...(err.stack ? { stack: redactSecrets(err.stack) } : {}),
      ...(typeof code === 'string' ? { code } : {}),
      ...extra,
    };
  }
  return { message: redactSecrets(typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err))), ...extra };
}

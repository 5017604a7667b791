// Runs one batch to completion for a provider instance: waits for a request slot (at most
// `concurrency` in flight) and the rate limit, then retries failed attempts inside the call after
// the delay the server asks for or an exponential backoff. A 429 with a delay pauses the whole
// instance; a server asking for more than MAX_IN_CALL_WAIT_MS is not waited for.
import { backoffMs } from '../../util/backoff.js';
import { abortableSleep } from '../../util/sleep.js';
import { Semaphore, TokenBucket } from './http-limits.js';
import type { EmbedFault, EmbedObserver } from './embedder.js';
import type { OpenAIConfig } from './openai-config.js';
import { sendRequest } from './openai-request.js';
import { BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, MAX_IN_CALL_WAIT_MS, type Batch, type OpenAIProviderStats } from './openai-support.js';

export type BatchRunner = (batch: Batch, signal: AbortSignal, observer: EmbedObserver | undefined) => Promise<Float32Array[]>;

/** One runner per provider instance: its slots, rate limit and 429 pause are shared by its calls. */
export function createBatchRunner(cfg: OpenAIConfig, counters: OpenAIProviderStats): BatchRunner {
  const slots = new Semaphore(cfg.concurrency);
  const bucket = cfg.requestsPerMinute ? new TokenBucket(cfg.requestsPerMinute) : undefined;
  let pausedUntil = 0; // after a 429 with a delay: no request of this instance before then

  /** One batch, with its slot, rate limit and retries. */
  return async function runBatch(batch, signal, observer) {
    const release = await slots.acquire(signal);
    try {
      for (let attempts = 1; ; attempts++) {
        for (let wait = pausedUntil - Date.now(); wait > 0; wait = pausedUntil - Date.now()) await abortableSleep(wait, signal);
        await bucket?.acquire(signal);
        const result = await sendRequest(cfg, batch, signal, counters);
        if ('vectors' in result) {
          counters.items += batch.texts.length;
          counters.tokens += result.tokens;
          return result.vectors;
        }
        const { failure } = result;
        counters.errorsByStatus[failure.statKey] = (counters.errorsByStatus[failure.statKey] ?? 0) + 1;
        const giveUp = !failure.retry || attempts > cfg.maxRetries || (failure.delayMs !== undefined && failure.delayMs > MAX_IN_CALL_WAIT_MS);
        const delay = giveUp ? undefined : (failure.delayMs ?? backoffMs(attempts - 1, { initialMs: BACKOFF_INITIAL_MS, maxMs: BACKOFF_MAX_MS, minFraction: 0.5 }));
        const error = failure.error(giveUp ? attempts : 1);
        report(observer, {
          reason: failure.statKey, attempt: attempts, inputs: batch.texts.length, message: error.message,
          ...(error.status !== undefined ? { status: error.status } : {}),
          ...(delay !== undefined ? { retryInMs: delay } : {}),
          ...(failure.delayMs !== undefined ? { serverDelayMs: failure.delayMs } : {}),
        });
        if (delay === undefined) throw error;
        if (failure.statKey === '429' && failure.delayMs !== undefined) pausedUntil = Math.max(pausedUntil, Date.now() + delay);
        counters.retries++;
        await abortableSleep(delay, signal);
      }
    } finally {
      release();
    }
  };
}

/** An observer's own failure must not change the call's outcome. */
function report(observer: EmbedObserver | undefined, fault: EmbedFault): void {
  try {
    observer?.onFault?.(fault);
  } catch {
    // ignored: reporting is best effort
  }
}

/**
 * Embedder for any OpenAI-compatible `POST {baseURL}/embeddings` endpoint: OpenAI, Azure OpenAI
 * (deployment URL, `api-key` header), Ollama (`http://127.0.0.1:11434/v1`), vLLM, TEI, LiteLLM...
 *
 * Plain `fetch` (Node's built-in undici), no SDK: this module owns retries, timeouts, rate limits and
 * response validation, and the `openai` SDK would duplicate each of them (its own retry loop and
 * Retry-After cap, a 10-minute default timeout, base64 as the default encoding, and API key / base URL
 * fallbacks read from process.env, which walflow only reads in src/config).
 *
 * What one embed() call does:
 * 1. Validates the inputs: strings, not empty, each at most `maxInputTokens` by `countTokens`
 *    (otherwise a non-retryable error naming the input: the chunker should have split it).
 * 2. Splits them, in order, into requests of at most `maxBatchItems` items and `maxBatchTokens`
 *    estimated tokens (a single input larger than `maxBatchTokens` goes alone).
 * 3. Runs the requests with at most `concurrency` in flight for this provider instance (shared by
 *    concurrent calls) and, when `requestsPerMinute` is set, through a token bucket. Every request
 *    sends `encoding_format: "float"`.
 * 4. Retries, inside the call, 408/429/5xx, timeouts, connection errors and unreadable bodies, up to
 *    `maxRetries` times: after the delay the server asks for (`retry-after-ms`, `Retry-After` in
 *    seconds or as an HTTP date) or else exponential backoff with jitter (0.5 s, 1 s, 2 s... capped
 *    at 20 s). A 429 with a delay also pauses every other request of this instance for that long.
 *    A server asking for more than 60 s is not waited for: the call fails at once with a retryable
 *    error carrying `retryAfterMs`, and the engine's own retry policy takes over.
 * 5. Checks every answer: one vector per input, re-ordered by `index`, each an array of exactly
 *    `dimensions` finite numbers. Returns Float32Arrays in input order.
 * If one request fails for good, the call's other requests are aborted and the call rejects with
 * that error. The caller's AbortSignal aborts requests in flight and every wait (slot, rate limit,
 * backoff); the call then rejects with `signal.reason`.
 *
 * Every failed attempt, retried here or not, is reported to the call's `observer` (reason, delay
 * before the retry, redacted message), so that faults the caller never sees as errors are visible.
 *
 * Where each part lives: options and redaction in openai-config.ts, input checks and batching in
 * openai-batches.ts, one HTTP request in openai-request.ts, reading the answer in
 * openai-response.ts, slots, rate limit and retries in openai-retries.ts.
 *
 * Errors are EmbeddingProviderError with `retryable` (false means: retrying cannot help, fix the
 * config or the input; the engine fails the run at once), `status` and `kind`. Messages never hold
 * the API key or the values of secret-looking headers, even when a server echoes them.
 */
import { setMaxListeners } from 'node:events';
import type { EmbedFault, EmbedObserver, Embedder } from './embedder.js';
import { planBatches } from './openai-batches.js';
import { resolveOpenAIConfig } from './openai-config.js';
import { createBatchRunner } from './openai-retries.js';
import { EmbeddingProviderError } from './openai-support.js';
import type { OpenAIEmbedder, OpenAIProviderOptions, OpenAIProviderStats } from './openai-support.js';
export { EmbeddingProviderError, OPENAI_DEFAULTS, estimateTokens } from './openai-support.js';
export type { EmbeddingErrorKind, OpenAIEmbedder, OpenAIProviderOptions, OpenAIProviderStats } from './openai-support.js';

export type { EmbedFault, EmbedObserver, Embedder };

export function createOpenAIEmbedder(opts: OpenAIProviderOptions): OpenAIEmbedder {
  const cfg = resolveOpenAIConfig(opts);
  const { model } = cfg;
  const counters: OpenAIProviderStats = { requests: 0, items: 0, tokens: 0, errorsByStatus: {}, retries: 0 };
  const runBatch = createBatchRunner(cfg, counters);
  let closed = false;
  const active = new Set<AbortController>();

  const closedError = (): EmbeddingProviderError =>
    new EmbeddingProviderError(`openai embedder (model "${model}") is closed`, { retryable: true, kind: 'closed' });

  return {
    model,
    dimensions: cfg.dimensions,
    maxInputTokens: cfg.maxInputTokens,
    countTokens: (text) => cfg.countTokens(text),

    async embed(texts, signal, observer) {
      if (closed) throw closedError();
      signal?.throwIfAborted();
      const batches = planBatches(cfg, texts);
      if (batches.length === 0) return [];
      const ctl = new AbortController();
      setMaxListeners(0, ctl.signal); // one listener per request and wait of the call: many is normal
      const onAbort = (): void => ctl.abort(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      active.add(ctl);
      try {
        const out = new Array<Float32Array>(texts.length);
        let failed = false;
        let firstError: unknown;
        await Promise.all(
          batches.map(async (batch) => {
            try {
              const vectors = await runBatch(batch, ctl.signal, observer);
              for (let i = 0; i < vectors.length; i++) out[batch.start + i] = vectors[i]!;
            } catch (err) {
              if (failed) return;
              failed = true;
              firstError = err;
              ctl.abort(err); // stop the call's other requests
            }
          }),
        );
        if (signal?.aborted) throw signal.reason;
        if (failed) throw firstError;
        return out;
      } finally {
        signal?.removeEventListener('abort', onAbort);
        active.delete(ctl);
      }
    },

    async close() {
      if (closed) return;
      closed = true;
      const err = closedError();
      for (const ctl of active) ctl.abort(err);
    },

    stats: () => ({ ...counters, errorsByStatus: { ...counters.errorsByStatus } }),
  };
}

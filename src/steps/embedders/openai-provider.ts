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
 * Errors are EmbeddingProviderError with `retryable` (false means: retrying cannot help, fix the
 * config or the input; the engine fails the run at once), `status` and `kind`. Messages never hold
 * the API key or the values of secret-looking headers, even when a server echoes them.
 */
import { setMaxListeners } from 'node:events';
import { UserError } from '../../errors.js';
import { abortableSleep, backoffDelayMs, parseRetryAfterMs, Semaphore, TokenBucket } from './http-limits.js';
import type { EmbedFault, EmbedObserver, Embedder } from './embedder.js';
import {
  BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, EmbeddingProviderError, MAX_DETAIL_CHARS, MAX_IN_CALL_WAIT_MS, OPENAI_DEFAULTS, SECRET_HEADER, TIMEOUT, attemptsSuffix, describeType, embeddingsEndpoint, estimateTokens, positiveInteger, serverErrorCode, serverMessage,
} from './openai-support.js';
import type { AttemptResult, Batch, Failure, OpenAIEmbedder, OpenAIProviderOptions, OpenAIProviderStats } from './openai-support.js';
export { EmbeddingProviderError, OPENAI_DEFAULTS, estimateTokens } from './openai-support.js';
export type { EmbeddingErrorKind, OpenAIEmbedder, OpenAIProviderOptions, OpenAIProviderStats } from './openai-support.js';

export type { EmbedFault, EmbedObserver, Embedder };

// ---------------------------------------------------------------------------------------------
// The embedder

export function createOpenAIEmbedder(opts: OpenAIProviderOptions): OpenAIEmbedder {
  if (!opts || typeof opts !== 'object') throw new UserError('openai embedder: options are required');
  if (typeof opts.model !== 'string' || !opts.model.trim()) throw new UserError('openai embedder: model must be a non-empty string');
  const endpoint = embeddingsEndpoint(String(opts.baseURL));
  /** For messages: no query string (it may hold a key), no credentials. */
  const where = `POST ${endpoint.origin}${endpoint.pathname}`;
  const model = opts.model;
  const dimensions = positiveInteger('dimensions', opts.dimensions, NaN);
  if (Number.isNaN(dimensions)) throw new UserError('openai embedder: dimensions is required');
  const maxInputTokens = positiveInteger('maxInputTokens', opts.maxInputTokens, OPENAI_DEFAULTS.maxInputTokens);
  const maxBatchItems = positiveInteger('maxBatchItems', opts.maxBatchItems, OPENAI_DEFAULTS.maxBatchItems);
  const maxBatchTokens = positiveInteger('maxBatchTokens', opts.maxBatchTokens, OPENAI_DEFAULTS.maxBatchTokens);
  const timeoutMs = positiveInteger('timeoutMs', opts.timeoutMs, OPENAI_DEFAULTS.timeoutMs);
  const maxRetries = opts.maxRetries ?? OPENAI_DEFAULTS.maxRetries;
  if (!Number.isInteger(maxRetries) || maxRetries < 0) throw new UserError(`openai embedder: maxRetries must be a non-negative integer, got ${String(maxRetries)}`);
  const concurrency = positiveInteger('concurrency', opts.concurrency, OPENAI_DEFAULTS.concurrency);
  if (opts.requestsPerMinute !== undefined && !(opts.requestsPerMinute > 0)) {
    throw new UserError(`openai embedder: requestsPerMinute must be positive, got ${String(opts.requestsPerMinute)}`);
  }
  const countTokens = opts.countTokens ?? estimateTokens;
  const apiKey = opts.apiKey ?? '';

  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  for (const [name, value] of Object.entries(opts.headers ?? {})) headers[name.toLowerCase()] = String(value);

  const secrets = [apiKey, ...Object.entries(headers).filter(([name]) => SECRET_HEADER.test(name)).map(([, value]) => value)]
    .flatMap((s) => [s, s.replace(/^Bearer\s+/i, '')])
    .filter((s) => s.length >= 4)
    .sort((a, b) => b.length - a.length);
  const redact = (text: string): string => secrets.reduce((t, s) => t.split(s).join('***'), text);
  const clip = (text: string): string => {
    const flat = redact(text).replace(/\s+/g, ' ').trim();
    return flat.length > MAX_DETAIL_CHARS ? `${flat.slice(0, MAX_DETAIL_CHARS)}…` : flat;
  };

  const slots = new Semaphore(concurrency);
  const bucket = opts.requestsPerMinute ? new TokenBucket(opts.requestsPerMinute) : undefined;
  let pausedUntil = 0; // after a 429 with a delay: no request of this instance before then
  let closed = false;
  const active = new Set<AbortController>();
  const counters: OpenAIProviderStats = { requests: 0, items: 0, tokens: 0, errorsByStatus: {}, retries: 0 };

  const closedError = (): EmbeddingProviderError =>
    new EmbeddingProviderError(`openai embedder (model "${model}") is closed`, { retryable: true, kind: 'closed' });

  // ---- response checks ------------------------------------------------------------------------

  function invalid(detail: string, retry: boolean): { failure: Failure } {
    return {
      failure: {
        statKey: 'invalid_response',
        retry,
        error: (n) =>
          new EmbeddingProviderError(`embedding response from ${where} (model "${model}") is invalid${attemptsSuffix(n)}: ${detail}`, {
            retryable: retry,
            kind: 'invalid_response',
          }),
      },
    };
  }

  /** Turns a parsed 2xx body into vectors in input order, or a failure. */
  function readVectors(json: unknown, batch: Batch): AttemptResult {
    const n = batch.texts.length;
    const data = json && typeof json === 'object' ? (json as { data?: unknown }).data : undefined;
    if (!Array.isArray(data)) {
      const message = json && typeof json === 'object' && 'error' in json ? `: ${clip(serverMessage(JSON.stringify(json)))}` : '';
      return invalid(`expected an object with a "data" array, got ${describeType(json)}${message}`, true);
    }
    if (data.length !== n) return invalid(`${data.length} embeddings for ${n} inputs`, true);
    const out = new Array<Float32Array | undefined>(n);
    for (let pos = 0; pos < n; pos++) {
      const item = data[pos] as { index?: unknown; embedding?: unknown } | null;
      if (!item || typeof item !== 'object') return invalid(`data[${pos}] is ${describeType(item)}`, true);
      const index = item.index === undefined ? pos : item.index;
      if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= n || out[index]) {
        return invalid(`data[${pos}].index is ${JSON.stringify(index)}; expected each of 0..${n - 1} once`, true);
      }
      const embedding = item.embedding;
      if (typeof embedding === 'string') {
        return invalid('the server sent base64 embeddings although encoding_format "float" was requested', false);
      }
      if (!Array.isArray(embedding)) return invalid(`data[${pos}].embedding is ${describeType(embedding)}, expected an array of numbers`, true);
      if (embedding.length !== dimensions) {
        const hint = opts.sendDimensions ? ' (the server ignored the requested dimensions)' : '';
        return {
          failure: {
            statKey: 'invalid_response',
            retry: false,
            error: () =>
              new EmbeddingProviderError(
                `embedding model "${model}" returned ${embedding.length}-dim vectors, expected ${dimensions}${hint}: fix "dimensions" in the pipeline config`,
                { retryable: false, kind: 'invalid_response' },
              ),
          },
        };
      }
      const vector = new Float32Array(dimensions);
      for (let d = 0; d < dimensions; d++) {
        const v = embedding[d] as unknown;
        vector[d] = typeof v === 'number' ? v : NaN;
        if (!Number.isFinite(vector[d])) {
          return invalid(`the vector for input ${batch.start + index} has a non-finite value at [${d}] (${JSON.stringify(v) ?? String(v)})`, false);
        }
      }
      out[index] = vector;
    }
    const usage = json && typeof json === 'object' ? (json as { usage?: { total_tokens?: unknown; prompt_tokens?: unknown } }).usage : undefined;
    const reported = usage?.total_tokens ?? usage?.prompt_tokens;
    const tokens = typeof reported === 'number' && Number.isFinite(reported) && reported >= 0 ? reported : batch.tokens;
    return { vectors: out as Float32Array[], tokens };
  }

  /** A non-2xx answer. */
  function httpFailure(res: Response, body: string): Failure {
    const status = res.status;
    const statusLine = `${status}${res.statusText ? ` ${clip(res.statusText)}` : ''}`;
    const message = clip(serverMessage(body)) || '(empty body)';
    const code = serverErrorCode(body);
    const delayMs = parseRetryAfterMs(res.headers);
    const make =
      (retryable: boolean, hint = '') =>
      (attempts: number): EmbeddingProviderError =>
        new EmbeddingProviderError(
          `embedding request failed with ${statusLine}${attemptsSuffix(attempts)} (${where}, model "${model}"): ${message}${hint ? `; ${hint}` : ''}`,
          { retryable, kind: 'http', status, ...(delayMs !== undefined ? { retryAfterMs: delayMs } : {}) },
        );
    const base = { statKey: String(status), ...(delayMs !== undefined ? { delayMs } : {}) };
    if (status === 429 && code === 'insufficient_quota') {
      return { ...base, retry: false, error: make(false, "the account has no quota left: check the plan and billing of the API key's account") };
    }
    if (status === 408 || status === 429 || status >= 500) return { ...base, retry: true, error: make(true) };
    let hint: string;
    switch (status) {
      case 400:
        hint = /context length|too long|too many tokens|maximum.*tokens|token limit/i.test(message)
          ? 'an input is longer than the model accepts: lower maxInputTokens (and the chunk size), or pass a real tokenizer as countTokens'
          : 'check the model name, "dimensions" (and sendDimensions) and the inputs';
        break;
      case 401:
        hint = apiKey || headers['api-key'] ? 'check the API key (the server rejected the one configured)' : 'check the API key (none was configured)';
        break;
      case 403:
        hint = `the API key may not use model "${model}" here: check the key's project, organization or region permissions`;
        break;
      case 404:
        hint = `check baseURL (${endpoint.origin}${endpoint.pathname.replace(/\/embeddings\/?$/, '')}) and model ("${model}")`;
        break;
      case 413:
        hint = 'the request is too large for the server: lower maxBatchItems or maxBatchTokens';
        break;
      default:
        hint = status === 422 ? 'check the model name, "dimensions" and the inputs' : '';
    }
    return { ...base, retry: false, error: make(false, hint) };
  }

  /** One HTTP request, with its own timeout; never throws except for the call's abort. */
  async function attempt(batch: Batch, signal: AbortSignal): Promise<AttemptResult> {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(TIMEOUT), timeoutMs);
    const onAbort = (): void => ctl.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const body: Record<string, unknown> = { model, input: batch.texts, encoding_format: 'float' };
    if (opts.sendDimensions) body.dimensions = dimensions;
    let phase = 'request';
    try {
      counters.requests++;
      const res = await fetch(endpoint, { method: 'POST', headers, body: JSON.stringify(body), signal: ctl.signal });
      phase = 'response body';
      const text = await res.text();
      if (!res.ok) return { failure: httpFailure(res, text) };
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (err) {
        const type = res.headers.get('content-type') ?? 'no content-type';
        const detail = `${clip((err as Error).message)}; ${text.length} characters of ${clip(type)}${
          /json/i.test(type) || text.trimStart().startsWith('{') ? ', truncated?' : ''
        }: ${clip(text.slice(0, 200))}`;
        return {
          failure: {
            statKey: 'invalid_json',
            retry: true,
            error: (n) =>
              new EmbeddingProviderError(`embedding response from ${where} (model "${model}") is not valid JSON${attemptsSuffix(n)} (${detail})`, {
                retryable: true,
                kind: 'invalid_json',
              }),
          },
        };
      }
      return readVectors(json, batch);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if (ctl.signal.aborted && ctl.signal.reason === TIMEOUT) {
        return {
          failure: {
            statKey: 'timeout',
            retry: true,
            error: (n) =>
              new EmbeddingProviderError(
                `embedding request timed out after ${timeoutMs} ms${n > 1 ? ` (${n} attempts)` : ''} (${where}, model "${model}", ${batch.texts.length} inputs)`,
                { retryable: true, kind: 'timeout' },
              ),
          },
        };
      }
      const cause = err instanceof Error ? err.cause : undefined;
      const code = cause instanceof Error ? (cause as { code?: unknown }).code : undefined;
      const reason =
        cause instanceof Error
          ? typeof code === 'string' && !cause.message.includes(code)
            ? `${code}: ${cause.message}`
            : cause.message
          : err instanceof Error
            ? err.message
            : String(err);
      return {
        failure: {
          statKey: 'network',
          retry: true,
          error: (n) =>
            new EmbeddingProviderError(`embedding request failed during the ${phase}${attemptsSuffix(n)} (${where}, model "${model}"): ${clip(String(reason))}`, {
              retryable: true,
              kind: 'network',
            }),
        },
      };
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** One batch, with its slot, rate limit and retries. */
  async function runBatch(batch: Batch, signal: AbortSignal, observer: EmbedObserver | undefined): Promise<Float32Array[]> {
    const release = await slots.acquire(signal);
    try {
      for (let attempts = 1; ; attempts++) {
        for (let wait = pausedUntil - Date.now(); wait > 0; wait = pausedUntil - Date.now()) await abortableSleep(wait, signal);
        await bucket?.acquire(signal);
        const result = await attempt(batch, signal);
        if ('vectors' in result) {
          counters.items += batch.texts.length;
          counters.tokens += result.tokens;
          return result.vectors;
        }
        const { failure } = result;
        counters.errorsByStatus[failure.statKey] = (counters.errorsByStatus[failure.statKey] ?? 0) + 1;
        const giveUp = !failure.retry || attempts > maxRetries || (failure.delayMs !== undefined && failure.delayMs > MAX_IN_CALL_WAIT_MS);
        const delay = giveUp ? undefined : (failure.delayMs ?? backoffDelayMs(attempts, BACKOFF_INITIAL_MS, BACKOFF_MAX_MS));
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
  }

  /** An observer's own failure must not change the call's outcome. */
  function report(observer: EmbedObserver | undefined, fault: EmbedFault): void {
    try {
      observer?.onFault?.(fault);
    } catch {
      // ignored: reporting is best effort
    }
  }

  function inputError(message: string): EmbeddingProviderError {
    return new EmbeddingProviderError(message, { retryable: false, kind: 'input' });
  }

  /** Inputs in order, cut into batches by item count and token budget. */
  function plan(texts: unknown): Batch[] {
    if (!Array.isArray(texts)) throw inputError(`embed() takes an array of strings, got ${describeType(texts)}`);
    const batches: Batch[] = [];
    let current: Batch | undefined;
    for (let i = 0; i < texts.length; i++) {
      const text: unknown = texts[i];
      if (typeof text !== 'string') throw inputError(`embed(): texts[${i}] is ${describeType(text)}, expected a string`);
      if (text.length === 0) throw inputError(`embed(): texts[${i}] is empty; embedding APIs reject empty inputs`);
      const tokens = countTokens(text);
      if (!Number.isFinite(tokens) || tokens < 0) throw inputError(`embed(): countTokens returned ${String(tokens)} for texts[${i}]`);
      if (tokens > maxInputTokens) {
        throw inputError(
          `embed(): texts[${i}] has ${tokens} tokens${opts.countTokens ? '' : ' (estimated)'}, more than model "${model}" accepts (maxInputTokens ${maxInputTokens}): the chunker should have split it`,
        );
      }
      if (!current || current.texts.length >= maxBatchItems || (current.tokens + tokens > maxBatchTokens && current.texts.length > 0)) {
        current = { start: i, texts: [], tokens: 0 };
        batches.push(current);
      }
      current.texts.push(text);
      current.tokens += tokens;
    }
    return batches;
  }

  return {
    model,
    dimensions,
    maxInputTokens,
    countTokens: (text) => countTokens(text),

    async embed(texts, signal, observer) {
      if (closed) throw closedError();
      signal?.throwIfAborted();
      const batches = plan(texts);
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

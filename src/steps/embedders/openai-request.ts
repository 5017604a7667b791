// One HTTP request to the embeddings endpoint: builds the body, sends it with its own timeout, and
// turns every way it can go wrong (status, body, timeout, connection) into a Failure.
import type { OpenAIConfig } from './openai-config.js';
import { httpFailure, readBody } from './openai-response.js';
import { EmbeddingProviderError, TIMEOUT, attemptsSuffix, type AttemptResult, type Batch, type OpenAIProviderStats } from './openai-support.js';

/** One HTTP request, with its own timeout; never throws except for the call's abort. */
export async function sendRequest(cfg: OpenAIConfig, batch: Batch, signal: AbortSignal, counters: OpenAIProviderStats): Promise<AttemptResult> {
  const { clip, where, model, timeoutMs } = cfg;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(TIMEOUT), timeoutMs);
  const onAbort = (): void => ctl.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const body: Record<string, unknown> = { model, input: batch.texts, encoding_format: 'float' };
  if (cfg.sendDimensions) body.dimensions = cfg.dimensions;
  let phase = 'request';
  try {
    counters.requests++;
    const res = await fetch(cfg.endpoint, { method: 'POST', headers: cfg.headers, body: JSON.stringify(body), signal: ctl.signal });
    phase = 'response body';
    const text = await res.text();
    if (!res.ok) return { failure: httpFailure(cfg, res, text) };
    return readBody(cfg, res, text, batch);
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

// Reading an embeddings answer: a 2xx body becomes one checked vector per input (in input order),
// anything else a Failure saying whether retrying can help and what to fix.
import { parseRetryAfterMs } from './http-limits.js';
import type { OpenAIConfig } from './openai-config.js';
import { EmbeddingProviderError, attemptsSuffix, describeType, serverErrorCode, serverMessage, type AttemptResult, type Batch, type Failure } from './openai-support.js';

function invalid(cfg: OpenAIConfig, detail: string, retry: boolean): { failure: Failure } {
  return {
    failure: {
      statKey: 'invalid_response',
      retry,
      error: (n) =>
        new EmbeddingProviderError(`embedding response from ${cfg.where} (model "${cfg.model}") is invalid${attemptsSuffix(n)}: ${detail}`, {
          retryable: retry,
          kind: 'invalid_response',
        }),
    },
  };
}

/** A 2xx answer's body: parsed, then read as vectors (an unparsable body is retried: it may be cut short). */
export function readBody(cfg: OpenAIConfig, res: Response, text: string, batch: Batch): AttemptResult {
  const { clip, where, model } = cfg;
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
  return readVectors(cfg, json, batch);
}

/** Turns a parsed 2xx body into vectors in input order, or a failure. */
export function readVectors(cfg: OpenAIConfig, json: unknown, batch: Batch): AttemptResult {
  const { clip, dimensions, model } = cfg;
  const n = batch.texts.length;
  const data = json && typeof json === 'object' ? (json as { data?: unknown }).data : undefined;
  if (!Array.isArray(data)) {
    const message = json && typeof json === 'object' && 'error' in json ? `: ${clip(serverMessage(JSON.stringify(json)))}` : '';
    return invalid(cfg, `expected an object with a "data" array, got ${describeType(json)}${message}`, true);
  }
  if (data.length !== n) return invalid(cfg, `${data.length} embeddings for ${n} inputs`, true);
  const out = new Array<Float32Array | undefined>(n);
  for (let pos = 0; pos < n; pos++) {
    const item = data[pos] as { index?: unknown; embedding?: unknown } | null;
    if (!item || typeof item !== 'object') return invalid(cfg, `data[${pos}] is ${describeType(item)}`, true);
    const index = item.index === undefined ? pos : item.index;
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= n || out[index]) {
      return invalid(cfg, `data[${pos}].index is ${JSON.stringify(index)}; expected each of 0..${n - 1} once`, true);
    }
    const embedding = item.embedding;
    if (typeof embedding === 'string') {
      return invalid(cfg, 'the server sent base64 embeddings although encoding_format "float" was requested', false);
    }
    if (!Array.isArray(embedding)) return invalid(cfg, `data[${pos}].embedding is ${describeType(embedding)}, expected an array of numbers`, true);
    if (embedding.length !== dimensions) {
      const hint = cfg.sendDimensions ? ' (the server ignored the requested dimensions)' : '';
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
        return invalid(cfg, `the vector for input ${batch.start + index} has a non-finite value at [${d}] (${JSON.stringify(v) ?? String(v)})`, false);
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
export function httpFailure(cfg: OpenAIConfig, res: Response, body: string): Failure {
  const { clip, where, model, endpoint, apiKey, headers } = cfg;
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

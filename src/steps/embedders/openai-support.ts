// Types, errors, defaults and request helpers of the OpenAI-compatible embedder (see
// openai-provider.ts for what one embed() call does).
import { UserError } from '../../errors.js';
import type { Embedder } from './embedder.js';

export interface OpenAIProviderOptions {
  /** e.g. https://api.openai.com/v1, http://127.0.0.1:11434/v1 (Ollama), an Azure deployment URL (with its ?api-version=). */
  baseURL: string;
  /** Sent as `Authorization: Bearer <apiKey>` when not empty; may be empty for local servers. */
  apiKey?: string;
  model: string;
  dimensions: number;
  /** Pass `dimensions` in the request (OpenAI text-embedding-3-*, which can shorten vectors). Default false. */
  sendDimensions?: boolean;
  /** Longest input accepted, in countTokens units. Default 8191 (OpenAI's limit). */
  maxInputTokens?: number;
  /** Most inputs per request. Default 256. */
  maxBatchItems?: number;
  /** Most estimated tokens per request. Default 250 000. */
  maxBatchTokens?: number;
  /** Per HTTP request (connect to last byte of the body). Default 30 000. */
  timeoutMs?: number;
  /** In-call retries for 408/429/5xx, timeouts, connection errors and unreadable bodies. Default 4. */
  maxRetries?: number;
  /** Most requests in flight for this provider instance. Default 4. */
  concurrency?: number;
  /** Requests per minute (token bucket, bursts of one second's worth). Default: no limit. */
  requestsPerMinute?: number;
  /** Token counter for batching and the maxInputTokens check. Default: estimateTokens(). */
  countTokens?: (s: string) => number;
  /** Extra request headers, e.g. Azure's `api-key`. They override the defaults. */
  headers?: Record<string, string>;
}

export interface OpenAIProviderStats {
  /** HTTP requests sent, retries included. */
  requests: number;
  /** Inputs embedded successfully. */
  items: number;
  /** Tokens of those inputs: the server's `usage` when it reports it, else the estimate. */
  tokens: number;
  /** Failed attempts by HTTP status ("429", "500"...) or by kind: "timeout", "network", "invalid_json", "invalid_response". */
  errorsByStatus: Record<string, number>;
  /** Attempts made after a failed one. */
  retries: number;
}

export interface OpenAIEmbedder extends Embedder {
  stats(): OpenAIProviderStats;
}

export type EmbeddingErrorKind = 'input' | 'http' | 'timeout' | 'network' | 'invalid_json' | 'invalid_response' | 'closed';

export class EmbeddingProviderError extends Error {
  override name = 'EmbeddingProviderError';
  readonly retryable: boolean;
  readonly kind: EmbeddingErrorKind;
  readonly status: number | undefined;
  /** How long the server asked to wait, when it did. */
  readonly retryAfterMs: number | undefined;

  constructor(
    message: string,
    init: { retryable: boolean; kind: EmbeddingErrorKind; status?: number; retryAfterMs?: number; cause?: unknown },
  ) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.retryable = init.retryable;
    this.kind = init.kind;
    this.status = init.status;
    this.retryAfterMs = init.retryAfterMs;
  }
}

export const OPENAI_DEFAULTS = {
  maxInputTokens: 8191,
  maxBatchItems: 256,
  maxBatchTokens: 250_000,
  timeoutMs: 30_000,
  maxRetries: 4,
  concurrency: 4,
} as const;

export const BACKOFF_INITIAL_MS = 500;
export const BACKOFF_MAX_MS = 20_000;
/** Longer server-requested delays are left to the engine's retry policy rather than waited for in the call. */
export const MAX_IN_CALL_WAIT_MS = 60_000;
/** Characters of a server's message or body kept in an error. */
export const MAX_DETAIL_CHARS = 500;

/**
 * Default token count: a deliberately high estimate for BPE tokenizers (OpenAI cl100k/o200k and the
 * like), so inputs and batches stay under the server's limits without shipping a tokenizer:
 * one token per 3 ASCII characters (English prose runs at about 4, code at about 3), one per
 * 2-byte UTF-8 character (accented Latin, Greek, Cyrillic, Hebrew, Arabic), two per 3-byte
 * character (CJK and most other scripts), three per astral character (emoji). It undercounts
 * unusual ASCII such as hex or base64 blobs (about 2 characters per token). For exact counts pass a
 * real tokenizer as `countTokens`; for models with small windows (BERT-style, 512) set maxInputTokens.
 */
export function estimateTokens(text: string): number {
  let ascii = 0;
  let other = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) ascii++;
    else if (c < 0x800) other += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      other += 3;
      i++;
    } else other += 2;
  }
  return Math.ceil(ascii / 3) + other;
}

// ---------------------------------------------------------------------------------------------
// Options

export function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new UserError(`openai embedder: ${name} must be a positive integer, got ${String(value)}`);
  return value;
}

export const SECRET_HEADER = /auth|key|token|secret|cookie|signature/i;

/** `{baseURL}/embeddings`, keeping a query string (Azure's api-version); a URL already ending in /embeddings is kept. */
export function embeddingsEndpoint(baseURL: string): URL {
  let url: URL;
  try {
    url = new URL(baseURL);
  } catch {
    throw new UserError(`openai embedder: baseURL is not a valid URL (got "${baseURL.replace(/\?.*$/s, '?…')}")`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UserError(`openai embedder: baseURL must be http(s), got ${url.protocol}`);
  if (url.username || url.password) throw new UserError('openai embedder: baseURL must not contain credentials; pass apiKey or headers');
  if (!/\/embeddings\/?$/.test(url.pathname)) url.pathname = `${url.pathname.replace(/\/+$/, '')}/embeddings`;
  return url;
}

// ---------------------------------------------------------------------------------------------
// One request

export interface Batch {
  start: number;
  texts: string[];
  tokens: number;
}

/** A failed attempt: whether to retry it in the call, and the final error if not. */
export interface Failure {
  /** Key for stats.errorsByStatus. */
  statKey: string;
  /** Retry inside the call (budget permitting). */
  retry: boolean;
  /** Server-requested delay. */
  delayMs?: number;
  /** Builds the error thrown when the call gives up, given the number of attempts made. */
  error: (attempts: number) => EmbeddingProviderError;
}

export type AttemptResult = { vectors: Float32Array[]; tokens: number } | { failure: Failure };

export const TIMEOUT = Symbol('timeout');

export function attemptsSuffix(attempts: number): string {
  return attempts > 1 ? ` after ${attempts} attempts` : '';
}

export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** The message a server put in its error body: OpenAI/Azure `{error:{message}}`, TEI/Ollama `{error}`, vLLM `{message}`, FastAPI `{detail}`. */
export function serverMessage(body: string): string {
  const trimmed = body.trim();
  if (!trimmed) return '';
  try {
    const json = JSON.parse(trimmed) as Record<string, unknown>;
    const error = json?.error;
    const candidates = [
      error && typeof error === 'object' ? (error as Record<string, unknown>).message : error,
      json?.message,
      json?.detail,
    ];
    for (const c of candidates) {
      if (typeof c === 'string' && c.trim()) return c.trim();
      if (c && typeof c === 'object') return JSON.stringify(c);
    }
  } catch {
    // not JSON: use the text
  }
  return trimmed;
}

export function serverErrorCode(body: string): string | undefined {
  try {
    const error = (JSON.parse(body) as { error?: { code?: unknown; type?: unknown } })?.error;
    if (error && typeof error === 'object') {
      if (typeof error.code === 'string') return error.code;
      if (typeof error.type === 'string') return error.type;
    }
  } catch {
    // no code
  }
  return undefined;
}


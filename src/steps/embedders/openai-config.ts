// The OpenAI-compatible embedder's options, checked once and resolved to the values every request
// uses: endpoint, limits, headers, and the redaction of secrets from anything put in a message.
import { UserError } from '../../errors.js';
import { MAX_DETAIL_CHARS, OPENAI_DEFAULTS, SECRET_HEADER, embeddingsEndpoint, estimateTokens, positiveInteger, type OpenAIProviderOptions } from './openai-support.js';

export interface OpenAIConfig {
  endpoint: URL;
  /** For messages: no query string (it may hold a key), no credentials. */
  where: string;
  model: string;
  dimensions: number;
  /** Whether requests carry `dimensions` (and a wrong vector size hints that the server ignored it). */
  sendDimensions: boolean;
  maxInputTokens: number;
  maxBatchItems: number;
  maxBatchTokens: number;
  timeoutMs: number;
  maxRetries: number;
  concurrency: number;
  requestsPerMinute: number | undefined;
  countTokens: (text: string) => number;
  /** No countTokens was given: token counts are estimates (said so in messages). */
  tokensEstimated: boolean;
  apiKey: string;
  headers: Record<string, string>;
  /** Redacts secrets, flattens whitespace and cuts to MAX_DETAIL_CHARS: for any text put in a message. */
  clip(text: string): string;
}

export function resolveOpenAIConfig(opts: OpenAIProviderOptions): OpenAIConfig {
  if (!opts || typeof opts !== 'object') throw new UserError('openai embedder: options are required');
  if (typeof opts.model !== 'string' || !opts.model.trim()) throw new UserError('openai embedder: model must be a non-empty string');
  const endpoint = embeddingsEndpoint(String(opts.baseURL));
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

  return {
    endpoint, where, model, dimensions, sendDimensions: Boolean(opts.sendDimensions), maxInputTokens, maxBatchItems, maxBatchTokens,
    timeoutMs, maxRetries, concurrency, requestsPerMinute: opts.requestsPerMinute, countTokens,
    tokensEstimated: !opts.countTokens, apiKey, headers, clip,
  };
}

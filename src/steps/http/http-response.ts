// Turns a raw response into the step's output, or into the error that says whether to retry.
import type { IncomingHttpHeaders } from 'node:http';
import { redactSecrets } from '../../errors.js';
import type { Json } from '../../pipeline/types.js';
import { parseRetryAfterMs } from '../embedders/http-limits.js';
import { HttpStepError } from './http-errors.js';
import type { RawResponse } from './http-request.js';

export interface HttpStepOutput {
  status: number;
  /** Only these response headers are kept (checkpoints stay small and free of cookies): */
  headers: Partial<Record<(typeof KEPT_HEADERS)[number], string>>;
  /** Parsed JSON when the response says it is JSON, else the text ('' for none). */
  body: Json;
}

export const KEPT_HEADERS = ['content-type', 'location', 'etag', 'last-modified', 'retry-after', 'x-request-id'] as const;

/** How much of an error response's body goes into the error message. */
const ERROR_BODY_CHARS = 300;

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** The delay a 429/503 asks for (Retry-After: seconds or an HTTP date; retry-after-ms). */
export function retryAfterOf(headers: IncomingHttpHeaders, now: number = Date.now()): number | undefined {
  const h = new Headers();
  for (const name of ['retry-after', 'retry-after-ms']) {
    const v = header(headers, name);
    if (v !== undefined) h.set(name, v);
  }
  return parseRetryAfterMs(h, now);
}

/** 429 (too many requests), 408 (request timeout) and 5xx may succeed later; other 4xx will not. */
export function statusIsRetryable(status: number): boolean {
  return status === 429 || status === 408 || status >= 500;
}

export function readResponse(raw: RawResponse, where: string): HttpStepOutput {
  // A server that echoes a secret header must not get it into the checkpoint: redact first.
  const text = redactSecrets(raw.body.toString('utf8'));
  const type = header(raw.headers, 'content-type') ?? '';
  if (raw.status >= 400) {
    const excerpt = text.replace(/\s+/g, ' ').trim().slice(0, ERROR_BODY_CHARS);
    const retryable = statusIsRetryable(raw.status);
    const retryAfterMs = retryable ? retryAfterOf(raw.headers) : undefined;
    throw new HttpStepError(`${where} answered ${raw.status} ${raw.statusText}${excerpt ? `: ${excerpt}` : ''}`, {
      retryable, status: raw.status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
  let body: Json = text;
  if (/^application\/([\w.+-]+\+)?json\b/i.test(type) && text.trim() !== '') {
    try {
      body = JSON.parse(text) as Json;
    } catch (err) {
      throw new HttpStepError(`${where} answered ${raw.status} with content-type ${type} but a body that is not JSON: ${(err as Error).message}`, { retryable: false, status: raw.status });
    }
  }
  const headers: HttpStepOutput['headers'] = {};
  for (const name of KEPT_HEADERS) {
    const v = header(raw.headers, name);
    if (v !== undefined) headers[name] = v;
  }
  return { status: raw.status, headers, body };
}

// The HTTP step's reading of a response: what is kept, what is retried, and how long to wait.
import { describe, expect, it } from 'vitest';
import { registerSecret } from '../../src/errors.js';
import { HttpStepError } from '../../src/steps/http/http-errors.js';
import { readResponse, retryAfterOf } from '../../src/steps/http/http-response.js';

const raw = (status: number, headers: Record<string, string>, body: string) => ({ status, statusText: 'X', headers, body: Buffer.from(body) });
const thrown = (fn: () => unknown): HttpStepError => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(HttpStepError);
    return err as HttpStepError;
  }
  throw new Error('expected an error');
};

describe('Retry-After', () => {
  it('reads seconds and HTTP dates', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(retryAfterOf({ 'retry-after': '2' }, now)).toBe(2000);
    expect(retryAfterOf({ 'retry-after': 'Wed, 01 Jan 2025 00:00:07 GMT' }, now)).toBe(7000);
    expect(retryAfterOf({ 'retry-after': 'Tue, 31 Dec 2024 23:00:00 GMT' }, now)).toBe(0);
    expect(retryAfterOf({ 'retry-after': 'later' }, now)).toBeUndefined();
    expect(retryAfterOf({}, now)).toBeUndefined();
  });
});

describe('readResponse', () => {
  it('parses JSON, keeps text as text, and keeps only a few headers', () => {
    expect(readResponse(raw(200, { 'content-type': 'application/json; charset=utf-8', 'set-cookie': 's=1', etag: '"e"' }, '{"ok":true}'), 'GET x')).toEqual({
      status: 200, headers: { 'content-type': 'application/json; charset=utf-8', etag: '"e"' }, body: { ok: true },
    });
    expect(readResponse(raw(201, { 'content-type': 'text/plain' }, 'made'), 'GET x').body).toBe('made');
    expect(readResponse(raw(204, {}, ''), 'GET x').body).toBe('');
  });

  it('retries 429, 408 and 5xx (with the Retry-After hint); fails other 4xx at once', () => {
    expect(thrown(() => readResponse(raw(429, { 'retry-after': '3' }, 'slow down'), 'POST x'))).toMatchObject({ retryable: true, retryAfterMs: 3000, status: 429 });
    expect(thrown(() => readResponse(raw(503, {}, ''), 'POST x'))).toMatchObject({ retryable: true, status: 503 });
    expect(thrown(() => readResponse(raw(408, {}, ''), 'POST x')).retryable).toBe(true);
    const e = thrown(() => readResponse(raw(404, { 'retry-after': '3' }, 'no such thing'), 'POST https://h/p'));
    expect(e).toMatchObject({ retryable: false, status: 404, message: 'POST https://h/p answered 404 X: no such thing' });
    expect(e.retryAfterMs).toBeUndefined();
  });

  it('never keeps a secret a server echoes back', () => {
    registerSecret('s3cr3t-token-value');
    const out = readResponse(raw(200, { 'content-type': 'application/json' }, '{"auth":"Bearer s3cr3t-token-value"}'), 'GET x');
    expect(JSON.stringify(out)).not.toContain('s3cr3t');
  });
});

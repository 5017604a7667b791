import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backoffMs } from '../../src/util/backoff.js';
import { parseRetryAfterMs, Semaphore, TokenBucket } from '../../src/steps/embedders/http-limits.js';
import {
  createOpenAIEmbedder,
  EmbeddingProviderError,
  estimateTokens,
  type EmbedFault,
  type OpenAIEmbedder,
  type OpenAIProviderOptions,
} from '../../src/steps/embedders/openai-provider.js';
import { fakeEmbedding, startFakeEmbeddingsServer, type FakeEmbeddingsServer } from '../fixtures/fake-embeddings-server.js';

const DIMS = 8;
const KEY = 'sk-test-SECRET-0123456789abcdef';

let server: FakeEmbeddingsServer;
const embedders: OpenAIEmbedder[] = [];

beforeAll(async () => {
  server = await startFakeEmbeddingsServer({ dimensions: DIMS });
});
afterAll(async () => {
  await server.stop();
});
afterEach(async () => {
  await Promise.all(embedders.splice(0).map((e) => e.close()));
  server.reset();
});

function embedder(opts: Partial<OpenAIProviderOptions> = {}): OpenAIEmbedder {
  const e = createOpenAIEmbedder({ baseURL: server.baseURL, apiKey: KEY, model: 'fake-model', dimensions: DIMS, ...opts });
  embedders.push(e);
  return e;
}

const texts = (n: number, prefix = 'text'): string[] => Array.from({ length: n }, (_, i) => `${prefix} number ${i}`);

function expectVectorsFor(inputs: string[], vectors: Float32Array[]): void {
  expect(vectors).toHaveLength(inputs.length);
  vectors.forEach((v, i) => {
    expect(v).toBeInstanceOf(Float32Array);
    expect(Array.from(v)).toEqual(fakeEmbedding(inputs[i]!, DIMS));
  });
}

async function failure(p: Promise<unknown>): Promise<EmbeddingProviderError> {
  const err = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EmbeddingProviderError);
  expectNoKey(err);
  return err as EmbeddingProviderError;
}

function expectNoKey(err: unknown): void {
  const e = err as Error;
  for (const text of [e.message, e.stack ?? '', inspect(e, { depth: 10 }), JSON.stringify(e), String(e)]) {
    expect(text).not.toContain(KEY);
    expect(text).not.toContain('SECRET-0123456789');
  }
}

describe('OpenAI-compatible embedder: requests', () => {
  it('embeds in order, sends encoding_format "float", the model and the bearer key', async () => {
    const e = embedder();
    const inputs = texts(5);
    expectVectorsFor(inputs, await e.embed(inputs));
    expect(server.requests).toHaveLength(1);
    const [req] = server.requests;
    expect(req!.url).toBe('/v1/embeddings');
    expect(req!.body).toEqual({ model: 'fake-model', input: inputs, encoding_format: 'float' });
    expect(req!.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(await e.embed([])).toEqual([]);
    expect(server.requests).toHaveLength(1);
    expect(e.stats()).toEqual({ requests: 1, items: 5, tokens: 15, errorsByStatus: {}, retries: 0 });
  });

  it('a server that defaults to base64 would send strings: the fixture does, and the provider never gets them', async () => {
    const raw = await fetch(`${server.baseURL}/embeddings`, { method: 'POST', body: JSON.stringify({ model: 'm', input: ['a'] }) });
    const json = (await raw.json()) as { data: Array<{ embedding: unknown }> };
    expect(typeof json.data[0]!.embedding).toBe('string');
    const e = embedder();
    expectVectorsFor(['a'], await e.embed(['a']));
    expect(server.requests.at(-1)!.encodingFormat).toBe('float');
  });

  it('sends dimensions only when asked, no Authorization without a key, custom headers, and keeps an Azure-style query', async () => {
    const azure = embedder({
      baseURL: `http://127.0.0.1:${server.port}/openai/deployments/dep1?api-version=2024-02-01`,
      apiKey: '',
      headers: { 'api-key': KEY },
      sendDimensions: true,
    });
    await azure.embed(['x']);
    const [req] = server.requests;
    expect(req!.url).toBe('/openai/deployments/dep1/embeddings?api-version=2024-02-01');
    expect(req!.headers.authorization).toBeUndefined();
    expect(req!.headers['api-key']).toBe(KEY);
    expect(req!.dimensions).toBe(DIMS);
    await embedder({ baseURL: `${server.baseURL}/` }).embed(['y']);
    expect(server.requests[1]!.url).toBe('/v1/embeddings');
    expect(server.requests[1]!.dimensions).toBeUndefined();
  });

  it('splits by item count, keeping order across batches', async () => {
    const e = embedder({ maxBatchItems: 3 });
    const inputs = texts(10);
    expectVectorsFor(inputs, await e.embed(inputs));
    expect(server.requests.map((r) => r.inputs.length)).toEqual([3, 3, 3, 1]);
    expect(server.requests.flatMap((r) => r.inputs).sort()).toEqual([...inputs].sort());
  });

  it('splits by token budget (an input bigger than the budget goes alone)', async () => {
    const e = embedder({ countTokens: (s) => s.length, maxBatchTokens: 10 });
    const inputs = ['aaaa', 'bbbb', 'cccc', 'dddddddddddd', 'ee', 'ffffffff', 'g'];
    expectVectorsFor(inputs, await e.embed(inputs));
    const batches = server.requests.map((r) => r.inputs).sort((a, b) => inputs.indexOf(a[0]!) - inputs.indexOf(b[0]!));
    expect(batches).toEqual([['aaaa', 'bbbb'], ['cccc'], ['dddddddddddd'], ['ee', 'ffffffff'], ['g']]);
    expect(e.countTokens('abc')).toBe(3);
  });

  it('re-orders by index, and keeps input order when batches finish out of order', async () => {
    server.inject({ kind: 'shuffle' });
    const e = embedder({ maxBatchItems: 4 });
    const first = texts(4, 'shuffled');
    expectVectorsFor(first, await e.embed(first));

    server.inject({ kind: 'delay', ms: 80, match: (r) => r.inputs.includes('slow number 0') });
    const inputs = texts(12, 'slow');
    expectVectorsFor(inputs, await e.embed(inputs));
    const slow = server.requests.find((r) => r.inputs.includes('slow number 0'))!;
    expect(slow.fault).toBe('delay');
  });

  it('rejects an input over maxInputTokens without sending anything, as non-retryable', async () => {
    const e = embedder({ maxInputTokens: 10, countTokens: (s) => s.length });
    const err = await failure(e.embed(['short', 'this one is far too long']));
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/texts\[1\] has 24 tokens, more than model "fake-model" accepts \(maxInputTokens 10\)/);
    expect(server.requests).toHaveLength(0);
    expect((await failure(e.embed(['ok', '']))).message).toMatch(/texts\[1\] is empty/);
  });

  it('estimates tokens conservatively by script', () => {
    expect(estimateTokens('')).toBe(0);
    expect(estimateTokens('abcdef')).toBe(2);
    expect(estimateTokens('héllo')).toBe(2 + 1);
    expect(estimateTokens('日本語')).toBe(6);
    expect(estimateTokens('😀')).toBe(3);
    expect(estimateTokens('The quick brown fox jumps over the lazy dog.')).toBeGreaterThanOrEqual(10); // 10 cl100k tokens
  });

  it('validates its options', () => {
    const base = { baseURL: server.baseURL, model: 'm', dimensions: 4 };
    expect(() => createOpenAIEmbedder({ ...base, baseURL: 'not a url' })).toThrow(/baseURL is not a valid URL/);
    expect(() => createOpenAIEmbedder({ ...base, baseURL: 'ftp://x/v1' })).toThrow(/http\(s\)/);
    expect(() => createOpenAIEmbedder({ ...base, dimensions: 0 })).toThrow(/dimensions must be a positive integer/);
    expect(() => createOpenAIEmbedder({ ...base, maxRetries: -1 })).toThrow(/maxRetries/);
    expect(() => createOpenAIEmbedder({ ...base, model: '' })).toThrow(/model/);
  });
});

describe('OpenAI-compatible embedder: failures and retries', () => {
  it('honours Retry-After (seconds) on 429', async () => {
    server.inject({ kind: 'status', status: 429, retryAfter: 1 });
    const e = embedder();
    const t0 = performance.now();
    expectVectorsFor(['a', 'b'], await e.embed(['a', 'b']));
    const waited = server.requests[1]!.receivedAt - server.requests[0]!.receivedAt;
    expect(waited).toBeGreaterThanOrEqual(990);
    expect(waited).toBeLessThan(1500);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(e.stats()).toMatchObject({ requests: 2, retries: 1, items: 2, errorsByStatus: { '429': 1 } });
  });

  it('honours retry-after-ms over Retry-After, and pauses the other requests of the instance', async () => {
    server.inject({ kind: 'status', status: 429, retryAfter: 30, retryAfterMs: 300, match: (r) => r.inputs.includes('text number 0') });
    server.inject({ kind: 'delay', ms: 100, match: (r) => r.inputs.includes('text number 1') });
    const e = embedder({ maxBatchItems: 1, concurrency: 2 });
    const inputs = texts(3);
    const t0 = performance.now();
    expectVectorsFor(inputs, await e.embed(inputs));
    expect(performance.now() - t0).toBeLessThan(2000);
    const at = (text: string): number[] => server.requests.filter((r) => r.inputs[0] === text).map((r) => r.receivedAt);
    const [first, retry] = at('text number 0');
    expect(retry! - first!).toBeGreaterThanOrEqual(290);
    // text 2 got a slot when text 1 finished (~100 ms) but waited for the 429's pause to end
    expect(at('text number 2')[0]! - first!).toBeGreaterThanOrEqual(290);
  });

  it('parses Retry-After as seconds or an HTTP date, and backs off exponentially with jitter', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfterMs(new Headers({ 'retry-after': '2' }), now)).toBe(2000);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': '0.5' }), now)).toBe(500);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': 'Wed, 01 Jan 2025 00:00:03 GMT' }), now)).toBe(3000);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': 'Tue, 31 Dec 2024 23:00:00 GMT' }), now)).toBe(0);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': '9', 'retry-after-ms': '123.4' }), now)).toBe(124);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': 'soon' }), now)).toBeUndefined();
    expect(parseRetryAfterMs(new Headers(), now)).toBeUndefined();
    expect([1, 2, 3, 4, 10].map((n) => backoffMs(n - 1, { initialMs: 500, maxMs: 4000, minFraction: 0.5 }, () => 1))).toEqual([500, 1000, 2000, 4000, 4000]);
    expect(backoffMs(2, { initialMs: 500, maxMs: 4000, minFraction: 0.5 }, () => 0)).toBe(1000);
  });

  it('retries a 500 and succeeds', async () => {
    server.inject({ kind: 'status', status: 500 });
    const e = embedder();
    expectVectorsFor(['a'], await e.embed(['a']));
    expect(e.stats()).toMatchObject({ requests: 2, retries: 1, errorsByStatus: { '500': 1 } });
  });

  it('gives up after maxRetries with a retryable error that names the status and the server message', async () => {
    server.inject({ kind: 'status', status: 503, message: 'model is warming up', retryAfterMs: 1, times: 3 });
    const e = embedder({ maxRetries: 2 });
    const err = await failure(e.embed(['a']));
    expect(err.retryable).toBe(true);
    expect(err.status).toBe(503);
    expect(err.message).toMatch(/failed with 503 Service Unavailable after 3 attempts .*: model is warming up/);
    expect(server.requests).toHaveLength(3);
  });

  it('does not wait in the call when the server asks for more than a minute', async () => {
    server.inject({ kind: 'status', status: 429, retryAfter: 3600 });
    const err = await failure(embedder().embed(['a']));
    expect(err.retryable).toBe(true);
    expect(err.retryAfterMs).toBe(3_600_000);
    expect(server.requests).toHaveLength(1);
  });

  it('treats 429 insufficient_quota as non-retryable', async () => {
    server.inject({ kind: 'status', status: 429, code: 'insufficient_quota', message: 'You exceeded your current quota' });
    const err = await failure(embedder().embed(['a']));
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/quota.*billing/);
    expect(server.requests).toHaveLength(1);
  });

  it('times out a hanging request with a retryable error, and retries it', async () => {
    server.inject({ kind: 'hang' });
    const e = embedder({ timeoutMs: 150, maxRetries: 0 });
    const t0 = performance.now();
    const err = await failure(e.embed(['a']));
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(err.retryable).toBe(true);
    expect(err.kind).toBe('timeout');
    expect(err.message).toMatch(/^embedding request timed out after 150 ms/);
    expect(e.stats().errorsByStatus).toEqual({ timeout: 1 });

    server.inject({ kind: 'hang' });
    const retrying = embedder({ timeoutMs: 150, maxRetries: 1 });
    expectVectorsFor(['b'], await retrying.embed(['b']));
    expect(retrying.stats()).toMatchObject({ retries: 1, errorsByStatus: { timeout: 1 } });
  });

  it('retries truncated JSON and a reset connection; a persistent one is a clear retryable error', async () => {
    server.inject({ kind: 'truncated-json' }, { kind: 'reset' });
    const e = embedder();
    expectVectorsFor(['a'], await e.embed(['a']));
    expect(e.stats().errorsByStatus).toEqual({ invalid_json: 1, network: 1 });

    server.inject({ kind: 'truncated-json', times: 2 });
    const err = await failure(embedder({ maxRetries: 1 }).embed(['a']));
    expect(err.retryable).toBe(true);
    expect(err.kind).toBe('invalid_json');
    expect(err.message).toMatch(/is not valid JSON after 2 attempts .*truncated\?/);
  });

  it('reports every fault to the call\'s observer, the ones retried inside the call included, with the delay', async () => {
    server.inject(
      { kind: 'status', status: 429, retryAfterMs: 5 },
      { kind: 'status', status: 500, message: `echo ${KEY}` },
      { kind: 'truncated-json' },
      { kind: 'reset' },
      { kind: 'status', status: 503, times: 2 },
    );
    const faults: EmbedFault[] = [];
    const e = embedder({ maxRetries: 4 });
    await failure(e.embed(['a'], undefined, { onFault: (f) => faults.push(f) }));
    expect(faults.map((f) => [f.reason, f.attempt, f.retryInMs !== undefined])).toEqual([
      ['429', 1, true], ['500', 2, true], ['invalid_json', 3, true], ['network', 4, true], ['503', 5, false],
    ]);
    expect(faults[0]).toMatchObject({ status: 429, retryInMs: 5, serverDelayMs: 5, inputs: 1 });
    expect(faults[1]!.message).toMatch(/failed with 500 .*: echo \*\*\*$/);
    for (const f of faults) expectNoKey(new Error(JSON.stringify(f)));
    // An observer that throws changes nothing: the next call succeeds after its retried 503.
    expectVectorsFor(['b'], await e.embed(['b'], undefined, { onFault: () => { throw new Error('observer bug'); } }));
  });

  it('fails clearly, without retrying, on vectors of the wrong dimension', async () => {
    server.inject({ kind: 'wrong-dimensions', dimensions: 4 });
    const err = await failure(embedder().embed(['a', 'b']));
    expect(err.retryable).toBe(false);
    expect(err.message).toBe('embedding model "fake-model" returned 4-dim vectors, expected 8: fix "dimensions" in the pipeline config');
    expect(server.requests).toHaveLength(1);
  });

  it('rejects non-finite values and base64 strings; retries a wrong vector count', async () => {
    server.inject({ kind: 'non-finite' });
    const nan = await failure(embedder().embed(['a']));
    expect(nan.retryable).toBe(false);
    expect(nan.message).toMatch(/non-finite value at \[0\]/);

    server.inject({ kind: 'base64' });
    const b64 = await failure(embedder().embed(['a']));
    expect(b64.retryable).toBe(false);
    expect(b64.message).toMatch(/base64/);

    server.inject({ kind: 'wrong-count' });
    const e = embedder();
    expectVectorsFor(['a', 'b'], await e.embed(['a', 'b']));
    expect(e.stats().errorsByStatus).toEqual({ invalid_response: 1 });
  });

  it('401: non-retryable, with a hint, and the echoed key redacted', async () => {
    const locked = await startFakeEmbeddingsServer({ dimensions: DIMS, apiKey: 'the-right-key' });
    try {
      const e = createOpenAIEmbedder({ baseURL: locked.baseURL, apiKey: KEY, model: 'm', dimensions: DIMS });
      const err = await failure(e.embed(['a']));
      expect(err.retryable).toBe(false);
      expect(err.status).toBe(401);
      expect(err.message).toMatch(/failed with 401 Unauthorized .*Incorrect API key provided: \*\*\*.*check the API key/);
      expect(locked.requests).toHaveLength(1);
      expect(locked.requests[0]!.headers.authorization).toBe(`Bearer ${KEY}`); // it was sent, just never shown

      const azure = createOpenAIEmbedder({ baseURL: locked.baseURL, headers: { 'api-key': KEY }, model: 'm', dimensions: DIMS });
      const err2 = await failure(azure.embed(['a']));
      expect(err2.message).toContain('Incorrect API key provided: ***');
      expectVectorsFor(['ok'], await createOpenAIEmbedder({ baseURL: locked.baseURL, apiKey: 'the-right-key', model: 'm', dimensions: DIMS }).embed(['ok']));
    } finally {
      await locked.stop();
    }
  });

  it('404 and 400: non-retryable with actionable hints', async () => {
    const strict = await startFakeEmbeddingsServer({ dimensions: DIMS, models: ['known'], path: '/v1/embeddings' });
    try {
      const e = createOpenAIEmbedder({ baseURL: strict.baseURL, model: 'unknown', dimensions: DIMS });
      const err = await failure(e.embed(['a']));
      expect(err.retryable).toBe(false);
      expect(err.message).toMatch(/404.*does not exist.*check baseURL \(http:\/\/127\.0\.0\.1:\d+\/v1\) and model \("unknown"\)/);

      const wrongPath = createOpenAIEmbedder({ baseURL: `http://127.0.0.1:${strict.port}/nope`, model: 'known', dimensions: DIMS });
      expect((await failure(wrongPath.embed(['a']))).message).toMatch(/404.*POST http:\/\/127\.0\.0\.1:\d+\/nope\/embeddings/);
      strict.inject({ kind: 'status', status: 400, message: "This model's maximum context length is 8192 tokens" });
      const tooLong = await failure(createOpenAIEmbedder({ baseURL: strict.baseURL, model: 'known', dimensions: DIMS }).embed(['a']));
      expect(tooLong.retryable).toBe(false);
      expect(tooLong.message).toMatch(/400 Bad Request.*lower maxInputTokens/);
      expect(strict.requests.filter((r) => r.status === 400)).toHaveLength(1);
    } finally {
      await strict.stop();
    }
  });

  it('connection refused: retried, then a retryable network error', async () => {
    const gone = await startFakeEmbeddingsServer();
    const baseURL = gone.baseURL;
    await gone.stop();
    const e = createOpenAIEmbedder({ baseURL, apiKey: KEY, model: 'm', dimensions: DIMS, maxRetries: 1 });
    const err = await failure(e.embed(['a']));
    expect(err.retryable).toBe(true);
    expect(err.kind).toBe('network');
    expect(err.message).toMatch(/ECONNREFUSED/);
    expect(e.stats()).toMatchObject({ requests: 2, retries: 1, errorsByStatus: { network: 2 } });
  });

  it('one batch failing for good aborts the call\'s other requests', async () => {
    server.inject({ kind: 'status', status: 400, match: (r) => r.inputs.includes('text number 0') });
    server.inject({ kind: 'hang', times: 10 });
    const e = embedder({ maxBatchItems: 1, concurrency: 4, timeoutMs: 10_000 });
    const t0 = performance.now();
    const err = await failure(e.embed(texts(4)));
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(err.status).toBe(400);
    await expect.poll(() => server.inFlight).toBe(0);
  });
});

describe('OpenAI-compatible embedder: abort, concurrency, rate limit, close', () => {
  it('the caller\'s signal aborts a request in flight', async () => {
    server.inject({ kind: 'hang' });
    const e = embedder({ timeoutMs: 10_000 });
    const ctl = new AbortController();
    const t0 = performance.now();
    const p = e.embed(['a'], ctl.signal);
    await expect.poll(() => server.requests.length).toBe(1);
    ctl.abort(new Error('shutting down'));
    await expect(p).rejects.toThrow('shutting down');
    expect(performance.now() - t0).toBeLessThan(1000);
    await expect.poll(() => server.requests[0]!.aborted).toBe(true);
    await expect(e.embed(['b'], AbortSignal.abort(new Error('already')))).rejects.toThrow('already');
  });

  it('the caller\'s signal aborts a backoff wait', async () => {
    server.inject({ kind: 'status', status: 429, retryAfter: 30 });
    const e = embedder();
    const ctl = new AbortController();
    const p = e.embed(['a'], ctl.signal);
    await expect.poll(() => server.requests.length).toBe(1);
    await new Promise((r) => setTimeout(r, 50));
    const t0 = performance.now();
    ctl.abort(new Error('cancelled'));
    await expect(p).rejects.toThrow('cancelled');
    expect(performance.now() - t0).toBeLessThan(200);
    expect(server.requests).toHaveLength(1);
  });

  it('keeps at most `concurrency` requests in flight, across concurrent calls', async () => {
    const slow = await startFakeEmbeddingsServer({ dimensions: DIMS, latencyMs: 40 });
    try {
      const e = createOpenAIEmbedder({ baseURL: slow.baseURL, model: 'm', dimensions: DIMS, maxBatchItems: 2, concurrency: 3 });
      const a = texts(12, 'a');
      const b = texts(8, 'b');
      const [va, vb] = await Promise.all([e.embed(a), e.embed(b)]);
      expectVectorsFor(a, va);
      expectVectorsFor(b, vb);
      expect(slow.requests).toHaveLength(10);
      expect(slow.maxInFlight).toBe(3);
      expect(Math.max(...slow.requests.map((r) => r.inFlightAtArrival))).toBe(3);
    } finally {
      await slow.stop();
    }
  });

  it('respects requestsPerMinute', async () => {
    const e = embedder({ maxBatchItems: 1, concurrency: 50, requestsPerMinute: 1200 }); // 20/s, bursts of 20
    const t0 = performance.now();
    expectVectorsFor(texts(30), await e.embed(texts(30)));
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(450); // 10 requests beyond the burst at 50 ms each
    expect(elapsed).toBeLessThan(1500);
    const times = server.requests.map((r) => r.receivedAt).sort((x, y) => x - y);
    expect(times[29]! - times[0]!).toBeGreaterThanOrEqual(450);
  });

  it('close() rejects calls in flight and later calls', async () => {
    server.inject({ kind: 'hang' });
    const e = embedder({ timeoutMs: 10_000 });
    const p = e.embed(['a']);
    await expect.poll(() => server.requests.length).toBe(1);
    await e.close();
    const err = await failure(p);
    expect(err.kind).toBe('closed');
    await expect(e.embed(['b'])).rejects.toThrow(/closed/);
  });

  it('semaphore and token bucket: FIFO, abortable, refunded', async () => {
    const sem = new Semaphore(1);
    const release = await sem.acquire();
    const ctl = new AbortController();
    const aborted = sem.acquire(ctl.signal);
    const next = sem.acquire();
    ctl.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    release();
    release(); // idempotent
    const r2 = await next;
    expect(sem.active).toBe(1);
    r2();
    expect(sem.active).toBe(0);

    let now = 0;
    const bucket = new TokenBucket(60, 1, () => now); // one per second
    await bucket.acquire();
    const ctl2 = new AbortController();
    const waiting = bucket.acquire(ctl2.signal);
    ctl2.abort(new Error('nope'));
    await expect(waiting).rejects.toThrow('nope');
    now = 1000;
    const t0 = performance.now();
    await bucket.acquire(); // the aborted reservation was refunded: a token is due now
    expect(performance.now() - t0).toBeLessThan(50);
  });
});

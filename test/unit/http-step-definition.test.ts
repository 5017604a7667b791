// httpStep's definition errors surface when the pipeline loads, naming the step; a request the
// definition makes impossible fails for good instead of being retried.
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import type { StepContext } from '../../src/pipeline/types.js';
import { httpStep } from '../../src/steps/http/http-step.js';

const ctx = (): StepContext => ({
  runId: 'r1', pipeline: 'p', key: null, attempt: 1, runInput: {}, signal: new AbortController().signal, log: silentLogger,
  db: { query: () => Promise.reject(new Error('no database here')) } as unknown as StepContext['db'], tx: () => Promise.reject(new Error('no tx')),
  repeats: 0, output: () => Promise.resolve(undefined),
});

describe('httpStep definition', () => {
  it('refuses bad options at load time, naming the step', () => {
    expect(() => httpStep({ name: 's', url: 'not a url' })).toThrow(new UserError('httpStep "s": url "not a url" is not an absolute URL'));
    expect(() => httpStep({ name: 's', url: 'ftp://x.example/' })).toThrow(/only http and https URLs, got ftp:/);
    expect(() => httpStep({ name: 's', url: 'https://x.example/', method: 'GE T' })).toThrow(/method "GE T" is not an HTTP method/);
    expect(() => httpStep({ name: 's', url: 'https://x.example/', maxResponseBytes: 0 })).toThrow(/maxResponseBytes must be a positive whole number/);
    expect(() => httpStep({ name: 's', url: 'https://x.example/', hostPolicy: { allowHosts: ['https://x.example'] } })).toThrow(/hostPolicy.allowHosts: "https:\/\/x.example" is not a host pattern/);
    expect(() => httpStep({ name: 's', url: 'https://x.example/', secretHeaders: { Authorization: {} as { env: string } } })).toThrow(/secretHeaders.Authorization needs \{ env/);
  });

  it('defaults to GET, or POST with a body', () => {
    expect(httpStep({ name: 's', url: 'https://x.example/' }).name).toBe('s');
  });

  it('a header value a request cannot carry fails without retry', async () => {
    const step = httpStep({ name: 's', url: 'http://127.0.0.1:9/', headers: { 'x-bad': 'a\r\nb' }, hostPolicy: 'any' });
    await expect(step.run(ctx(), undefined)).rejects.toMatchObject({ name: 'HttpStepError', retryable: false });
  });

  it('a refused host is not retried', async () => {
    const step = httpStep({ name: 's', url: 'http://169.254.169.254/latest/meta-data/' });
    await expect(step.run(ctx(), undefined)).rejects.toMatchObject({ name: 'HostNotAllowedError', retryable: false });
  });
});

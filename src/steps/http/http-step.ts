/* eslint-disable @typescript-eslint/no-explicit-any -- user-facing generics default to any, like SingleStep's */
// httpStep(): a ready-made step that calls an HTTP endpoint with values from the run so far.
// Retries are the engine's (its backoff, its attempts, durable across crashes): an attempt makes
// one request and throws an error that says whether to retry and how long the server asked to wait.
import { readSecret } from '../../config/config.js';
import { UserError } from '../../errors.js';
import type { Json, RetryPolicy, SingleStep, StepContext } from '../../pipeline/types.js';
import { HostNotAllowedError, parseHostPattern, vetUrl, type HostPolicyOption } from './host-policy.js';
import { sendHttp } from './http-request.js';
import { readResponse, type HttpStepOutput } from './http-response.js';
import { HttpStepError, describeNetworkError } from './http-errors.js';

/** A value, or a function of the run so far: the step's input (the previous step's output) and ctx.runInput. */
export type FromRun<T, I, R> = T | ((ctx: StepContext<R>, input: I) => T | Promise<T>);

/** A header whose value is read from the environment at call time: never stored, logged or returned. */
export interface SecretHeader {
  /** The environment variable's name (e.g. 'SHIP_TOKEN'). */
  env: string;
  /** Put before the value (e.g. 'Bearer '). */
  prefix?: string;
}

/** Anything JSON.stringify takes (an object, an array, a scalar). */
export type JsonBody = string | number | boolean | null | object;

export interface HttpStepOptions<I = any, R = any> {
  name: string;
  /** Default GET, or POST when there is a body. */
  method?: string;
  url: FromRun<string, I, R>;
  headers?: FromRun<Record<string, string>, I, R>;
  /** Sent as JSON (content-type: application/json). undefined: no body. */
  body?: FromRun<JsonBody, I, R>;
  /** Per-request limit (connect, send, receive). Default 30 s. A timeout is retried. */
  timeoutMs?: number;
  /** Larger responses fail the step (not retried). Default 1 MiB. */
  maxResponseBytes?: number;
  secretHeaders?: Record<string, SecretHeader>;
  /** Sends `Idempotency-Key: <run id>:<step name>`: the same on every attempt, so the server can drop repeats. */
  idempotencyKey?: boolean;
  /** Which hosts may be called (host-policy.ts). Default {}: any host that resolves to public addresses only. */
  hostPolicy?: HostPolicyOption;
  /** The engine's retry policy for this step. 429, 408, 5xx, timeouts and network errors are retried; other 4xx are not. */
  retry?: RetryPolicy;
  concurrency?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;
const METHOD = /^[A-Z]+$/;

async function resolve<T, I, R>(v: FromRun<T, I, R> | undefined, ctx: StepContext<R>, input: I): Promise<T | undefined> {
  return typeof v === 'function' ? await (v as (c: StepContext<R>, i: I) => T | Promise<T>)(ctx, input) : v;
}

function positive(name: string, step: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v <= 0) throw new UserError(`httpStep "${step}": ${name} must be a positive whole number, got ${String(v)}`);
  return v;
}

function parseUrl(step: string, value: unknown): URL {
  if (typeof value !== 'string') throw new UserError(`httpStep "${step}": url must be a string, got ${typeof value}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UserError(`httpStep "${step}": url ${JSON.stringify(value.slice(0, 200))} is not an absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UserError(`httpStep "${step}": only http and https URLs, got ${url.protocol}`);
  return url;
}

/** Secret header values, read now (so a rotated secret is used on the next attempt). */
function secretHeaderValues(step: string, secrets: Record<string, SecretHeader> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [header, spec] of Object.entries(secrets ?? {})) {
    const value = readSecret(spec.env); // also registers it for redaction everywhere
    if (value === undefined) throw new UserError(`httpStep "${step}": the environment variable ${spec.env} (secret header ${header}) is not set`);
    out[header.toLowerCase()] = `${spec.prefix ?? ''}${value}`;
  }
  return out;
}

export function httpStep<I = any, R = any>(opts: HttpStepOptions<I, R>): SingleStep<I, HttpStepOutput, R> {
  const { name } = opts;
  if (typeof opts.url !== 'function') parseUrl(name, opts.url); // a bad literal URL fails at load time
  const method = (opts.method ?? (opts.body === undefined ? 'GET' : 'POST')).toUpperCase();
  if (!METHOD.test(method)) throw new UserError(`httpStep "${name}": method ${JSON.stringify(opts.method)} is not an HTTP method`);
  const timeoutMs = positive('timeoutMs', name, opts.timeoutMs, DEFAULT_TIMEOUT_MS);
  const maxResponseBytes = positive('maxResponseBytes', name, opts.maxResponseBytes, DEFAULT_MAX_RESPONSE_BYTES);
  for (const [header, spec] of Object.entries(opts.secretHeaders ?? {})) {
    if (!spec || typeof spec.env !== 'string' || !spec.env) throw new UserError(`httpStep "${name}": secretHeaders.${header} needs { env: 'VARIABLE_NAME' }`);
  }
  const hostPolicy = opts.hostPolicy ?? {};
  if (hostPolicy !== 'any') {
    for (const entry of hostPolicy.allowHosts ?? []) {
      try {
        parseHostPattern(entry);
      } catch (err) {
        throw new UserError(`httpStep "${name}": hostPolicy.allowHosts: ${(err as Error).message}`);
      }
    }
  }

  return {
    name,
    ...(opts.retry ? { retry: opts.retry } : {}),
    ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
    run: async (ctx, input) => {
      const url = parseUrl(name, await resolve(opts.url, ctx, input));
      const where = `${method} ${url.origin}${url.pathname}`; // no query string in messages: it may hold a key
      const body = await resolve(opts.body, ctx, input);
      const headers: Record<string, string> = { accept: 'application/json, text/*;q=0.9, */*;q=0.1' };
      for (const [k, v] of Object.entries((await resolve(opts.headers, ctx, input)) ?? {})) headers[k.toLowerCase()] = String(v);
      if (body !== undefined) headers['content-type'] ??= 'application/json';
      if (opts.idempotencyKey) headers['idempotency-key'] = `${ctx.runId}:${name}`;
      Object.assign(headers, secretHeaderValues(name, opts.secretHeaders));

      const addresses = await vetUrl(url, hostPolicy).catch((err: unknown) => {
        if (err instanceof HostNotAllowedError) throw err;
        throw new HttpStepError(`${where}: looking up ${url.hostname} failed: ${describeNetworkError(err)}`, { retryable: true }); // names come back
      });
      const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]);
      let raw;
      try {
        raw = await sendHttp({
          url, method, headers, addresses, maxResponseBytes, signal,
          body: body === undefined ? undefined : Buffer.from(JSON.stringify(body) ?? 'null'),
        });
      } catch (err) {
        if (ctx.signal.aborted) throw ctx.signal.reason; // cancel, lease lost, shutdown: the engine's business
        // A header value with a newline, a bad method: the definition's fault, the same next time.
        const badRequest = /^ERR_INVALID_/.test(String((err as { code?: unknown }).code));
        if (badRequest || (err as { retryable?: unknown }).retryable === false) throw new HttpStepError(`${where}: ${(err as Error).message}`, { retryable: false });
        if (signal.aborted) throw new HttpStepError(`${where}: no response within ${timeoutMs} ms (timeoutMs)`, { retryable: true });
        throw new HttpStepError(`${where}: ${describeNetworkError(err)}`, { retryable: true });
      }
      return readResponse(raw, where) as HttpStepOutput & Json;
    },
  };
}

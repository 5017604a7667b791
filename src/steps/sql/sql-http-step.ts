// An HTTP step of a pipeline defined in SQL (walflow.http_step): httpStep with the operator's
// outbound-host policy (WALFLOW_HTTP_ALLOW_HOSTS: a database user must not aim workers at internal
// services), and :placeholders in the URL (URL-encoded), header values and JSON body. A header
// value {"env": "NAME", "prefix": "Bearer "} is a secret read from the environment per attempt.
import type { SingleStep } from '../../pipeline/types.js';
import type { HostPolicy } from '../http/host-policy.js';
import { httpStep, type SecretHeader } from '../http/http-step.js';
import { fillJson, runContext, substitute } from './run-context.js';

export interface SqlHttpStepOptions {
  name: string;
  method?: string;
  url: string;
  headers?: Record<string, string | SecretHeader>;
  body?: unknown;
  timeoutMs?: number;
  hostPolicy: HostPolicy;
}

export function sqlHttpStep(o: SqlHttpStepOptions): SingleStep {
  const plain: Record<string, string> = {};
  const secretHeaders: Record<string, SecretHeader> = {};
  for (const [k, v] of Object.entries(o.headers ?? {})) {
    if (v && typeof v === 'object') secretHeaders[k] = v;
    else plain[k] = String(v);
  }
  return httpStep({
    name: o.name,
    ...(o.method ? { method: o.method } : {}),
    // The autocommit pool: no transaction stays open while the request waits on the network.
    url: async (ctx, input) => substitute(o.url, await runContext(ctx.db, ctx, input), encodeURIComponent),
    headers: async (ctx, input) => {
      const c = await runContext(ctx.db, ctx, input);
      return Object.fromEntries(Object.entries(plain).map(([k, v]) => [k, substitute(v, c)]));
    },
    ...(o.body !== undefined ? { body: async (ctx, input) => fillJson(o.body, await runContext(ctx.db, ctx, input)) as object } : {}),
    ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
    secretHeaders,
    idempotencyKey: true,
    hostPolicy: o.hostPolicy,
  });
}

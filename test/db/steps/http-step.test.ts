// httpStep through the real engine: retries of 5xx and 429 (honouring Retry-After, seen in the
// recorded timestamps), 4xx failing at once, the response size limit, the host policy, and a secret
// header that reaches the server but nothing walflow stores.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { definePipeline, type Pipeline } from '../../../src/pipeline/define.js';
import { httpStep, type HttpStepOptions } from '../../../src/steps/http/http-step.js';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';

const db = useTestDatabase();
let engine: Engine | undefined;
afterEach(async () => {
  await engine?.stop();
  engine = undefined;
});

/** Each test path answers with its own script of responses, one per request; requests are recorded. */
type Reply = (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void;
const scripts = new Map<string, Reply[]>();
const received: { path: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c: Buffer) => (body += c.toString()));
  req.on('end', () => {
    const path = req.url ?? '/';
    received.push({ path, headers: req.headers, body });
    const script = scripts.get(path) ?? [];
    const reply = script.length > 1 ? script.shift()! : script[0];
    if (!reply) return res.writeHead(500).end('no script');
    reply(req, body, res);
  });
});
let base = '';
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const json = (status: number, value: unknown, headers: Record<string, string> = {}): Reply => (_req, _body, res) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(value));
};
// The test server is on loopback: this policy lets exactly it through.
const local = { allowHosts: ['127.0.0.1:*'], allowPrivate: true };

async function runOne(path: string, replies: Reply[], opts: Partial<HttpStepOptions> = {}, input: unknown = { doc: 7 }): Promise<string> {
  scripts.set(path, replies);
  const pipeline: Pipeline = definePipeline({ name: `http${path.replace(/\W/g, '_')}`, steps: [
    httpStep({ name: 'call', method: 'POST', url: `${base}${path}`, body: (ctx) => ({ doc: (ctx.runInput as { doc: number }).doc }),
      retry: { maxAttempts: 4, initialDelayMs: 10 }, hostPolicy: local, ...opts }),
  ] });
  engine = new Engine({ url: db.url, pipelines: [pipeline], pollIntervalMs: 50, leaseMs: 5000 });
  await engine.register();
  await engine.runWorkers();
  return engine.start(pipeline.name, input);
}

async function runRow(id: string): Promise<{ status: string; attempt: number; error: { message: string } | null }> {
  return (await db.pool.query('SELECT status, attempt, error FROM walflow.runs WHERE id = $1', [id])).rows[0];
}
const settled = (id: string) => waitFor(`run ${id} to finish`, async () => ['completed', 'failed'].includes((await runRow(id)).status) && runRow(id), 20_000, 20);

describe('httpStep', () => {
  it('retries a 503 and completes with the response as its output; the idempotency key is the same on every attempt', async () => {
    const id = await runOne('/flaky', [json(503, { error: 'busy' }), json(200, { embedded: true })], { idempotencyKey: true });
    expect(await settled(id)).toMatchObject({ status: 'completed' });
    const { rows } = await db.pool.query('SELECT attempts, output FROM walflow.steps WHERE run_id = $1', [id]);
    expect(rows).toEqual([{ attempts: 2, output: { status: 200, headers: { 'content-type': 'application/json' }, body: { embedded: true } } }]);
    const calls = received.filter((r) => r.path === '/flaky');
    expect(calls.map((c) => JSON.parse(c.body))).toEqual([{ doc: 7 }, { doc: 7 }]);
    expect(calls.map((c) => c.headers['idempotency-key'])).toEqual([`${id}:call`, `${id}:call`]);
  });

  it('waits as long as a 429 Retry-After asks before the next attempt', async () => {
    const id = await runOne('/limited', [json(429, { error: 'slow down' }, { 'retry-after': '2' }), json(200, { ok: 1 })]);
    expect(await settled(id)).toMatchObject({ status: 'completed' });
    // Both timestamps are the database's: when attempt 1 failed, and when attempt 2 started.
    const { rows } = await db.pool.query(
      `SELECT extract(epoch FROM s.started_at - e.failed_at) * 1000 AS waited_ms, extract(epoch FROM e.retry_at - e.failed_at) * 1000 AS planned_ms
         FROM walflow.step_errors e JOIN walflow.steps s USING (run_id, step_index) WHERE e.run_id = $1 AND e.attempt = 1`, [id]);
    expect(Number(rows[0].planned_ms)).toBeGreaterThanOrEqual(1_950);
    expect(Number(rows[0].waited_ms)).toBeGreaterThanOrEqual(1_900);
  });

  it('fails a 404 at once, with the status and the body in the error', async () => {
    const id = await runOne('/missing', [json(404, { error: 'no such document' })]);
    const run = await settled(id);
    expect(run).toMatchObject({ status: 'failed', attempt: 1 });
    expect(run.error?.message).toBe(`POST ${base}/missing answered 404 Not Found: {"error":"no such document"}`);
  });

  it('fails a response over maxResponseBytes clearly, without retrying it', async () => {
    const big: Reply = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' }); // chunked: no content-length to refuse early
      for (let i = 0; i < 64; i++) res.write('x'.repeat(1024));
      res.end();
    };
    const id = await runOne('/big', [big], { maxResponseBytes: 4096 });
    const run = await settled(id);
    expect(run).toMatchObject({ status: 'failed', attempt: 1 });
    expect(run.error?.message).toMatch(new RegExp(`^POST ${base}/big: response body is over the limit of 4096 bytes \\(maxResponseBytes\\)`));
  });

  it('refuses loopback by default, before connecting', async () => {
    const before = received.length;
    const id = await runOne('/refused', [json(200, {})], { hostPolicy: undefined });
    const run = await settled(id);
    expect(run).toMatchObject({ status: 'failed', attempt: 1 });
    expect(run.error?.message).toMatch(/resolves to 127\.0\.0\.1, a loopback address: refused/);
    expect(received.length).toBe(before);
  });

  it('sends a secret header read from the environment, and stores it nowhere, even when the server echoes it', async () => {
    const token = 'tok-3f9a1c77e2b54d08';
    process.env.WALFLOW_TEST_SHIP_TOKEN = token;
    const echo = (status: number): Reply => (req, _body, res) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ youSent: req.headers.authorization }));
    };
    const id = await runOne('/secret', [echo(500), echo(200)], { secretHeaders: { Authorization: { env: 'WALFLOW_TEST_SHIP_TOKEN', prefix: 'Bearer ' } } });
    expect(await settled(id)).toMatchObject({ status: 'completed' });
    expect(received.filter((r) => r.path === '/secret').map((r) => r.headers.authorization)).toEqual([`Bearer ${token}`, `Bearer ${token}`]);
    const { rows } = await db.pool.query(
      `SELECT (SELECT jsonb_agg(s) FROM walflow.steps s WHERE s.run_id = r.id)::text AS steps,
              (SELECT jsonb_agg(e) FROM walflow.step_errors e WHERE e.run_id = r.id)::text AS errors, to_jsonb(r)::text AS run
         FROM walflow.runs r WHERE r.id = $1`, [id]);
    expect(rows[0].errors).toContain('answered 500'); // the failed attempt is there…
    for (const text of Object.values(rows[0] as Record<string, string>)) expect(text).not.toContain(token); // …without the token
    expect(rows[0].steps).toContain('youSent');
  });

  it('fails at once when the secret variable is unset, naming it', async () => {
    const id = await runOne('/nosecret', [json(200, {})], { secretHeaders: { 'X-Api-Key': { env: 'WALFLOW_TEST_UNSET_TOKEN' } } });
    const run = await settled(id);
    expect(run).toMatchObject({ status: 'failed', attempt: 1 });
    expect(run.error?.message).toBe('httpStep "call": the environment variable WALFLOW_TEST_UNSET_TOKEN (secret header X-Api-Key) is not set');
  });
});

// Provider faults are visible: a real `walflow run` embedding through a server that answers 429,
// 500 (echoing the API key), truncated JSON, hangs and 503s. Each fault — the ones the provider
// retries itself included — is one warn line with its reason and retry delay, and one count in
// walflow_embedding_faults_total{reason}; the call that fails for good is one count in
// walflow_embedding_errors_total. The API key appears nowhere.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeEmbeddingsServer, type FakeEmbeddingsServer } from '../../fixtures/fake-embeddings-server.js';
import { createDocsSchema } from '../../fixtures/chaos/schema.js';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';
import { freePort, metric, parseMetrics, startWalflowRun, type RunningWalflow } from './support/cli.js';

const CHAOS_PIPELINES = fileURLToPath(new URL('../../fixtures/chaos/pipelines/', import.meta.url));
const db = useTestDatabase();
const slot = `wf_ops_faults_${randomBytes(4).toString('hex')}`;
const API_KEY = `sk-test-${randomBytes(16).toString('hex')}`;
let server: FakeEmbeddingsServer;
let wf: RunningWalflow | undefined;
let port: number;

beforeAll(async () => {
  server = await startFakeEmbeddingsServer({ dimensions: 8, apiKey: API_KEY });
  await createDocsSchema(db.pool);
  port = await freePort();
  wf = await startWalflowRun(['--only', 'chaos-embed', '--metrics-port', String(port)], {
    DATABASE_URL: db.url, WALFLOW_PIPELINES_DIR: CHAOS_PIPELINES, WALFLOW_SLOT_NAME: slot, WALFLOW_PUBLICATION_NAME: slot,
    WALFLOW_POLL_INTERVAL_MS: '100', WALFLOW_LOG_LEVEL: 'info',
    CHAOS_EMBED_URL: server.baseURL, CHAOS_API_KEY: API_KEY, CHAOS_EMBED_TIMEOUT_MS: '300',
  });
}, 120_000);

afterAll(async () => {
  if (wf && wf.child.exitCode === null && wf.child.signalCode === null) await wf.stop('SIGKILL');
  await db.pool.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  await server?.stop();
});

describe('embedding provider faults', () => {
  it('each one is a warn line with reason and retry delay, and a count by reason', async () => {
    // One call sees 429 (retry in 40 ms, as asked), 500, truncated JSON, a hang and a 503: the
    // provider gives up (4 retries) and the engine retries the step, whose call sees one more 503
    // and then succeeds.
    server.inject(
      { kind: 'status', status: 429, retryAfterMs: 40 },
      { kind: 'status', status: 500, message: `upstream rejected key ${API_KEY}` },
      { kind: 'truncated-json' },
      { kind: 'hang' },
      { kind: 'status', status: 503, times: 2 },
    );
    await db.pool.query(`INSERT INTO chaos_docs VALUES (1, 't', 'a short document about faults')`);
    await waitFor('the document embedded', async () => (await db.pool.query('SELECT 1 FROM chaos_docs_embeddings')).rowCount! > 0, 90_000, 100);

    const faults = wf!.logs().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('embedding provider fault'));
    expect(faults.map((l) => [l.level, l.reason, l.attempt])).toEqual([
      [40, '429', 1], [40, '500', 2], [40, 'invalid_json', 3], [40, 'timeout', 4], [40, '503', 5], [40, '503', 1],
    ]);
    expect(faults[0]).toMatchObject({ pipeline: 'chaos-embed', retryInMs: 40, serverDelayMs: 40, msg: 'embedding provider fault (429): retrying in 40 ms' });
    for (const f of faults.slice(1, 4).concat(faults[5]!)) expect(f.retryInMs).toBeGreaterThan(0);
    // The fifth attempt is the provider's last: the call fails, and the engine schedules the retry.
    expect(faults[4]!.retryInMs).toBeUndefined();
    expect(faults[4]!.msg).toBe('embedding provider fault (503): the call fails; the embed step retries per its retry policy');
    expect(String(faults[1]!.err)).toMatch(/500 .*upstream rejected key \*\*\*/);
    expect(wf!.stderr()).not.toContain(API_KEY);

    const metrics = parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
    const faultCount = (reason: string) => metric(metrics, 'walflow_embedding_faults_total', { pipeline: 'chaos-embed', reason });
    expect(['429', '500', 'invalid_json', 'timeout', '503'].map(faultCount)).toEqual([1, 1, 1, 1, 2]);
    expect(metric(metrics, 'walflow_embedding_errors_total', { pipeline: 'chaos-embed', status: '503' })).toBe(1);
  });
});

// Bugs the fault-injection suite found, each reduced to a deterministic reproduction.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { definePipeline } from '../../../src/pipeline/define.js';
import { createEmbeddingPipeline } from '../../../src/steps/embedding/pipeline.js';
import { startFakeEmbeddingsServer, type FakeEmbeddingsServer } from '../../fixtures/fake-embeddings-server.js';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';

const db = useTestDatabase();
let server: FakeEmbeddingsServer;

beforeAll(async () => {
  server = await startFakeEmbeddingsServer({ dimensions: 8 });
});
afterAll(async () => {
  await server?.stop();
});

async function statusOf(id: string): Promise<string> {
  return (await db.pool.query(`SELECT status FROM walflow.runs WHERE id = $1`, [id])).rows[0].status;
}

describe('regressions found by npm run chaos', () => {
  // Scenario 3 (provider faults, then `walflow retry --failed`): a deleted document got its chunks back.
  it('an older run retried after its row was deleted, or its text set to NULL, does not write the old chunks back', async () => {
    await db.pool.query(`CREATE TABLE rg_docs (id int PRIMARY KEY, body text)`);
    const p = createEmbeddingPipeline({
      name: 'rg-embed', table: 'rg_docs', textColumn: 'body', chunkSize: 16, chunkOverlap: 0, batch: { maxItems: 1, maxWaitMs: 0 },
      embedder: { provider: 'openai', baseURL: server.baseURL, model: 'fake', dimensions: 8 },
    });
    const engine = new Engine({ url: db.url, pipelines: [p], pollIntervalMs: 50 });
    await engine.register();
    await engine.runWorkers();
    const sync = (id: number) => engine.start('rg-embed', { op: 'backfill', table: 'public.rg_docs', key: { id }, row: { id }, old: null, lsn: null, index: null, backfill: 1 }, { key: String(id) });
    const settled = (id: string, status: string) => waitFor(`run ${id} ${status}`, async () => (await statusOf(id)) === status, 20_000, 50);
    const chunks = async (id: number) => (await db.pool.query(`SELECT count(*)::int AS n FROM rg_docs_embeddings WHERE source_key = $1`, [String(id)])).rows[0].n;
    try {
      await db.pool.query(`INSERT INTO rg_docs VALUES (1, 'the first version of document one, long enough for two chunks or more'), (2, 'document two has text that will be set to NULL later on')`);
      // The provider answers wrong-size vectors (not retryable): both runs fail at "embed".
      server.inject({ kind: 'wrong-dimensions', dimensions: 3, times: 2 });
      const old1 = await sync(1);
      await settled(old1, 'failed');
      const old2 = await sync(2);
      await settled(old2, 'failed');
      // Newer versions: row 1 deleted, row 2's text removed. Their runs complete (no chunks).
      await db.pool.query(`DELETE FROM rg_docs WHERE id = 1`);
      await db.pool.query(`UPDATE rg_docs SET body = NULL WHERE id = 2`);
      await settled(await sync(1), 'completed');
      await settled(await sync(2), 'completed');
      expect([await chunks(1), await chunks(2)]).toEqual([0, 0]);
      // The provider is healthy again and the operator retries the failed runs.
      await db.pool.query(`SELECT walflow.retry_failed('rg-embed')`);
      await settled(old1, 'completed');
      await settled(old2, 'completed');
      expect([await chunks(1), await chunks(2)]).toEqual([0, 0]);
      const outputs = await db.pool.query(`SELECT walflow.result(id) AS r FROM walflow.runs WHERE id = ANY($1::uuid[])`, [[old1, old2]]);
      for (const o of outputs.rows) expect(o.r).toMatchObject({ written: false, stale: true });
    } finally {
      await engine.stop();
    }
  });

  // Scenario 2 (PostgreSQL restarted with -m immediate): `walflow run` died of an uncaught
  // "Connection terminated unexpectedly" from a ctx.tx connection that was idle in its transaction.
  it('a step holding ctx.tx survives its connection being killed: the attempt fails, the retry completes, the process lives', async () => {
    await db.pool.query(`CREATE TABLE rg_effects (run_id uuid, attempt int)`);
    let victim: number | undefined;
    const p = definePipeline({
      name: 'rg-tx',
      steps: [{
        name: 'write', retry: { maxAttempts: 3, initialDelayMs: 10 },
        run: async (ctx) => {
          const tx = await ctx.tx();
          const pid = (await tx.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
          if (ctx.attempt === 1) {
            victim = pid;
            // The server ends this connection while the step holds it, idle in its transaction.
            await waitFor('connection killed', async () => (await db.pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount === 0, 10_000, 20);
            await new Promise((r) => setTimeout(r, 100));
          }
          await tx.query('INSERT INTO rg_effects VALUES ($1, $2)', [ctx.runId, ctx.attempt]);
          return ctx.attempt;
        },
      }],
    });
    const engine = new Engine({ url: db.url, pipelines: [p], pollIntervalMs: 50 });
    await engine.register();
    await engine.runWorkers();
    try {
      const id = await engine.start('rg-tx', {});
      await waitFor('the step holds its connection', async () => victim, 10_000, 10);
      await db.pool.query('SELECT pg_terminate_backend($1)', [victim]);
      await waitFor('completed', async () => (await statusOf(id)) === 'completed', 20_000, 50);
      expect((await db.pool.query(`SELECT walflow.result($1) AS r`, [id])).rows[0].r).toBe(2);
      expect((await db.pool.query(`SELECT attempt FROM rg_effects WHERE run_id = $1`, [id])).rows).toEqual([{ attempt: 2 }]);
      const errors = await db.pool.query(`SELECT error->>'message' AS m FROM walflow.step_errors WHERE run_id = $1`, [id]);
      expect(errors.rows).toEqual([{ m: expect.stringMatching(/connection/i) }]);
    } finally {
      await engine.stop();
    }
  });
});

// Backfill racing live changes through replication: whatever the interleaving, each row ends with
// exactly the chunks of its current text (no older version wins), and nothing is duplicated.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/config.js';
import { silentLogger } from '../../../src/log.js';
import { backfill } from '../../../src/ops/backfill.js';
import { startWalflow } from '../../../src/ops/runner.js';
import { createEmbeddingPipeline } from '../../../src/steps/embedding/pipeline.js';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';

const db = useTestDatabase();
const ROWS = 150;

describe('backfill with live changes', () => {
  it('ends with every row embedded at its latest version', async () => {
    await db.pool.query('CREATE TABLE public.notes (id int PRIMARY KEY, body text)');
    await db.pool.query(`INSERT INTO public.notes SELECT g, 'note ' || g || ' version 0' FROM generate_series(1, $1) g`, [ROWS]);
    // No automatic initial backfill: this test races its own backfill against live changes.
    const pipeline = createEmbeddingPipeline({ name: 'notes', table: 'public.notes', textColumn: 'body', backfill: false });
    const slot = `wf_race_${Date.now()}`;
    const config = loadConfig({ slotName: slot, publicationName: slot, workers: 1, maxInFlight: 100, pollIntervalMs: 100 }, {});
    const wf = await startWalflow({ url: db.url, config, pipelines: [pipeline], log: silentLogger });
    try {
      // Live updates (through WAL) while the backfill enqueues every row.
      const updates = (async () => {
        for (let v = 1; v <= 3; v++) {
          await db.pool.query(`UPDATE public.notes SET body = 'note ' || id || ' version ' || $1 WHERE id % 3 = $2`, [v, v % 3]);
          await new Promise((r) => setTimeout(r, 30));
        }
        await db.pool.query('DELETE FROM public.notes WHERE id <= 5');
      })();
      const progress = await backfill(wf.engine, pipeline, { batchSize: 25 });
      await updates;
      expect(progress.done).toBeGreaterThanOrEqual(ROWS - 5);
      await waitFor('all runs finished', async () => {
        const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE status IN ('queued', 'running', 'waiting')`);
        const lag = await db.pool.query(`SELECT confirmed_flush_lsn >= pg_current_wal_lsn() - 100000 AS ok FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
        return rows[0].n === 0 && lag.rows[0]?.ok;
      }, 120_000, 200);
      const failed = await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE status = 'failed'`);
      expect(failed.rows[0].n).toBe(0);
      const mismatched = await db.pool.query(`
        SELECT n.id, n.body, e.chunk_text FROM public.notes n
        LEFT JOIN public.notes_embeddings e ON e.source_key = n.id::text
        WHERE e.chunk_text IS DISTINCT FROM n.body`);
      expect(mismatched.rows).toEqual([]);
      const orphans = await db.pool.query(`SELECT source_key FROM public.notes_embeddings WHERE source_key::int NOT IN (SELECT id FROM public.notes)`);
      expect(orphans.rows).toEqual([]);
      const dup = await db.pool.query(`SELECT source_key FROM public.notes_embeddings GROUP BY source_key HAVING count(*) > 1`);
      expect(dup.rows).toEqual([]);
    } finally {
      await wf.stop();
      await db.pool.query('SELECT pg_drop_replication_slot($1)', [slot]);
    }
  }, 180_000);
});

// When the target's HNSW index is built: at indexMinRows rows even while runs are queued, or as
// soon as the pipeline has no unfinished run; never for an empty table; once.
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { ensureTarget, hnswIndexName, maybeBuildIndex, type TargetSpec } from '../../../src/steps/embedding/target.js';
import { useTestDatabase } from '../../harness/db.js';

const db = useTestDatabase();

async function indexExists(table: string): Promise<boolean> {
  const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM pg_indexes WHERE tablename = $1 AND indexname = $2`, [table, hnswIndexName(table)]);
  return rows[0].n === 1;
}

async function addChunks(table: string, from: number, to: number): Promise<void> {
  await db.pool.query(
    `INSERT INTO public.${table} (source_key, chunk_index, chunk_text, content_hash, embedding, model, version, source_version)
     SELECT g::text, 0, 'text ' || g, md5(g::text), '[1,2,3]', 'm', 'v', '0/1' FROM generate_series($1::int, $2::int) g`,
    [from, to],
  );
}

describe('HNSW index policy', () => {
  it('waits for the load while runs are queued, builds at indexMinRows anyway, and once the backlog is done', async () => {
    await db.pool.query(`INSERT INTO walflow.pipelines (name, version, steps) VALUES ('idx-a', 'v1', '{s}'), ('idx-b', 'v1', '{s}')`);
    const a: TargetSpec = { table: { schema: 'public', name: 'idx_a_embeddings' }, dimensions: 3 };
    const b: TargetSpec = { table: { schema: 'public', name: 'idx_b_embeddings' }, dimensions: 3 };
    await ensureTarget(db.pool, a);
    await ensureTarget(db.pool, b);
    const policyA = { pipeline: 'idx-a', minRows: 5 };
    const policyB = { pipeline: 'idx-b', minRows: 1_000 };

    // Empty: nothing to index, even with no runs.
    expect(await maybeBuildIndex(db.url, a, silentLogger, policyA)).toBe(false);
    // Rows, but the load is still running (queued runs): wait below minRows, build at minRows.
    await db.pool.query(`INSERT INTO walflow.runs (pipeline, input, status) VALUES ('idx-a', '{}', 'queued'), ('idx-b', '{}', 'running')`);
    await addChunks('idx_a_embeddings', 1, 4);
    await addChunks('idx_b_embeddings', 1, 4);
    expect(await maybeBuildIndex(db.url, a, silentLogger, policyA)).toBe(false);
    expect(await maybeBuildIndex(db.url, b, silentLogger, policyB)).toBe(false);
    expect(await indexExists('idx_a_embeddings')).toBe(false);
    await addChunks('idx_a_embeddings', 5, 5);
    expect(await maybeBuildIndex(db.url, a, silentLogger, policyA)).toBe(true);
    expect(await indexExists('idx_a_embeddings')).toBe(true);
    expect(await maybeBuildIndex(db.url, a, silentLogger, policyA)).toBe(false); // once

    // Far below minRows, but the pipeline's last run finished: build now.
    await db.pool.query(`UPDATE walflow.runs SET status = 'completed', finished_at = now() WHERE pipeline = 'idx-b'`);
    expect(await maybeBuildIndex(db.url, b, silentLogger, policyB)).toBe(true);
    expect(await indexExists('idx_b_embeddings')).toBe(true);
    const built = await db.pool.query(`SELECT target FROM walflow.embedding_targets WHERE index_built_at IS NOT NULL ORDER BY 1`);
    expect(built.rows).toEqual([{ target: 'public.idx_a_embeddings' }, { target: 'public.idx_b_embeddings' }]);
  });
});

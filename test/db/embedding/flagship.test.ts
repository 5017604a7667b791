// The flagship pipeline end to end with the local model: backfill, chunks and vectors, search,
// unchanged chunks not re-embedded, deletes, truncates, version ordering.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { backfill } from '../../../src/ops/backfill.js';
import { createEmbeddingPipeline, type EmbeddingPipeline } from '../../../src/steps/embedding/pipeline.js';
import { writeChunks } from '../../../src/steps/embedding/target.js';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';

const db = useTestDatabase();
let engine: Engine;
let pipeline: EmbeddingPipeline;

const CORPUS: Record<number, [string, string]> = {
  1: ['Baking bread', 'Mix flour, water, salt and yeast. Knead the dough, let it rise for two hours, then bake it in a hot oven until the crust is golden brown.'],
  2: ['Replacing a bicycle tire', 'Release the brake, remove the wheel, lever the old tire off the rim, fit a new inner tube and pump it up to the pressure printed on the sidewall.'],
  3: ['PostgreSQL replication', 'Logical replication streams row changes from the write-ahead log through a replication slot to subscribers, which apply inserts, updates and deletes.'],
  4: ['Caring for tomato plants', 'Water tomatoes deeply at the base, stake the stems, pinch off suckers and feed the soil with compost for a good harvest of ripe fruit.'],
};

async function settled(): Promise<void> {
  await waitFor('no unfinished runs', async () => {
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE status IN ('queued', 'running', 'waiting')`);
    return rows[0].n === 0;
  }, 60_000, 50);
  const failed = await db.pool.query(`SELECT error FROM walflow.runs WHERE status = 'failed'`);
  expect(failed.rows).toEqual([]);
}

async function chunksOf(key: string): Promise<{ chunk_index: number; chunk_text: string; content_hash: string }[]> {
  return (await db.pool.query('SELECT chunk_index, chunk_text, content_hash FROM documents_embeddings WHERE source_key = $1 ORDER BY chunk_index', [key])).rows;
}

/**
 * Backfill runs for `keys`, each carrying a row as a backfill that read it before the row changed
 * would: the pipeline must embed the row as it is when its run executes, never the carried one.
 */
async function syncKeys(keys: number[]): Promise<void> {
  await engine.startMany('embed-docs', keys.map((id) => ({
    input: { op: 'backfill', table: 'public.documents', key: { id }, row: { id, title: 'Stale', body: 'stale text read before the row changed' }, old: null, lsn: null, index: null, backfill: 1 },
    key: String(id),
  })));
  await settled();
}

async function failedRun(id: string): Promise<{ status: string; attempt: number; error: { name: string; message: string } }> {
  await waitFor(`run ${id} failed`, async () => (await db.pool.query('SELECT status FROM walflow.runs WHERE id = $1', [id])).rows[0]?.status === 'failed', 15_000, 20);
  return (await db.pool.query('SELECT status, attempt, error FROM walflow.runs WHERE id = $1', [id])).rows[0];
}

beforeAll(async () => {
  await db.pool.query('CREATE TABLE documents (id int PRIMARY KEY, title text NOT NULL, body text)');
  for (const [id, [title, body]] of Object.entries(CORPUS)) await db.pool.query('INSERT INTO documents VALUES ($1, $2, $3)', [id, title, body]);
  pipeline = createEmbeddingPipeline({
    name: 'embed-docs', table: 'documents', textColumn: 'body', templateColumns: ['title'], template: '{title}: {chunk}',
    chunkSize: 40, chunkOverlap: 0,
  });
  engine = new Engine({ url: db.url, pipelines: [pipeline], pollIntervalMs: 50 });
  await engine.register();
  await engine.runWorkers();
}, 120_000);

afterAll(async () => {
  await engine?.stop();
});

describe('embedding pipeline', () => {
  it('backfills every row into chunks with 512-dim vectors, and search finds the right document', async () => {
    const progress = await backfill(engine, pipeline, { batchSize: 2 });
    expect(progress).toMatchObject({ done: 4, total: 4, finished: true });
    await settled();
    const { rows } = await db.pool.query(`SELECT source_key, count(*)::int AS n, min(vector_dims(embedding)) AS dims, bool_and(chunk_text LIKE '%: %') AS templated
                                            FROM documents_embeddings GROUP BY 1 ORDER BY 1`);
    expect(rows.map((r) => r.source_key)).toEqual(['1', '2', '3', '4']);
    for (const r of rows) expect(r).toMatchObject({ dims: 512, templated: true });
    const queries: [string, string][] = [
      ['how do I make a loaf at home', '1'],
      ['fix a flat on my bike', '2'],
      ['streaming database changes to another server', '3'],
      ['growing vegetables in the garden', '4'],
    ];
    for (const [q, expected] of queries) {
      const hits = await pipeline.search(db.pool, q, 3);
      expect(hits[0]?.source_key, q).toBe(expected);
      expect(hits[0]!.distance).toBeLessThan(hits[hits.length - 1]!.distance + 1e-9);
    }
  });

  it('an edit re-embeds only the chunks whose text changed', async () => {
    const long = Array.from({ length: 6 }, (_, i) => `Paragraph ${i} talks about topic number ${i} in enough words to be its own chunk of text here.`).join('\n\n');
    await db.pool.query('INSERT INTO documents VALUES (10, $1, $2)', ['Long', long]);
    await syncKeys([10]);
    const before = await chunksOf('10');
    expect(before.length).toBeGreaterThanOrEqual(4);
    await db.pool.query('UPDATE documents SET body = replace(body, $1, $2) WHERE id = 10', ['topic number 5', 'a completely different subject, number five']);
    await syncKeys([10]);
    const after = await chunksOf('10');
    const changed = after.filter((c) => !before.some((b) => b.content_hash === c.content_hash)).length;
    expect(changed).toBeGreaterThan(0);
    const { rows } = await db.pool.query(`SELECT s.output->>'embedded' AS embedded FROM walflow.steps s JOIN walflow.runs r ON r.id = s.run_id
                                           WHERE r.key = '10' AND s.step = 'upsert' ORDER BY r.seq DESC LIMIT 1`);
    expect(Number(rows[0].embedded)).toBe(changed);
    expect(changed).toBeLessThan(after.length);
  });

  it('a deleted or emptied row loses its chunks; a replayed sync changes nothing', async () => {
    await db.pool.query('UPDATE documents SET body = NULL WHERE id = 4');
    await db.pool.query('DELETE FROM documents WHERE id = 3');
    await syncKeys([3, 4]);
    expect(await chunksOf('3')).toEqual([]);
    expect(await chunksOf('4')).toEqual([]);
    const snapshot = (await db.pool.query('SELECT source_key, chunk_index, content_hash FROM documents_embeddings ORDER BY 1, 2')).rows;
    const before = pipeline.stats();
    await syncKeys([1, 2, 3, 4]);
    // Nothing changed: every chunk reuses its stored vector and the model is not called.
    const after = pipeline.stats();
    expect(after.items).toBe(before.items);
    expect(after.reused - before.reused).toBe(snapshot.filter((r) => ['1', '2'].includes(r.source_key)).length);
    expect((await db.pool.query('SELECT source_key, chunk_index, content_hash FROM documents_embeddings ORDER BY 1, 2')).rows).toEqual(snapshot);
  });

  it('never lets an older version of a row overwrite a newer one', async () => {
    const c = await db.pool.connect();
    try {
      await c.query('BEGIN');
      const target = { table: { schema: 'public', name: 'documents_embeddings' }, dimensions: 512 };
      const vec = `[${Array(512).fill(0.01).join(',')}]`;
      expect(await writeChunks(c, target, 'v-test', '0/5000', 'm', 'v1', [{ index: 0, text: 'new', hash: 'h-new', vector: vec }])).toBe(true);
      expect(await writeChunks(c, target, 'v-test', '0/4000', 'm', 'v1', [{ index: 0, text: 'old', hash: 'h-old', vector: vec }])).toBe(false);
      const { rows } = await c.query(`SELECT chunk_text FROM documents_embeddings WHERE source_key = 'v-test'`);
      expect(rows).toEqual([{ chunk_text: 'new' }]);
    } finally {
      await c.query('ROLLBACK');
      c.release();
    }
  });

  it('a truncate of the source empties the target', async () => {
    await engine.start('embed-docs', { op: 'truncate', table: 'public.documents', key: null, row: null, old: null, lsn: (await db.pool.query('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l, index: 0 });
    await settled();
    expect((await db.pool.query('SELECT count(*)::int AS n FROM documents_embeddings')).rows[0].n).toBe(0);
  });

  it('a backfill run embeds its row as it is when the run executes, not as the backfill read it', async () => {
    await db.pool.query(`INSERT INTO documents VALUES (20, 'Fresh', 'the current text of the row')`);
    await syncKeys([20]);
    expect((await chunksOf('20')).map((c) => c.chunk_text)).toEqual(['Fresh: the current text of the row']);
  });

  // Last: these leave failed runs behind (settled() above allows none).
  it('a run started from SQL with input that is not a change of its table fails at once with the shape it needed', async () => {
    const start = async (input: unknown) => (await db.pool.query('SELECT walflow.start($1, $2) AS id', ['embed-docs', JSON.stringify(input)])).rows[0].id as string;
    const noOp = await failedRun(await start({ id: 1 }));
    expect(noOp).toMatchObject({ attempt: 1, error: { name: 'RunInputError' } });
    expect(noOp.error.message).toBe('run input does not fit pipeline "embed-docs" (source public.documents): expected {op: "insert"|"update"|"delete"|"truncate"|"backfill", '
      + 'table: "public.documents", key: {<primary key columns>}, row: {...}} — got {"id":1} (op: expected "insert"|"update"|"delete"|"truncate"|"backfill")');
    // Key columns are known only once the pipeline has looked at its table: a key without them fails in sync, not retried either.
    const wrongKey = await failedRun(await start({ op: 'insert', table: 'public.documents', key: { doc: 1 }, row: { doc: 1 } }));
    expect(wrongKey).toMatchObject({ attempt: 1, error: { message: 'run input does not fit pipeline "embed-docs" (source public.documents): its key lacks column(s) id — got key {"doc":1}' } });
  });
});

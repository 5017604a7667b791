// A chunk template whose placeholders name columns PostgreSQL allows but \w does not match
// (Cyrillic, spaces, an emoji, braces): every embedded chunk carries the column's value, never the
// placeholder as literal text.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { backfill } from '../../../src/ops/backfill.js';
import { createEmbeddingPipeline } from '../../../src/steps/embedding/pipeline.js';
import { startFakeEmbeddingsServer, type FakeEmbeddingsServer } from '../../fixtures/fake-embeddings-server.js';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';

const db = useTestDatabase();
let server: FakeEmbeddingsServer;
let engine: Engine | undefined;

beforeAll(async () => {
  server = await startFakeEmbeddingsServer({ dimensions: 8 });
  await db.pool.query(`CREATE TABLE tpl_docs (id int PRIMARY KEY, "Заголовок 📌" text NOT NULL, "my {tag}" text, body text)`);
  await db.pool.query(`INSERT INTO tpl_docs VALUES (1, 'Хлеб', 'кухня', 'Замесить тесто и испечь.'), (2, 'Bread', NULL, 'Knead the dough and bake it.')`);
}, 60_000);

afterAll(async () => {
  await engine?.stop();
  await server?.stop();
});

describe('chunk template placeholders', () => {
  it('fill columns with non-ASCII, spaced, emoji and brace names in every embedded chunk', async () => {
    const pipeline = createEmbeddingPipeline({
      name: 'tpl-embed', table: 'tpl_docs', textColumn: 'body', target: 'tpl_docs_embeddings',
      // No templateColumns: the template's placeholders are the columns it reads.
      template: '{Заголовок 📌} [{my \\{tag\\}}] {{ {chunk} }}',
      embedder: { provider: 'openai', baseURL: server.baseURL, model: 'fake', dimensions: 8 },
    });
    engine = new Engine({ url: db.url, pipelines: [pipeline], pollIntervalMs: 50 });
    await engine.register();
    await engine.runWorkers();
    expect(await backfill(engine, pipeline, { batchSize: 10 })).toMatchObject({ done: 2, finished: true });
    await waitFor('both rows embedded', async () => {
      const { rows } = await db.pool.query(`SELECT count(DISTINCT source_key)::int AS n FROM tpl_docs_embeddings`);
      return rows[0].n === 2;
    }, 60_000, 50);
    const { rows } = await db.pool.query<{ chunk_text: string }>(`SELECT chunk_text FROM tpl_docs_embeddings ORDER BY source_key, chunk_index`);
    expect(rows.map((r) => r.chunk_text)).toEqual([
      'Хлеб [кухня] { Замесить тесто и испечь. }',
      'Bread [] { Knead the dough and bake it. }',
    ]);
    // What was sent to the model is what was stored.
    expect(server.requests.flatMap((r) => r.inputs)).toEqual(expect.arrayContaining(rows.map((r) => r.chunk_text)));
  });
});

// npm run bench:embeddings — the flagship pipeline end to end with the local model (backfill →
// sync → embed → upsert, all durable), against the bare embedder on the same chunks, same run.
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { Engine } from '../src/engine/engine.js';
import { backfill } from '../src/ops/backfill.js';
import { createLocalEmbedder } from '../src/steps/embedders/local-model.js';
import { createEmbeddingPipeline } from '../src/steps/embedding/pipeline.js';
import { benchDatabase, machine, printTable, RssSampler } from './harness.js';

const DOCS = Number(process.env.BENCH_DOCS ?? 120);
const DOC_CHARS = Number(process.env.BENCH_DOC_CHARS ?? 2500);
const THREADS = Number(process.env.BENCH_THREADS ?? 2);

function corpus(): { title: string; body: string }[] {
  const out: { title: string; body: string }[] = [];
  const walk = (dir: string, depth: number) => {
    if (out.length >= DOCS || depth > 3) return;
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (out.length >= DOCS) return;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p, depth + 1);
      else if (/^readme\.md$/i.test(e.name)) {
        const body = fs.readFileSync(p, 'utf8').slice(0, DOC_CHARS);
        if (body.length > 500) out.push({ title: path.relative('node_modules', p), body });
      }
    }
  };
  walk('node_modules', 0);
  return out;
}

const db = await benchDatabase('wf_bench_embed');
try {
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  await pool.query('CREATE TABLE documents (id serial PRIMARY KEY, title text NOT NULL, body text)');
  const docs = corpus();
  await pool.query('INSERT INTO documents (title, body) SELECT * FROM unnest($1::text[], $2::text[])', [docs.map((d) => d.title), docs.map((d) => d.body)]);

  const pipeline = createEmbeddingPipeline({
    name: 'bench-embed', table: 'documents', textColumn: 'body', templateColumns: ['title'], template: '{title}: {chunk}',
    embedder: { provider: 'local', threads: THREADS },
  });
  let done = 0;
  let finish!: () => void;
  const all = new Promise<void>((r) => (finish = r));
  const engine = new Engine({ url: db.url, pipelines: [pipeline], maxInFlight: 256, pollIntervalMs: 100, onRunEnd: () => ++done === docs.length && finish() });
  await engine.register();
  // Load the model before the clock starts, as a long-running worker would have.
  await pipeline.search(pool, 'warm up', 1);
  const rss = new RssSampler();
  const t0 = performance.now();
  await engine.runWorkers();
  await backfill(engine, pipeline, { batchSize: 500 });
  await all;
  const e2eMs = performance.now() - t0;
  const peakRss = rss.stop();
  const failed = Number((await pool.query(`SELECT count(*) FROM walflow.runs WHERE status <> 'completed'`)).rows[0].count);
  const { rows } = await pool.query<{ chunk_text: string }>('SELECT chunk_text FROM documents_embeddings ORDER BY source_key::int, chunk_index');
  await engine.stop();

  // The same result through the bare embedder: each distinct chunk text once (walflow, too, embeds
  // identical texts once and reuses stored vectors), in the batches the model likes.
  const bare = await createLocalEmbedder({ threads: THREADS });
  await bare.embed(['warm up']);
  const allChunks = rows.map((r) => r.chunk_text);
  const texts = [...new Set(allChunks)];
  const t1 = performance.now();
  const calls: Promise<Float32Array[]>[] = [];
  for (let i = 0; i < texts.length; i += 64) calls.push(bare.embed(texts.slice(i, i + 64)));
  await Promise.all(calls);
  const bareMs = performance.now() - t1;
  await bare.close();
  await pool.end();

  const chunksPerS = (allChunks.length / e2eMs) * 1000;
  const bareChunksPerS = (allChunks.length / bareMs) * 1000;
  const overheadPct = (bareChunksPerS / chunksPerS - 1) * 100;
  printTable([
    { measure: 'documents', value: docs.length, unit: `≤ ${DOC_CHARS} chars each` },
    { measure: 'chunks', value: allChunks.length, unit: '≤ 100 tokens' },
    { measure: 'distinct chunk texts (model work)', value: texts.length, unit: '' },
    { measure: 'walflow end to end', value: chunksPerS.toFixed(1), unit: 'chunks/s' },
    { measure: 'walflow end to end', value: ((docs.length / e2eMs) * 1000).toFixed(2), unit: 'docs/s' },
    { measure: 'bare embedder, same chunks', value: bareChunksPerS.toFixed(1), unit: 'chunks/s' },
    { measure: 'walflow overhead', value: overheadPct.toFixed(1), unit: '%' },
    { measure: 'runs not completed', value: failed, unit: '' },
    { measure: 'peak RSS (main thread + model workers)', value: peakRss, unit: 'MB' },
  ]);
  console.log(`machine: ${machine()}, model threads: ${THREADS}`);
  console.log(JSON.stringify({
    docs: docs.length, chunks: allChunks.length, distinct_chunks: texts.length, threads: THREADS,
    docs_per_s: Number(((docs.length / e2eMs) * 1000).toFixed(2)),
    chunks_per_s: Number(chunksPerS.toFixed(1)),
    bare_embedder_chunks_per_s: Number(bareChunksPerS.toFixed(1)),
    overhead_pct: Number(overheadPct.toFixed(1)),
    not_completed: failed, peak_rss_mb: peakRss,
  }));
} finally {
  await db.close();
}

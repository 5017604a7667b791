// The walflow demo: every document chunked, embedded (local model, offline) and upserted into
// pgvector durably, driven by logical replication; then searches, an update and a delete.
//   npm run demo [-- --limit 300]
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { loadConfig, stderrIsTty } from '../src/config/config.js';
import { EmbeddedCluster } from '../src/db/embedded-cluster.js';
import { isUserError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { createProgress } from '../src/ops/progress.js';
import { startWalflow } from '../src/ops/runner.js';
import { createEmbeddingPipeline } from '../src/steps/embedding/pipeline.js';

const DB = 'walflow_demo';
const MAX_DOC_CHARS = 3000;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} takes a positive whole number`);
  return v;
}

/** Real text found on this machine: the READMEs and docs of installed npm packages. */
function findDocuments(limit: number): { title: string; body: string }[] {
  const docs: { title: string; body: string }[] = [];
  const seen = new Set<string>();
  const walk = (dir: string, depth: number) => {
    if (docs.length >= limit || depth > 3) return;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (docs.length >= limit) return;
      const p = path.join(dir, e.name);
      if (e.isDirectory() && e.name !== '.bin' && e.name !== 'test' && e.name !== 'tests') walk(p, depth + 1);
      else if (e.isFile() && /\.(md|markdown|txt)$/i.test(e.name) && !/^(license|changelog|history)/i.test(e.name)) {
        const body = fs.readFileSync(p, 'utf8').slice(0, MAX_DOC_CHARS);
        const title = path.relative('node_modules', p);
        if (body.trim().length < 200 || seen.has(body)) continue;
        seen.add(body);
        docs.push({ title, body });
      }
    }
  };
  walk('node_modules', 0);
  return docs;
}

async function main(): Promise<void> {
  const limit = arg('limit', 300);
  const config = loadConfig({ logLevel: 'warn' });
  const log = createLogger({ level: 'warn', pretty: stderrIsTty() });
  const say = (s: string) => process.stdout.write(`${s}\n`);

  let serverUrl = config.databaseUrl;
  if (!serverUrl) {
    say(`▶ starting the embedded PostgreSQL in ${config.dataDir}`);
    serverUrl = await new EmbeddedCluster({ dataDir: config.dataDir }).start();
  }
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, [DB]);
  await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${DB}`);
  await admin.end();
  const u = new URL(serverUrl);
  u.pathname = `/${DB}`;
  const url = u.toString();
  const db = new pg.Pool({ connectionString: url, max: 4 });
  await db.query('CREATE EXTENSION IF NOT EXISTS vector');
  await db.query('CREATE TABLE documents (id serial PRIMARY KEY, title text NOT NULL, body text, updated_at timestamptz DEFAULT now())');

  const pipeline = createEmbeddingPipeline({
    name: 'embed-documents', table: 'documents', textColumn: 'body', templateColumns: ['title'],
    template: '{title}: {chunk}', target: 'documents_embeddings', embedder: { provider: 'local', threads: 2 },
    backfill: false, // the table starts empty: every document arrives through the WAL, one run each
  });
  say('▶ starting walflow (replication leader + workers); loading the local embedding model…');
  const wf = await startWalflow({ url, config: { ...config, workers: 1, maxInFlight: 256, pollIntervalMs: 200, slotName: 'walflow_demo', publicationName: 'walflow_demo' }, pipelines: [pipeline], log });

  const docs = findDocuments(limit);
  say(`▶ inserting ${docs.length} documents (READMEs found under node_modules, first ${MAX_DOC_CHARS} characters each)`);
  const t0 = Date.now();
  for (let i = 0; i < docs.length; i += 50) {
    const part = docs.slice(i, i + 50);
    await db.query('INSERT INTO documents (title, body) SELECT * FROM unnest($1::text[], $2::text[])', [part.map((d) => d.title), part.map((d) => d.body)]);
  }

  // Progress in chunks, the unit the model works in. Documents finish in bursts (the embed step takes
  // many runs' chunks in one call, and a burst of runs completes together), so a rate of documents
  // sits at 0/s between bursts; chunks are embedded steadily. The total is an estimate: chunks per
  // finished document so far times the documents (before the first finishes: from their length, ~150
  // characters a chunk, as measured on this demo's documents with the local model's 100-token chunks).
  const progress = createProgress('embedding chunks', stderrIsTty(), process.stdout);
  const totalChars = docs.reduce((n, d) => n + d.body.length, 0);
  while (true) {
    const { rows } = await db.query<{ done: number; failed: number; stored: number }>(
      `SELECT count(*) FILTER (WHERE status = 'completed')::int AS done, count(*) FILTER (WHERE status = 'failed')::int AS failed,
              (SELECT count(*)::int FROM documents_embeddings) AS stored FROM walflow.runs`);
    const { done, failed, stored } = rows[0]!;
    const embedded = pipeline.stats().items;
    const finished = done + failed >= docs.length;
    const estimate = done > 0 ? Math.round((stored / done) * docs.length) : Math.ceil(totalChars / 150);
    progress.update(embedded, finished ? embedded : Math.max(estimate, embedded + 1));
    if (finished) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  progress.stop();
  const secs = (Date.now() - t0) / 1000;
  const { rows: stats } = await db.query<{ chunks: number; failed: number }>(`SELECT (SELECT count(*)::int FROM documents_embeddings) AS chunks, (SELECT count(*)::int FROM walflow.runs WHERE status = 'failed') AS failed`);
  say(`✔ ${docs.length} documents → ${stats[0]!.chunks} chunks embedded and upserted in ${secs.toFixed(1)} s (${(docs.length / secs).toFixed(1)} docs/s, ${(stats[0]!.chunks / secs).toFixed(0)} chunks/s)${stats[0]!.failed ? `; ${stats[0]!.failed} failed: see walflow runs --status failed` : ''}`);

  const search = async (q: string) => {
    const hits = await pipeline.search(db, q, 3);
    say(`\n🔎 "${q}"`);
    for (const h of hits) {
      const title = (await db.query<{ title: string }>('SELECT title FROM documents WHERE id = $1', [Number(h.source_key)])).rows[0]?.title ?? '(deleted)';
      say(`   ${h.distance.toFixed(3)}  ${title}  — ${h.chunk_text.replace(/\s+/g, ' ').slice(title.length + 2, title.length + 92)}…`);
    }
    return hits;
  };
  await search('parse command line arguments and flags');
  await search('connect to a PostgreSQL database');
  await search('run tests and assertions');

  const waitSynced = async (id: number) => {
    for (let i = 0; i < 400; i++) {
      const { rows } = await db.query(`SELECT 1 FROM walflow.runs WHERE key = $1 AND status IN ('queued', 'running', 'waiting')`, [String(id)]);
      if (rows.length === 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const target = (await db.query<{ id: number }>('SELECT id FROM documents ORDER BY id LIMIT 1')).rows[0]!.id;
  say(`\n▶ updating document ${target}: it is now a recipe for sourdough bread`);
  await db.query(`UPDATE documents SET title = 'Sourdough', body = 'Feed the sourdough starter, mix flour and water, fold the dough every hour, shape the loaf and bake it in a hot dutch oven until the crust crackles.', updated_at = now() WHERE id = $1`, [target]);
  await new Promise((r) => setTimeout(r, 200));
  await waitSynced(target);
  const hits = await search('how do I bake bread with a starter');
  say(hits[0]?.source_key === String(target) ? '✔ the updated document is the top hit' : '✘ the updated document is not the top hit');

  say(`\n▶ deleting document ${target}`);
  await db.query('DELETE FROM documents WHERE id = $1', [target]);
  await new Promise((r) => setTimeout(r, 200));
  await waitSynced(target);
  const left = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM documents_embeddings WHERE source_key = $1', [String(target)])).rows[0]!.n;
  say(left === 0 ? '✔ its chunks are gone from documents_embeddings' : `✘ ${left} chunks remain`);

  await wf.stop();
  // A slot nobody reads pins WAL on the server: the next `walflow run` creates it again.
  await db.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, [DB]);
  await db.end();
  say(`\nDone. The demo database is ${url} — try: DATABASE_URL=${url} npx walflow status`);
}

main().catch((err: unknown) => {
  process.stderr.write(`demo: ${isUserError(err) ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(isUserError(err) ? 2 : 1);
});

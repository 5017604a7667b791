// Pipelines defined from SQL, picked up by a live `walflow run` (a real process): the one-call
// vectorizer on a table with rows follows inserts, updates and deletes made while and after it is
// created, and a drop stops it with the slot still advancing; a SQL step's effect is exactly once
// under SIGKILL; a pipeline file with a SQL pipeline's name is that file's load error.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';
import { ROOT, startWalflowRun, walflowJson, type RunningWalflow } from './support/cli.js';

const db = useTestDatabase();
// As in reload.test.ts: this file runs beside others on one loaded server; the waits are generous (they wait, they do not time).
const WAIT_MS = 100_000;
const slot = `wf_sqlp_${randomBytes(4).toString('hex')}`;
const DEFINE = pathToFileURL(path.join(ROOT, 'src/pipeline/define.ts')).href;
let dir: string;
let env: Record<string, string>;
let wf: RunningWalflow;

const q = async <T = Record<string, unknown>>(sql: string, params: unknown[] = []) => (await db.pool.query(sql, params)).rows as T[];
const one = async <T = number>(sql: string, params: unknown[] = []) => Object.values((await q(sql, params))[0]!)[0] as T;
const logged = (pattern: RegExp) => wf.logs().some((l) => typeof l.msg === 'string' && pattern.test(l.msg));
const published = async () => (await q<{ t: string }>(`SELECT schemaname || '.' || tablename AS t FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1`, [slot])).map((r) => r.t);
const start = () => startWalflowRun([], env);

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(ROOT, 'test/fixtures/ops/.sqlpipe-'));
  // A file pipeline keeps replication running when no SQL pipeline has a source.
  fs.writeFileSync(path.join(dir, 'base.ts'), `import { definePipeline } from '${DEFINE}';
export default definePipeline({ name: 'sp-base', version: 'v1', source: { table: 'sp_base' }, steps: [{ name: 'noop', run: () => null }] });
`);
  env = {
    DATABASE_URL: db.url, WALFLOW_PIPELINES_DIR: dir, WALFLOW_SLOT_NAME: slot, WALFLOW_PUBLICATION_NAME: slot,
    WALFLOW_POLL_INTERVAL_MS: '100', WALFLOW_LOG_LEVEL: 'info', WALFLOW_LEASE_MS: '2000',
  };
  await db.pool.query(`CREATE TABLE sp_base (id int PRIMARY KEY)`);
  await db.pool.query(`CREATE TABLE sp_notes (id int PRIMARY KEY, body text)`);
  await db.pool.query(`INSERT INTO sp_notes SELECT i, 'note number ' || i FROM generate_series(1, 30) i`);
  await db.pool.query(`CREATE TABLE sp_orders (id int PRIMARY KEY, total int NOT NULL)`);
  await db.pool.query(`CREATE TABLE sp_shipments (order_id int NOT NULL, total int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`);
  wf = await start();
}, 120_000);

afterAll(async () => {
  if (wf && wf.child.exitCode === null && wf.child.signalCode === null) await wf.stop('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
  await db.pool.query('SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [slot]).catch(() => undefined);
});

describe('pipelines defined from SQL, live', { timeout: 6 * WAIT_MS }, () => {
  it('the one-call vectorizer: every row\'s chunks follow inserts, updates and deletes made while and after it is created; a drop stops it, the slot keeps advancing', async () => {
    // Changes race the creation and its initial backfill…
    await db.pool.query(`SELECT walflow.create_embedding_pipeline('notes-embed', 'public.sp_notes', 'body', 'sp_notes_embeddings')`);
    await db.pool.query(`INSERT INTO sp_notes SELECT i, 'late note ' || i FROM generate_series(31, 40) i`);
    await db.pool.query(`UPDATE sp_notes SET body = 'changed ' || id WHERE id % 5 = 0`);
    await db.pool.query(`DELETE FROM sp_notes WHERE id % 7 = 0`);
    await waitFor('picked up', async () => logged(/pipelines reloaded: added notes-embed/), WAIT_MS);
    expect((await q(`SELECT origin, kind, version, source FROM walflow.pipeline_status WHERE pipeline = 'notes-embed'`))[0])
      .toEqual({ origin: 'sql', kind: 'embedding', version: 'v1', source: 'public.sp_notes' });
    await waitFor('its backfill finished', async () => logged(/initial backfill of pipeline "notes-embed" finished/), WAIT_MS);
    // …and follow it.
    await db.pool.query(`INSERT INTO sp_notes VALUES (41, 'after one'), (42, 'after two')`);
    await db.pool.query(`UPDATE sp_notes SET body = 'updated after ' || id WHERE id IN (1, 41)`);
    await db.pool.query(`DELETE FROM sp_notes WHERE id IN (2, 42)`);
    await db.pool.query(`UPDATE sp_notes SET body = NULL WHERE id = 3`);
    // Short texts are one chunk each: the target must equal the source's non-null bodies.
    const source = async () => q(`SELECT id::text AS key, body FROM sp_notes WHERE body IS NOT NULL ORDER BY 1`);
    const target = async () => q(`SELECT source_key AS key, chunk_text AS body FROM sp_notes_embeddings ORDER BY 1`);
    await waitFor('the target follows the source', async () =>
      JSON.stringify(await target().catch(() => [])) === JSON.stringify(await source())
      && (await one(`SELECT pending::int FROM walflow.pipeline_status WHERE pipeline = 'notes-embed'`)) === 0, WAIT_MS);
    expect(await target()).toEqual(await source());
    // 1..42, less 7 14 21 28 35 2 42 (deleted) and 3 (NULL body).
    expect((await source()).length).toBe(42 - 7 - 1);
    expect(await one(`SELECT failed::int FROM walflow.pipeline_status WHERE pipeline = 'notes-embed'`)).toBe(0);
    const pipelines = await walflowJson<{ pipelines: { name: string; origin: string }[] }>(['pipelines'], env);
    expect(pipelines.json.pipelines.map((p) => [p.name, p.origin])).toEqual([['notes-embed', 'sql'], ['sp-base', 'file']]);
    const search = await walflowJson<{ hits: { source_key: string; chunk_text: string }[] }>(['search', 'notes-embed', 'changed 10', '-k', '1'], env);
    expect(search.json.hits).toEqual([expect.objectContaining({ source_key: '10', chunk_text: 'changed 10' })]);

    // A drop: its table leaves the publication, no more runs, and the slot still advances past new changes.
    const runs = await one<number>(`SELECT count(*)::int FROM walflow.runs WHERE pipeline = 'notes-embed'`);
    await db.pool.query(`SELECT walflow.drop_pipeline('notes-embed')`);
    await waitFor('the drop picked up', async () => logged(/pipelines reloaded: .*removed notes-embed/), WAIT_MS);
    await waitFor('sp_notes unpublished', async () => !(await published()).includes('public.sp_notes'), WAIT_MS);
    await db.pool.query(`INSERT INTO sp_notes VALUES (100, 'after the drop')`);
    const lsn = await one<string>(`SELECT pg_current_wal_lsn()::text`);
    await waitFor('the slot confirmed past the insert', async () =>
      (await one<boolean>(`SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1`, [slot, lsn])) === true, WAIT_MS);
    expect(await one(`SELECT count(*)::int FROM walflow.runs WHERE pipeline = 'notes-embed'`)).toBe(runs);
    expect(await q(`SELECT pipeline FROM walflow.pipeline_status WHERE pipeline = 'notes-embed'`)).toEqual([]);
    expect(await one(`SELECT count(*)::int FROM sp_notes_embeddings`)).toBeGreaterThan(0); // drop_target => false keeps it
  });

  it('a SQL step writes exactly once per run under SIGKILL of walflow run', async () => {
    await db.pool.query(`SELECT walflow.create_pipeline('sp-ship', ARRAY[
      walflow.sql_step('load', 'SELECT total FROM sp_orders WHERE id = :input.key.id::int'),
      walflow.sql_step('ship', 'INSERT INTO sp_shipments (order_id, total) SELECT :input.key.id::int, :steps.load.rows.0.total::int FROM pg_sleep(0.01)')
    ], source => '{"table": "sp_orders", "events": ["insert"]}')`);
    await waitFor('picked up', async () => logged(/pipelines reloaded: added sp-ship/), WAIT_MS);
    await waitFor('sp_orders published', async () => (await published()).includes('public.sp_orders'), WAIT_MS);
    await db.pool.query(`INSERT INTO sp_orders SELECT i, i * 10 FROM generate_series(1, 300) i`);
    await waitFor('some shipped', async () => (await one<number>(`SELECT count(*)::int FROM sp_shipments`)) >= 20, WAIT_MS, 5);
    await wf.stop('SIGKILL');
    expect(await one<number>(`SELECT count(*)::int FROM sp_shipments`)).toBeLessThan(300);
    wf = await start();
    await waitFor('every order shipped', async () =>
      (await one<number>(`SELECT count(*)::int FROM walflow.runs WHERE pipeline = 'sp-ship' AND status = 'completed'`)) === 300, WAIT_MS);
    expect(await q(`SELECT count(*)::int AS n, count(DISTINCT order_id)::int AS orders, sum(total)::int AS total FROM sp_shipments`))
      .toEqual([{ n: 300, orders: 300, total: 10 * (300 * 301) / 2 }]);
  });

  it('a pipeline file named like a SQL pipeline is that file\'s load error; the SQL pipeline keeps running', async () => {
    fs.writeFileSync(path.join(dir, 'clash.ts'), `import { definePipeline } from '${DEFINE}';
export default definePipeline({ name: 'sp-ship', steps: [{ name: 'noop', run: () => null }] });
`);
    await waitFor('the load error recorded', async () => (await q(`SELECT file FROM walflow.pipeline_load_errors WHERE file = 'clash.ts'`)).length === 1, WAIT_MS);
    expect(await one(`SELECT message FROM walflow.pipeline_load_errors WHERE file = 'clash.ts'`))
      .toBe(`pipeline "sp-ship" is defined in SQL (walflow.create_pipeline): rename this file's pipeline, or drop the SQL one (SELECT walflow.drop_pipeline('sp-ship'))`);
    await db.pool.query(`INSERT INTO sp_orders VALUES (301, 7)`);
    await waitFor('the SQL pipeline still ships', async () => (await one<number>(`SELECT count(*)::int FROM sp_shipments WHERE order_id = 301`)) === 1, WAIT_MS);
  });
});

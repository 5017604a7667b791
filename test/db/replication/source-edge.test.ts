import { afterEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/db.js';
import { count, pipeline, register, runsOf, slotName, source, teardown, waitFor } from './support/test-source.js';

const db = useTestDatabase();
let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

describe('replication source: multi-row statements, TOAST, dropped tables', () => {
  it('a COPY and a multi-row INSERT (many rows, one commit LSN) lose nothing', async () => {
    await db.pool.query(`CREATE TABLE public.bulk (id int PRIMARY KEY, note text DEFAULT 'x')`);
    await register(db.pool, 'bulk_p');
    const slot = slotName();
    const src = source(db.url, [pipeline('bulk_p', { table: 'bulk' })], { slotName: slot, batch: { maxItems: 128, maxWaitMs: 5 } });
    await src.start();
    cleanups.push(() => teardown(db.pool, src, slot));
    // Changes made before the slot exists are not captured: wait for it.
    await waitFor('leader', async () => src.currentStatus.role === 'leader' && src.currentStatus.durableLsn !== null);
    await db.pool.query(`COPY public.bulk (id) FROM PROGRAM 'seq 1 1500'`);
    await db.pool.query(`INSERT INTO public.bulk (id) SELECT g FROM generate_series(1501, 3000) g`);
    await waitFor('3000 runs', async () => (await count(db.pool, `SELECT count(*) n FROM walflow.runs WHERE pipeline = 'bulk_p'`)) === 3000);
    const { rows } = await db.pool.query(`SELECT count(DISTINCT key) AS keys, count(DISTINCT source_lsn) AS lsns, max(source_index) AS maxi FROM walflow.runs WHERE pipeline = 'bulk_p'`);
    expect(rows[0]).toEqual({ keys: '3000', lsns: '2', maxi: 1499 });
  });

  it('unchanged TOAST columns arrive complete (re-read by key), with and without REPLICA IDENTITY FULL', async () => {
    await db.pool.query(`CREATE TABLE public.big (id int PRIMARY KEY, body text, n int)`);
    await db.pool.query(`CREATE TABLE public.bigfull (id int PRIMARY KEY, body text, n int); ALTER TABLE public.bigfull REPLICA IDENTITY FULL`);
    const body = `(SELECT string_agg(md5(i::text || random()::text), '') FROM generate_series(1, 4000) i)`;
    await db.pool.query(`INSERT INTO public.big VALUES (1, ${body}, 0), (2, ${body}, 0)`);
    await db.pool.query(`INSERT INTO public.bigfull VALUES (1, ${body}, 0)`);
    await register(db.pool, 'big_p', 'bigfull_p');
    const slot = slotName();
    const src = source(db.url, [pipeline('big_p', { table: 'big', events: ['update'] }), pipeline('bigfull_p', { table: 'bigfull', events: ['update'] })], { slotName: slot });
    await src.start();
    cleanups.push(() => teardown(db.pool, src, slot));
    await waitFor('leader', async () => src.currentStatus.role === 'leader' && src.currentStatus.durableLsn !== null);
    await db.pool.query(`UPDATE public.big SET n = 1`); // body travels as 'u' (unchanged TOAST)
    await db.pool.query(`UPDATE public.bigfull SET n = 1`);
    await waitFor('runs', async () => (await count(db.pool, `SELECT count(*) n FROM walflow.runs WHERE pipeline LIKE 'big%'`)) === 3);
    // Updated, then deleted before the re-read: the update starts nothing (counted, not an error);
    // the delete that follows in the WAL reaches pipelines that react to deletes.
    const filtered = src.counters.filtered;
    await db.pool.query(`BEGIN; UPDATE public.big SET n = 2 WHERE id = 2; DELETE FROM public.big WHERE id = 2; COMMIT`);
    await waitFor('update and delete filtered', async () => src.counters.filtered === filtered + 2);
    expect(src.counters.errors).toBe(0);
    await db.pool.query(`INSERT INTO public.big VALUES (2, 'x', 0)`);
    const { rows: bodies } = await db.pool.query<{ id: number; body: string }>(`SELECT id, body FROM public.big UNION ALL SELECT 10 + id, body FROM public.bigfull ORDER BY 1`);
    const big = await runsOf(db.pool, 'big_p');
    expect(big.map((r) => [r.key, r.input.row?.n])).toEqual([['1', 1], ['2', 1]]);
    expect(big[1]!.input.row!.body).toHaveLength(128_000);
    expect(big[0]!.input.row!.body === bodies[0]!.body).toBe(true);
    expect(big[0]!.input.row!.body).toHaveLength(128_000);
    const full = await runsOf(db.pool, 'bigfull_p');
    expect(full[0]!.input.row!.body === bodies.find((b) => b.id === 11)!.body).toBe(true);
    for (const r of [...big, ...full]) expect(Object.keys(r.input.row!).sort()).toEqual(['body', 'id', 'n']);
  });

  it('a dropped source table surfaces as an error while other tables keep flowing', async () => {
    await db.pool.query(`CREATE TABLE public.doomed (id int PRIMARY KEY); CREATE TABLE public.kept (id int PRIMARY KEY)`);
    await register(db.pool, 'doomed_p', 'kept_p');
    const slot = slotName();
    const src = source(db.url, [pipeline('doomed_p', { table: 'doomed' }), pipeline('kept_p', { table: 'kept' })], { slotName: slot });
    await src.start();
    cleanups.push(() => teardown(db.pool, src, slot));
    await waitFor('leader', async () => src.currentStatus.role === 'leader');
    await db.pool.query(`DROP TABLE public.doomed`);
    const err = await waitFor('table_dropped error', async () => {
      const { rows } = await db.pool.query(`SELECT source_table, kind, message, retriable FROM walflow.replication_errors WHERE kind = 'table_dropped'`);
      return rows[0];
    });
    expect(err).toMatchObject({ source_table: 'public.doomed', retriable: false });
    expect(err.message).toMatch(/public\.doomed was dropped.*doomed_p/);
    await db.pool.query(`INSERT INTO public.kept VALUES (1)`);
    await waitFor('kept run', async () => (await count(db.pool, `SELECT count(*) n FROM walflow.runs WHERE pipeline = 'kept_p'`)) === 1);
    expect(await count(db.pool, `SELECT count(*) n FROM walflow.replication_errors`)).toBe(1); // reported once
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import type { ReplicationSource } from '../../../src/replication/replication-source.js';
import { useTestDatabase } from '../../harness/db.js';
import { count, pipeline, register, runsOf, slotName, source, teardown, waitFor } from './support/test-source.js';

const db = useTestDatabase();
let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

async function startWith(pipelines: ReturnType<typeof pipeline>[]): Promise<ReplicationSource> {
  const slot = slotName();
  const src = source(db.url, pipelines, { slotName: slot });
  await src.start();
  cleanup = () => teardown(db.pool, src, slot);
  await waitFor('leadership', async () => src.currentStatus.role === 'leader' && src.currentStatus.durableLsn !== null);
  return src;
}

describe('replication source: events to runs', () => {
  it('inserts (one multi-row statement), updates, deletes and truncates start exactly the expected runs', async () => {
    await db.pool.query(`CREATE TABLE public.items (id int PRIMARY KEY, name text, n int)`);
    await register(db.pool, 'items_all');
    const src = await startWith([pipeline('items_all', { table: 'items' })]);

    await db.pool.query(`INSERT INTO public.items VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3)`);
    await db.pool.query(`UPDATE public.items SET n = 20 WHERE id = 2`);
    await db.pool.query(`DELETE FROM public.items WHERE id = 3`);
    await db.pool.query(`TRUNCATE public.items`);
    await waitFor('6 runs', async () => (await count(db.pool, `SELECT count(*) n FROM walflow.runs WHERE pipeline = 'items_all'`)) === 6);

    const runs = await runsOf(db.pool, 'items_all');
    expect(runs.map((r) => [r.input.op, r.key])).toEqual([
      ['insert', '1'], ['insert', '2'], ['insert', '3'], ['update', '2'], ['delete', '3'], ['truncate', null],
    ]);
    const [i1, i2, i3, upd, del, trunc] = runs.map((r) => r.input);
    // One statement, one commit LSN, three positions.
    expect(i1!.lsn).toBe(i3!.lsn);
    expect([i1!.index, i2!.index, i3!.index]).toEqual([0, 1, 2]);
    expect(i1).toMatchObject({ table: 'public.items', key: { id: 1 }, row: { id: 1, name: 'a', n: 1 }, old: null });
    expect(upd).toMatchObject({ key: { id: 2 }, row: { id: 2, name: 'b', n: 20 }, old: { id: 2 } });
    expect(del).toMatchObject({ key: { id: 3 }, row: null, old: { id: 3 } });
    expect(trunc).toMatchObject({ table: 'public.items', key: null, row: null });
    expect(new Set(runs.map((r) => r.dedupe_id)).size).toBe(6);
    expect(src.counters).toMatchObject({ received: 6, started: 6, errors: 0 });
    // The slot is acknowledged to a committed position.
    await waitFor('slot acknowledged', async () => {
      const { rows } = await db.pool.query(`SELECT confirmed_flush_lsn >= (SELECT max(source_lsn) FROM walflow.runs) AS ok FROM pg_replication_slots WHERE slot_name = $1`, [src['opts'].slotName]);
      return rows[0]?.ok === true;
    });
  });

  it('filters updates by changed columns (REPLICA IDENTITY FULL), by events and by predicate, and counts them', async () => {
    await db.pool.query(`CREATE TABLE public.docs (id int PRIMARY KEY, title text, n int); ALTER TABLE public.docs REPLICA IDENTITY FULL`);
    await register(db.pool, 'docs_title', 'docs_big');
    const src = await startWith([
      pipeline('docs_title', { table: 'docs', events: ['insert', 'update'], columns: ['title'] }),
      pipeline('docs_big', { table: 'public.docs', events: ['insert'], where: (r) => (r.n as number) > 10 }),
    ]);
    await db.pool.query(`INSERT INTO public.docs VALUES (1, 't', 5), (2, 't', 50)`);
    await db.pool.query(`UPDATE public.docs SET n = n + 1`); // title unchanged: nothing
    await db.pool.query(`UPDATE public.docs SET title = 'new' WHERE id = 1`); // one run
    await db.pool.query(`UPDATE public.docs SET title = 'new' WHERE id = 1`); // same value: nothing
    await db.pool.query(`DELETE FROM public.docs`); // neither pipeline reacts to deletes
    await waitFor('all changes seen', async () => src.counters.received === 8 && src.currentStatus.durableLsn !== null && src.counters.batches > 0 && src.counters.started === 4);
    expect((await runsOf(db.pool, 'docs_title')).map((r) => [r.input.op, r.key])).toEqual([['insert', '1'], ['insert', '2'], ['update', '1']]);
    expect((await runsOf(db.pool, 'docs_big')).map((r) => r.key)).toEqual(['2']);
    // 8 changes × 2 pipelines = 16 routed; 4 started, 12 filtered.
    await waitFor('filter counts', async () => src.counters.filtered === 12);
  });

  it('records a change whose predicate throws in walflow.replication_errors, and goes on', async () => {
    await db.pool.query(`CREATE TABLE public.evts (id int PRIMARY KEY, payload jsonb)`);
    await register(db.pool, 'evts_p');
    const src = await startWith([
      pipeline('evts_p', { table: 'evts', where: (r) => (r.payload as { ok: boolean }).ok }),
    ]);
    await db.pool.query(`INSERT INTO public.evts VALUES (1, NULL)`); // the predicate throws on null
    await db.pool.query(`INSERT INTO public.evts VALUES (2, '{"ok": true}')`);
    await waitFor('the good run', async () => (await count(db.pool, `SELECT count(*) n FROM walflow.runs WHERE pipeline = 'evts_p'`)) === 1);
    const { rows } = await db.pool.query(`SELECT pipeline, source_table, op, kind, lsn IS NOT NULL AS has_lsn, source_index, retriable, message FROM walflow.replication_errors`);
    expect(rows).toEqual([expect.objectContaining({ pipeline: 'evts_p', source_table: 'public.evts', op: 'insert', kind: 'predicate_failed', has_lsn: true, source_index: 0, retriable: false })]);
    expect(src.counters.errors).toBe(1);
  });
});

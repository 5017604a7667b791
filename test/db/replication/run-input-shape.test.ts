// Every WAL-started run gets the documented SourceRunInput of its op — key always, `old` as the
// replica identity provides it — and that input passes its pipeline's own input check.
import { afterEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/db.js';
import { count, pipeline, register, runsOf, slotName, source, teardown, waitFor } from './support/test-source.js';

const db = useTestDatabase();
let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

const LSN = expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/);

describe('WAL-started run input', () => {
  it('insert, update, delete and truncate each have their shape, with the old row as the replica identity gives it', async () => {
    await db.pool.query(`CREATE TABLE public.shape_d (id int PRIMARY KEY, email text, n int);
      CREATE TABLE public.shape_f (id int PRIMARY KEY, email text, n int); ALTER TABLE public.shape_f REPLICA IDENTITY FULL`);
    await register(db.pool, 'shape_d', 'shape_f');
    const pipelines = [pipeline('shape_d', { table: 'shape_d' }), pipeline('shape_f', { table: 'public.shape_f' })];
    const slot = slotName();
    const src = source(db.url, pipelines, { slotName: slot });
    await src.start();
    cleanup = () => teardown(db.pool, src, slot);
    await waitFor('leadership', async () => src.currentStatus.role === 'leader' && src.currentStatus.durableLsn !== null);

    for (const t of ['shape_d', 'shape_f']) {
      await db.pool.query(`INSERT INTO public.${t} VALUES (1, 'a@b.c', 1)`);
      await db.pool.query(`UPDATE public.${t} SET n = 2 WHERE id = 1`);
      await db.pool.query(`DELETE FROM public.${t} WHERE id = 1`);
      await db.pool.query(`TRUNCATE public.${t}`);
    }
    await waitFor('8 runs', async () => (await count(db.pool, `SELECT count(*) n FROM walflow.runs WHERE pipeline LIKE 'shape_%'`)) === 8);

    for (const [i, t] of ['shape_d', 'shape_f'].entries()) {
      const full = t === 'shape_f';
      const inputs = (await runsOf(db.pool, t)).map((r) => r.input);
      const table = `public.${t}`;
      expect(inputs).toEqual([
        { op: 'insert', table, key: { id: 1 }, row: { id: 1, email: 'a@b.c', n: 1 }, old: null, lsn: LSN, index: 0 },
        // Default identity: the old row is its key columns; FULL: the whole old row.
        { op: 'update', table, key: { id: 1 }, row: { id: 1, email: 'a@b.c', n: 2 }, old: full ? { id: 1, email: 'a@b.c', n: 1 } : { id: 1 }, lsn: LSN, index: 0 },
        { op: 'delete', table, key: { id: 1 }, row: null, old: full ? { id: 1, email: 'a@b.c', n: 2 } : { id: 1 }, lsn: LSN, index: 0 },
        { op: 'truncate', table, key: null, row: null, old: null, lsn: LSN, index: 0 },
      ]);
      // What WAL produces is exactly what the pipeline's check lets through, unchanged.
      for (const input of inputs) expect(pipelines[i]!.checkInput!(input)).toEqual(input);
    }
  });
});

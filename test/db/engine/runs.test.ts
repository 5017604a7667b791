import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { definePipeline } from '../../../src/pipeline/define.js';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';

const db = useTestDatabase();
let engine: Engine | undefined;
afterEach(async () => {
  await engine?.stop();
  engine = undefined;
});

async function statusCounts(pipeline: string): Promise<Record<string, number>> {
  const { rows } = await db.pool.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM walflow.runs WHERE pipeline = $1 GROUP BY status', [pipeline]);
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

describe('durable runs', () => {
  it('runs three steps in order, each fed the previous output, and exposes the result in SQL', async () => {
    const p = definePipeline<{ n: number }>({
      name: 'arith',
      steps: [
        { name: 'double', run: (_ctx, input: { n: number }) => ({ n: input.n * 2 }) },
        { name: 'inc', run: (_ctx, input: { n: number }) => ({ n: input.n + 1 }) },
        { name: 'describe', run: (ctx, input: { n: number }) => ({ result: input.n, from: ctx.runInput.n }) },
      ],
    });
    engine = new Engine({ url: db.url, pipelines: [p], pollIntervalMs: 100 });
    await engine.register();
    await engine.runWorkers();
    const ids = await Promise.all([1, 2, 3].map((n) => engine!.start('arith', { n })));
    await waitFor('3 completed runs', async () => (await statusCounts('arith')).completed === 3);
    const { rows } = await db.pool.query('SELECT walflow.result($1) AS r', [ids[2]]);
    expect(rows[0].r).toEqual({ result: 7, from: 3 });
    const { rows: steps } = await db.pool.query('SELECT step, outcome, attempt FROM walflow.run_timeline WHERE run_id = $1 ORDER BY step_index', [ids[0]]);
    expect(steps).toEqual([
      { step: 'double', outcome: 'completed', attempt: 1 },
      { step: 'inc', outcome: 'completed', attempt: 1 },
      { step: 'describe', outcome: 'completed', attempt: 1 },
    ]);
  });

  it('starts from SQL inside the caller transaction: a rollback starts nothing, a commit is picked up by NOTIFY, not the poll', async () => {
    const seen: string[] = [];
    const p = definePipeline({ name: 'from_sql', steps: [{ name: 'note', run: (ctx) => void seen.push(ctx.runId) }] });
    engine = new Engine({ url: db.url, pipelines: [p], pollIntervalMs: 60_000 }); // only NOTIFY can wake it in time
    await engine.register();
    await engine.runWorkers();
    const c = await db.pool.connect();
    try {
      await c.query('BEGIN');
      await c.query(`SELECT walflow.start('from_sql', '{"a":1}')`);
      await c.query('ROLLBACK');
      await c.query('BEGIN');
      const { rows } = await c.query<{ id: string }>(`SELECT walflow.start('from_sql', '{"a":2}', 'k1') AS id`);
      await c.query('COMMIT');
      // The step running shows the NOTIFY woke a worker (the poll is a minute away); the bound is
      // generous because it only has to tell a wake-up from a poll, not measure latency.
      await waitFor('the SQL-started run', async () => seen.includes(rows[0]!.id), 15_000, 10);
    } finally {
      c.release();
    }
    // The checkpoint commits just after the step returns: wait for it rather than race it.
    await waitFor('the run to complete', async () => (await statusCounts('from_sql')).completed === 1, 5000, 10);
    expect(await statusCounts('from_sql')).toEqual({ completed: 1 });
    expect(seen).toHaveLength(1); // the rolled-back start never ran
  });

  it('raises its own SQLSTATE for an unknown pipeline and for a missing input', async () => {
    await expect(db.pool.query(`SELECT walflow.start('no_such_pipeline', '{}')`)).rejects.toMatchObject({ code: 'WF001', message: expect.stringContaining('unknown pipeline "no_such_pipeline"') });
    await db.pool.query(`INSERT INTO walflow.pipelines (name, version, steps) VALUES ('known', 'v1', '{a}') ON CONFLICT DO NOTHING`);
    await expect(db.pool.query(`SELECT walflow.start('known', NULL)`)).rejects.toMatchObject({ code: 'WF002' });
    await expect(db.pool.query(`SELECT walflow.start_batch('known', '[{"key": "x"}]')`)).rejects.toMatchObject({ code: 'WF002' });
    await expect(db.pool.query(`SELECT walflow.cancel('00000000-0000-0000-0000-000000000000')`)).rejects.toMatchObject({ code: 'WF003' });
  });

  it('dedupes repeated starts on the dedupe id', async () => {
    const p = definePipeline({ name: 'dedupe', steps: [{ name: 'a', run: () => 1 }] });
    engine = new Engine({ url: db.url, pipelines: [p] });
    await engine.register();
    const a = await engine.start('dedupe', { v: 1 }, { dedupeId: 'lsn-1' });
    const b = await engine.start('dedupe', { v: 2 }, { dedupeId: 'lsn-1' });
    const batch = await engine.startMany('dedupe', [{ input: { v: 1 }, dedupeId: 'lsn-1' }, { input: { v: 2 }, dedupeId: 'lsn-2' }]);
    expect(b).toBe(a);
    expect(batch.find((r) => r.ordinal === 0)).toMatchObject({ run_id: a, created: false });
    expect(batch.find((r) => r.ordinal === 1)).toMatchObject({ created: true });
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE pipeline = 'dedupe'`);
    expect(rows[0].n).toBe(2);
  });
});

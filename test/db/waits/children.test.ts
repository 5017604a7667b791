// Child runs: a parent fans out, waits without holding a worker, and joins (or races) the results.
import { describe, expect, it } from 'vitest';
import { definePipeline } from '../../../src/pipeline/define.js';
import { sleep } from '../../../src/util/sleep.js';
import { useWaitEngine } from './support.js';

const t = useWaitEngine();

const square = definePipeline<{ n: number; fail?: boolean; slowMs?: number }>({ name: 'square', steps: [
  { name: 'sq', retry: { maxAttempts: 1 }, run: async (ctx) => {
    const { n, fail, slowMs } = ctx.runInput;
    if (slowMs) await sleep(slowMs, ctx.signal);
    if (fail) throw new Error(`no square for ${n}`);
    return n * n;
  } },
] });

const parent = (join: 'all' | 'race', onChildFailure: 'fail' | 'collect' = 'fail') => definePipeline<{ items: { n: number; fail?: boolean; slowMs?: number }[] }>({
  name: `fan-${join}-${onChildFailure}`,
  steps: [
    { name: 'fan', join, onChildFailure, children: (ctx) => ctx.runInput.items.map((i) => ({ pipeline: 'square', input: i })) },
    { name: 'sum', run: (_ctx, input: unknown) => ({ got: input }) },
  ],
});

describe('child runs', () => {
  it('join: all hands on the children\'s outputs in order; the parent holds no worker meanwhile', async () => {
    const e = await t.run([square, parent('all')]);
    const id = await e.start('fan-all-fail', { items: [1, 2, 3, 4, 5].map((n) => ({ n, slowMs: 50 * (6 - n) })) });
    await t.until(id, 'completed');
    expect(await t.result(id)).toEqual({ got: [1, 4, 9, 16, 25] });
    const kids = await t.q(`SELECT child_index, status FROM walflow.runs WHERE parent_run_id = $1 ORDER BY child_index`, [id]);
    expect(kids).toHaveLength(5);
    expect(kids.every((k) => k.status === 'completed')).toBe(true);
  });

  it('a failed child fails the parent (after the child\'s own retries), and the rest are cancelled', async () => {
    const e = await t.run([square, parent('all')]);
    const id = await e.start('fan-all-fail', { items: [{ n: 1, fail: true }, { n: 2, slowMs: 5000 }] });
    await t.until(id, 'failed');
    const [r] = await t.q('SELECT error FROM walflow.runs WHERE id = $1', [id]);
    expect(r.error.message).toMatch(/^join: 1 of 2 children did not complete \(child 0 \(run .*\) failed: no square for 1\)$/);
    await t.until((await t.q(`SELECT id FROM walflow.runs WHERE parent_run_id = $1 AND child_index = 1`, [id]))[0].id, 'cancelled');
  });

  it('onChildFailure: collect hands the failures on with the outputs', async () => {
    const e = await t.run([square, parent('all', 'collect')]);
    const id = await e.start('fan-all-collect', { items: [{ n: 3 }, { n: 4, fail: true }] });
    await t.until(id, 'completed');
    const { got } = await t.result(id);
    expect(got[0]).toEqual({ ok: true, output: 9 });
    expect(got[1]).toMatchObject({ ok: false, status: 'failed', error: { message: 'no square for 4' } });
  });

  it('race takes the first child to complete and cancels the others', async () => {
    const e = await t.run([square, parent('race')]);
    const id = await e.start('fan-race-fail', { items: [{ n: 7, slowMs: 10_000 }, { n: 8, slowMs: 10 }, { n: 9, slowMs: 10_000 }] });
    await t.until(id, 'completed');
    expect((await t.result(id)).got).toMatchObject({ index: 1, output: 64 });
    const kids = await t.q(`SELECT child_index, status FROM walflow.runs WHERE parent_run_id = $1 ORDER BY child_index`, [id]);
    expect(kids.map((k) => k.status)).toEqual(['cancelled', 'completed', 'cancelled']);
  });

  it('cancelling a parent cancels its unfinished children', async () => {
    const e = await t.run([square, parent('all')]);
    const id = await e.start('fan-all-fail', { items: [{ n: 1, slowMs: 20_000 }, { n: 2, slowMs: 20_000 }] });
    await t.until(id, 'waiting');
    expect(await t.q(`SELECT walflow.cancel($1) AS c`, [id])).toEqual([{ c: true }]);
    const kids = await t.q(`SELECT status FROM walflow.runs WHERE parent_run_id = $1`, [id]);
    expect(kids.map((k) => k.status)).toEqual(['cancelled', 'cancelled']);
    expect(await t.q('SELECT * FROM walflow.waits WHERE run_id = $1', [id])).toEqual([]);
  });

  it('a parent retried after its children ended decides at once (it is not parked for children that will never end again)', async () => {
    const e = await t.run([square, parent('all', 'collect')]);
    const id = await e.start('fan-all-collect', { items: [{ n: 1, slowMs: 20_000 }, { n: 2, slowMs: 20_000 }] });
    await t.until(id, 'waiting');
    await t.q(`SELECT walflow.cancel($1)`, [id]); // cancels the children too
    expect(await t.q(`SELECT walflow.retry($1) AS ok`, [id])).toEqual([{ ok: true }]);
    await t.until(id, 'completed');
    expect((await t.result(id)).got.map((c: { status?: string }) => c.status)).toEqual(['cancelled', 'cancelled']);
    expect(await t.q(`SELECT count(*)::int AS n FROM walflow.runs WHERE parent_run_id = $1`, [id])).toEqual([{ n: 2 }]); // none started twice
  });

  it('a child of an unknown pipeline fails the parent with the name', async () => {
    const e = await t.run([definePipeline({ name: 'lost-kids', steps: [{ name: 'fan', children: () => [{ pipeline: 'nope', input: {} }] }] })]);
    const id = await e.start('lost-kids', {});
    await t.until(id, 'failed');
    const [r] = await t.q('SELECT error FROM walflow.runs WHERE id = $1', [id]);
    expect(r.error.message).toBe('children: unknown pipeline "nope" (see SELECT name FROM walflow.pipelines)');
  });
});

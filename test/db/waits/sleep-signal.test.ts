// Sleeps and signals: a parked run holds nothing, wakes on time (never early), consumes each signal
// once, and says what it waits for in walflow.status and the timeline.
import { describe, expect, it } from 'vitest';
import { definePipeline } from '../../../src/pipeline/define.js';
import { waitFor } from '../../harness/wait.js';
import { useWaitEngine } from './support.js';

const t = useWaitEngine();
const { db, q, status } = t;
const run = t.run;
const until = t.until;
const errOf = async (sql: string, params: unknown[]) => db.pool.query(sql, params).then(() => 'no error', (e: { code: string; message: string }) => `${e.code}: ${e.message}`);

describe('sleep', () => {
  it('parks the run until its time, then continues with the input it had', async () => {
    const e = await run([definePipeline({ name: 'nap', steps: [
      { name: 'before', run: () => ({ n: 1 }) },
      { name: 'cool-off', sleep: '1500ms' },
      { name: 'after', run: (_ctx, input: { n: number }) => ({ n: input.n + 1 }) },
    ] })]);
    const id = await e.start('nap', {});
    await waitFor('parked', async () => (await q(`SELECT 1 FROM walflow.waits WHERE run_id = $1 AND kind = 'sleep'`, [id])).length === 1);
    expect(await status(id)).toBe('waiting');
    const [parked] = await q(`SELECT outcome, waiting_for->>'kind' AS kind FROM walflow.run_timeline WHERE run_id = $1 AND outcome = 'sleeping'`, [id]);
    expect(parked).toEqual({ outcome: 'sleeping', kind: 'sleep' });
    expect((await q(`SELECT sleeping, waiting FROM walflow.status WHERE pipeline = 'nap'`))[0]).toEqual({ sleeping: '1', waiting: '0' });
    expect(e.inFlight).toBe(0); // nothing held in the process while it sleeps
    await until(id, 'completed');
    expect((await q('SELECT walflow.result($1) AS r', [id]))[0].r).toEqual({ n: 2 });
    // Never early: the sleep's checkpoint is at least 1.5 s after the step before it.
    const [t] = await q(`SELECT extract(epoch FROM (SELECT finished_at FROM walflow.steps WHERE run_id = $1 AND step = 'cool-off')
                            - (SELECT finished_at FROM walflow.steps WHERE run_id = $1 AND step = 'before')) * 1000 AS ms`, [id]);
    expect(Number(t.ms)).toBeGreaterThanOrEqual(1500);
    expect(await q('SELECT * FROM walflow.waits WHERE run_id = $1', [id])).toEqual([]);
  });

  it('sleeps until an instant computed from the run so far', async () => {
    const e = await run([definePipeline({ name: 'alarm', steps: [
      { name: 'plan', run: () => ({ at: new Date(Date.now() + 800).toISOString() }) },
      { name: 'wait', sleep: (_ctx, input: { at: string }) => input.at },
      { name: 'ring', run: () => 'ring' },
    ] })]);
    const id = await e.start('alarm', {});
    await until(id, 'completed');
    const [w] = await q(`SELECT s.finished_at >= (p.output->>'at')::timestamptz AS on_time FROM walflow.steps s, walflow.steps p
                          WHERE s.run_id = $1 AND s.step = 'wait' AND p.run_id = $1 AND p.step = 'plan'`, [id]);
    expect(w.on_time).toBe(true);
  });
});

describe('signals', () => {
  const review = () => definePipeline({ name: 'review', key: (i: { doc: string }) => i.doc, steps: [
    { name: 'submit', run: () => ({ ok: true }) },
    { name: 'approval', waitFor: { signal: 'review', timeout: '1h' } },
    { name: 'second', waitFor: { signal: 'review' } },
    { name: 'publish', run: async (ctx) => ({ first: await ctx.output('approval'), second: await ctx.output('second') }) },
  ] });

  it('a signal wakes the waiting run at once; one sent earlier waits in the mailbox; each is consumed once', async () => {
    const e = await run([review()]);
    const id = await e.start('review', { doc: 'd1' });
    await waitFor('parked on the signal', async () => (await q(`SELECT 1 FROM walflow.waits WHERE run_id = $1 AND kind = 'signal'`, [id])).length === 1);
    expect((await q(`SELECT awaiting_signal FROM walflow.status WHERE pipeline = 'review'`))[0].awaiting_signal).toBe('1');
    // A rolled-back signal sends nothing.
    const c = await db.pool.connect();
    await c.query('BEGIN');
    await c.query(`SELECT walflow.signal($1, 'review', '{"by": "nobody"}')`, [id]);
    await c.query('ROLLBACK');
    c.release();
    // Two signals in one transaction: the first wakes the first wait, the second is kept for the second wait.
    await db.pool.query(`BEGIN; SELECT walflow.signal('${id}', 'review', '{"by": "ana"}'); SELECT walflow.signal_key('review', 'd1', 'review', '{"by": "bo"}'); COMMIT`);
    await until(id, 'completed');
    const out = (await q('SELECT walflow.result($1) AS r', [id]))[0].r;
    expect(out.first).toMatchObject({ signal: 'review', payload: { by: 'ana' }, timedOut: false });
    expect(out.second).toMatchObject({ signal: 'review', payload: { by: 'bo' }, timedOut: false });
    expect(await q('SELECT payload, consumed_by_step FROM walflow.signals WHERE run_id = $1 ORDER BY id', [id])).toEqual([
      { payload: { by: 'ana' }, consumed_by_step: 1 }, { payload: { by: 'bo' }, consumed_by_step: 2 },
    ]);
  });

  it('a timeout ends the wait with a timed-out marker the next step can branch on', async () => {
    const e = await run([definePipeline({ name: 'hurry', steps: [
      { name: 'ask', waitFor: { signal: 'answer', timeout: '700ms' } },
      { name: 'escalate', when: (_ctx, got: { timedOut: boolean }) => got.timedOut, run: () => 'escalated' },
      { name: 'done', run: (_ctx, input: unknown) => ({ input }) },
    ] })]);
    const id = await e.start('hurry', {});
    await until(id, 'completed');
    expect((await q(`SELECT output FROM walflow.steps WHERE run_id = $1 AND step = 'ask'`, [id]))[0].output).toEqual({ signal: 'answer', payload: null, timedOut: true, receivedAt: null });
    expect((await q('SELECT walflow.result($1) AS r', [id]))[0].r).toEqual({ input: 'escalated' });
  });

  it('refuses signals to finished and unknown runs, and keys without an unfinished run', async () => {
    const e = await run([definePipeline({ name: 'quick', steps: [{ name: 'a', run: () => 1 }] })]);
    const id = await e.start('quick', {});
    await until(id, 'completed');
    expect(await errOf(`SELECT walflow.signal($1, 'x')`, [id])).toBe(`WF004: walflow: run ${id} is completed: signals go only to unfinished runs`);
    expect(await errOf(`SELECT walflow.signal($1, 'x')`, ['00000000-0000-0000-0000-000000000000'])).toMatch(/^WF003: walflow: no run/);
    expect(await errOf(`SELECT walflow.signal_key('quick', 'nope', 'x')`, [])).toBe('WF004: walflow: pipeline "quick" has no unfinished run with key "nope"');
  });
});

// The fences that keep a step's result from counting twice or after a cancel: the checkpoint
// primary key (a worker whose lease was taken over loses), walflow.cancelled_running (a run
// cancelled mid-step takes no checkpoint and its worker stops at once), and completion of a run
// whose last checkpoint landed while it was briefly not running.
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { writeCheckpoints } from '../../../src/engine/sql/checkpoint.js';
import { reapExpiredLeases } from '../../../src/engine/sql/lease.js';
import { definePipeline } from '../../../src/pipeline/define.js';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';

const db = useTestDatabase();
const engines: Engine[] = [];
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.stop()));
});

async function engineFor(pipeline: ReturnType<typeof definePipeline>, leaseMs = 60_000): Promise<Engine> {
  const e = new Engine({ url: db.url, pipelines: [pipeline], pollIntervalMs: 50, leaseMs, shutdownTimeoutMs: 200 });
  engines.push(e);
  await e.register();
  return e;
}

async function statusOf(id: string): Promise<string> {
  return (await db.pool.query('SELECT status FROM walflow.runs WHERE id = $1', [id])).rows[0].status as string;
}

describe('checkpoint fences', () => {
  it('a batch holding an already-committed checkpoint, or one of a cancelled run, writes the others and reports only them', async () => {
    await db.pool.query(`INSERT INTO walflow.pipelines (name, version, steps) VALUES ('direct', 'v1', '{a}')`);
    const { rows } = await db.pool.query<{ id: string }>(`INSERT INTO walflow.runs (pipeline, input, status) SELECT 'direct', '{}', 'running' FROM generate_series(1, 3) RETURNING id`);
    const [a, b, c] = rows.map((r) => r.id) as [string, string, string];
    const item = (run_id: string, output: number) => ({ run_id, step_index: 0, step: 'a', output, attempts: 1, duration_ms: 1, final: false });
    const applied = async (items: ReturnType<typeof item>[]) => {
      const result = await writeCheckpoints(db.pool, items);
      return items.map((i) => i.run_id).filter((id) => result.has(id));
    };
    expect(await applied([item(b, 1)])).toEqual([b]);
    // b's step was committed by another worker: this batch's b loses, a and c are written.
    expect(await applied([item(a, 2), item(b, 99), item(c, 3)])).toEqual([a, c]);
    const outputs = await db.pool.query(`SELECT run_id, output FROM walflow.steps ORDER BY output::int`);
    expect(outputs.rows).toEqual([{ run_id: b, output: 1 }, { run_id: a, output: 2 }, { run_id: c, output: 3 }]);
    // A run cancelled mid-step: its next checkpoint is refused, the rest of its batch is written.
    await db.pool.query('INSERT INTO walflow.cancelled_running (run_id) VALUES ($1)', [a]);
    const next = (run_id: string) => ({ ...item(run_id, 4), step_index: 1 });
    expect(await applied([next(a), next(c)])).toEqual([c]);
    const second = await db.pool.query(`SELECT run_id FROM walflow.steps WHERE step_index = 1`);
    expect(second.rows).toEqual([{ run_id: c }]);
  });

  it('a worker whose lease was taken over mid-step loses its checkpoint and its ctx.tx writes; each step counts once', async () => {
    await db.pool.query('CREATE TABLE fence_effects (run_id uuid, step text, owner text)');
    let releaseStalled!: () => void;
    const stalled = new Promise<void>((r) => (releaseStalled = r));
    let stalledStarted = false;
    const p = definePipeline({
      name: 'takeover',
      steps: [
        {
          name: 'write',
          run: async (ctx) => {
            const tx = await ctx.tx();
            await tx.query('INSERT INTO fence_effects VALUES ($1, $2, $3)', [ctx.runId, 'write', ctx.attempt === 1 ? 'stalled' : 'successor']);
            if (ctx.attempt === 1) {
              stalledStarted = true;
              await stalled; // a worker frozen past its lease (it ignores its signal)
            }
            return { by: ctx.attempt };
          },
        },
        { name: 'after', run: (_ctx, input: { by: number }) => input },
      ],
    });
    const first = await engineFor(p);
    const id = await first.start('takeover', {});
    await first.runWorkers();
    await waitFor('the first attempt to stall', async () => stalledStarted);
    // Its lease runs out; the reaper requeues the run and a second worker takes it.
    await db.pool.query(`UPDATE walflow.runs SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [id]);
    expect(await reapExpiredLeases(db.pool)).toBe(1);
    const second = await engineFor(p);
    await second.runWorkers();
    await waitFor('the successor to complete the run', async () => (await statusOf(id)) === 'completed');
    releaseStalled();
    await new Promise((r) => setTimeout(r, 300));
    const steps = await db.pool.query('SELECT step, output FROM walflow.steps WHERE run_id = $1 ORDER BY step_index', [id]);
    expect(steps.rows).toEqual([{ step: 'write', output: { by: 2 } }, { step: 'after', output: { by: 2 } }]);
    const effects = await db.pool.query('SELECT owner FROM fence_effects WHERE run_id = $1', [id]);
    expect(effects.rows).toEqual([{ owner: 'successor' }]);
    expect(await statusOf(id)).toBe('completed');
  });

  it('cancelling a run mid-step aborts its signal at once (not at the next lease renewal) and takes no checkpoint', async () => {
    let aborted = false;
    let started = false;
    const p = definePipeline({
      name: 'cancel_now',
      steps: [
        {
          name: 'long',
          run: (ctx) => new Promise((resolve) => {
            started = true;
            ctx.signal.addEventListener('abort', () => {
              aborted = true;
              resolve('finished anyway'); // a step that returns after its abort still must not count
            });
          }),
        },
        { name: 'never', run: () => 'ran' },
      ],
    });
    const e = await engineFor(p, 120_000); // renewals every 40 s: only the cancel notice can be in time
    const id = await e.start('cancel_now', {});
    await e.runWorkers();
    await waitFor('the step to start', async () => started);
    expect((await db.pool.query('SELECT walflow.cancel($1) AS ok', [id])).rows[0].ok).toBe(true);
    await waitFor('the step signal to abort', async () => aborted, 10_000, 10);
    await new Promise((r) => setTimeout(r, 200));
    expect(await statusOf(id)).toBe('cancelled');
    expect((await db.pool.query('SELECT count(*)::int AS n FROM walflow.steps WHERE run_id = $1', [id])).rows[0].n).toBe(0);
    // Retried, it runs from the start and completes; the fence no longer applies to it.
    expect((await db.pool.query('SELECT walflow.retry($1) AS ok', [id])).rows[0].ok).toBe(true);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM walflow.cancelled_running WHERE run_id = $1', [id])).rows[0].n).toBe(0);
  });

  it('a run whose every step is checkpointed but that is not completed is completed by the next claim, running nothing again', async () => {
    const calls: string[] = [];
    const p = definePipeline({
      name: 'all_done',
      steps: [
        { name: 'a', run: () => void calls.push('a') },
        { name: 'b', run: () => void calls.push('b') },
      ],
    });
    const e = await engineFor(p);
    const id = await e.start('all_done', {});
    // The state a reaped run is left in when its worker's last checkpoint lands after the reap.
    await db.pool.query(`UPDATE walflow.runs SET started_at = now(), attempt = 1 WHERE id = $1`, [id]);
    await db.pool.query(
      `INSERT INTO walflow.steps (run_id, step_index, step, output, attempts, started_at, finished_at)
       VALUES ($1, 0, 'a', '"x"', 1, now(), now()), ($1, 1, 'b', '{"final": true}', 1, now(), now())`,
      [id],
    );
    await e.runWorkers();
    await waitFor('the run to complete', async () => (await statusOf(id)) === 'completed');
    expect(calls).toEqual([]);
    expect((await db.pool.query('SELECT walflow.result($1) AS r', [id])).rows[0].r).toEqual({ final: true });
  });
});

describe('step outputs', () => {
  it('an output that cannot be stored as JSON fails its own run at once, with the reason; the runs checkpointed with it are untouched', async () => {
    const p = definePipeline({
      name: 'outputs',
      steps: [
        { name: 'make', run: (_ctx, i: { n: number }) => (i.n === 3 ? { big: BigInt(1) } : { n: i.n }) },
        { name: 'tx', run: async (ctx, i: { n: number }) => {
          await (await ctx.tx()).query('SELECT 1');
          return i.n === 4 ? { big: BigInt(2) } : i;
        } },
      ],
    });
    const e = await engineFor(p);
    const ids = await Promise.all([1, 2, 3, 4, 5].map((n) => e.start('outputs', { n })));
    await e.runWorkers();
    await waitFor('every run to end', async () => (await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE pipeline = 'outputs' AND status IN ('completed', 'failed')`)).rows[0].n === 5);
    const { rows } = await db.pool.query(`SELECT id, status, attempt, error->>'message' AS message FROM walflow.runs WHERE pipeline = 'outputs'`);
    const byId = new Map(rows.map((r) => [r.id as string, r]));
    for (const n of [1, 2, 5]) expect(byId.get(ids[n - 1]!)).toMatchObject({ status: 'completed' });
    expect(byId.get(ids[2]!)).toMatchObject({ status: 'failed', attempt: 1, message: expect.stringMatching(/^step "make" returned a value that cannot be stored as JSON: .*BigInt/) });
    expect(byId.get(ids[3]!)).toMatchObject({ status: 'failed', attempt: 1, message: expect.stringMatching(/^step "tx" returned a value that cannot be stored as JSON/) });
  });
});

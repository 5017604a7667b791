// Per-key ordering and supersede, batched steps, step concurrency limits, pruning.
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { pruneFinished } from '../../../src/engine/sql/maintenance.js';
import { batchStep, definePipeline, type Pipeline } from '../../../src/pipeline/define.js';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';

const db = useTestDatabase();
let engines: Engine[] = [];
afterEach(async () => {
  await Promise.all(engines.map((e) => e.stop()));
  engines = [];
});

function engine(pipelines: Pipeline[], extra: Partial<ConstructorParameters<typeof Engine>[0]> = {}): Engine {
  const e = new Engine({ url: db.url, pipelines, pollIntervalMs: 50, leaseMs: 3000, ...extra });
  engines.push(e);
  return e;
}

async function statuses(pipeline: string): Promise<Record<string, number>> {
  const { rows } = await db.pool.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM walflow.runs WHERE pipeline = $1 GROUP BY 1', [pipeline]);
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

describe('keys', () => {
  it('a newer start supersedes a queued run of the same key that has not begun (latest wins)', async () => {
    const seen: unknown[] = [];
    const e = engine([definePipeline({ name: 'latest', steps: [{ name: 's', run: (ctx) => void seen.push(ctx.runInput) }] })]);
    await e.register();
    await e.start('latest', { v: 1 }, { key: 'doc-1' });
    await e.start('latest', { v: 2 }, { key: 'doc-1' });
    await e.startMany('latest', [{ input: { v: 3 }, key: 'doc-1' }, { input: { v: 4 }, key: 'doc-1' }, { input: { other: true }, key: 'doc-2' }]);
    expect(await statuses('latest')).toEqual({ queued: 2, superseded: 3 });
    await e.runWorkers();
    await waitFor('2 completed', async () => (await statuses('latest')).completed === 2);
    expect(seen).toEqual(expect.arrayContaining([{ v: 4 }, { other: true }]));
    expect(seen).toHaveLength(2);
  });

  it('a start for a key whose run is executing waits its turn: never two versions of a row at once', async () => {
    const log: string[] = [];
    let active = 0;
    let maxActive = 0;
    const e = engine([definePipeline({ name: 'serial', steps: [{ name: 's', run: async (ctx) => {
      active++;
      maxActive = Math.max(maxActive, active);
      log.push(`start ${(ctx.runInput as { v: number }).v}`);
      await new Promise((r) => setTimeout(r, 80));
      log.push(`end ${(ctx.runInput as { v: number }).v}`);
      active--;
    } }] })], { maxInFlight: 20 });
    await e.register();
    await e.runWorkers();
    await e.start('serial', { v: 1 }, { key: 'k' });
    await waitFor('v1 running', async () => log.includes('start 1'));
    await e.start('serial', { v: 2 }, { key: 'k' });
    await e.start('serial', { v: 3 }, { key: 'k' }); // supersedes v2, which has not begun
    await waitFor('done', async () => (await statuses('serial')).completed === 2);
    expect(maxActive).toBe(1);
    expect(log).toEqual(['start 1', 'end 1', 'start 3', 'end 3']);
  });
});

describe('batched steps', () => {
  it('calls the step with many runs at once; a failing item fails only its run', async () => {
    const calls: number[] = [];
    const e = engine([definePipeline({ name: 'batched', steps: [
      { name: 'prep', run: (_c, i: { n: number }) => i.n },
      batchStep<number, number>({ name: 'embed', batch: { maxItems: 50, maxWaitMs: 200 }, retry: { maxAttempts: 1 }, run: async (items) => {
        calls.push(items.length);
        return items.map(({ input }) => (input === 13 ? new Error('item 13 is poison') : input * 10));
      } }),
    ] })], { maxInFlight: 200 });
    await e.register();
    await e.startMany('batched', Array.from({ length: 120 }, (_, n) => ({ input: { n } })));
    await e.runWorkers();
    await waitFor('all finished', async () => { const s = await statuses('batched'); return (s.completed ?? 0) + (s.failed ?? 0) === 120; });
    expect(await statuses('batched')).toEqual({ completed: 119, failed: 1 });
    expect(calls.reduce((a, b) => a + b, 0)).toBe(120);
    expect(Math.max(...calls)).toBeLessThanOrEqual(50);
    expect(calls.length).toBeLessThanOrEqual(6); // batched, not one call per run
    const failed = await db.pool.query(`SELECT input->>'n' AS n, error->>'message' AS msg FROM walflow.runs WHERE pipeline = 'batched' AND status = 'failed'`);
    expect(failed.rows).toEqual([{ n: '13', msg: 'item 13 is poison' }]);
  });

  it('a failing call is retried for every item per the retry policy', async () => {
    let calls = 0;
    const e = engine([definePipeline({ name: 'flaky_batch', steps: [
      batchStep({ name: 'embed', batch: { maxItems: 100, maxWaitMs: 100 }, retry: { maxAttempts: 3, initialDelayMs: 20 }, run: async (items) => {
        if (++calls === 1) throw new Error('provider 503');
        return items.map(() => 'ok');
      } }),
    ] })]);
    await e.register();
    await e.startMany('flaky_batch', Array.from({ length: 10 }, (_, n) => ({ input: { n } })));
    await e.runWorkers();
    await waitFor('all completed', async () => (await statuses('flaky_batch')).completed === 10);
    const errs = await db.pool.query(`SELECT count(*)::int AS n FROM walflow.step_errors e JOIN walflow.runs r ON r.id = e.run_id WHERE r.pipeline = 'flaky_batch'`);
    expect(errs.rows[0].n).toBe(10);
  });
});

describe('concurrency limits', () => {
  it('holds a step to its concurrency across two engines (processes share the limit through the database)', async () => {
    let active = 0;
    let maxActive = 0;
    const p = definePipeline({ name: 'limited', steps: [{ name: 'call', concurrency: 2, run: async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      await new Promise((r) => setTimeout(r, 30));
      active--;
    } }] });
    const a = engine([p]);
    const b = engine([p]);
    await a.register();
    await a.startMany('limited', Array.from({ length: 30 }, (_, n) => ({ input: { n } })));
    await a.runWorkers();
    await b.runWorkers();
    await waitFor('all completed', async () => (await statuses('limited')).completed === 30);
    expect(maxActive).toBe(2);
  });
});

describe('retention', () => {
  it('prunes finished runs older than the retention, keeps failed ones', async () => {
    await db.pool.query(`INSERT INTO walflow.pipelines (name, version, steps) VALUES ('old', 'v', '{s}')`);
    await db.pool.query(`INSERT INTO walflow.runs (pipeline, status, input, finished_at) SELECT 'old', s, '{}', now() - interval '10 days'
                         FROM unnest(ARRAY['completed','completed','superseded','failed','cancelled']) s`);
    await db.pool.query(`INSERT INTO walflow.runs (pipeline, status, input, finished_at) VALUES ('old', 'completed', '{}', now())`);
    await db.pool.query(`INSERT INTO walflow.steps (run_id, step_index, step, attempts, started_at, finished_at) SELECT id, 0, 's', 1, now(), now() FROM walflow.runs WHERE pipeline = 'old'`);
    expect(await pruneFinished(db.pool, 7 * 24 * 3600_000, 2)).toBe(2);
    expect(await pruneFinished(db.pool, 7 * 24 * 3600_000, 2)).toBe(2);
    expect(await pruneFinished(db.pool, 7 * 24 * 3600_000, 2)).toBe(0);
    expect(await statuses('old')).toEqual({ completed: 1, failed: 1 });
    const orphans = await db.pool.query(`SELECT count(*)::int AS n FROM walflow.steps s WHERE NOT EXISTS (SELECT 1 FROM walflow.runs r WHERE r.id = s.run_id)`);
    expect(orphans.rows[0].n).toBe(0);
  });
});

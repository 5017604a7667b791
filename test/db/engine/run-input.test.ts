// A run's input is checked against its pipeline's shape before any step runs: a run started from
// SQL with input that does not fit fails at once, not retried, with the shape it needed.
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Engine } from '../../../src/engine/engine.js';
import { definePipeline, type Pipeline } from '../../../src/pipeline/define.js';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';

const db = useTestDatabase();
let engine: Engine | undefined;
afterEach(async () => {
  await engine?.stop();
  engine = undefined;
});

async function run(pipelines: Pipeline[]): Promise<void> {
  engine = new Engine({ url: db.url, pipelines, pollIntervalMs: 50 });
  await engine.register();
  await engine.runWorkers();
}

async function startFromSql(pipeline: string, input: unknown): Promise<string> {
  const { rows } = await db.pool.query<{ id: string }>('SELECT walflow.start($1, $2) AS id', [pipeline, JSON.stringify(input)]);
  return rows[0]!.id;
}

async function finished(id: string) {
  await waitFor(`run ${id} to finish`, async () => {
    const { rows } = await db.pool.query('SELECT status FROM walflow.runs WHERE id = $1', [id]);
    return ['completed', 'failed'].includes(rows[0]?.status);
  }, 15_000, 20);
  const run = (await db.pool.query('SELECT status, attempt, error, walflow.result(id) AS result FROM walflow.runs WHERE id = $1', [id])).rows[0];
  const timeline = (await db.pool.query('SELECT step, outcome, attempt, retry_at, error FROM walflow.run_timeline WHERE run_id = $1 ORDER BY step_index, attempt', [id])).rows;
  return { run, timeline };
}

describe('run input shape', () => {
  it('a source pipeline started from SQL with input that does not fit fails at once, not retried, naming the shape; one that fits runs', async () => {
    let calls = 0;
    const welcome = definePipeline<{ email: string }>({
      name: 'welcome', source: { table: 'users', events: ['insert'] },
      steps: [{ name: 'render', retry: { maxAttempts: 5, initialDelayMs: 10 }, run: (ctx) => {
        calls++;
        return { to: ctx.runInput.row.email, op: ctx.runInput.op, old: ctx.runInput.old, lsn: ctx.runInput.lsn };
      } }],
    });
    await run([welcome]);

    // What the README's SQL example used to suggest: a row without op, table or key.
    const bad = await startFromSql('welcome', { row: { email: 'a@b.c' } });
    const { run: failed, timeline } = await finished(bad);
    expect(failed).toMatchObject({ status: 'failed', result: null });
    const message = 'run input does not fit pipeline "welcome" (source public.users): expected {op: "insert"|"backfill", table: "public.users", '
      + 'key: {<primary key columns>}, row: {...}} — got {"row":{"email":"a@b.c"}} (op: expected "insert"|"backfill")';
    expect(failed.error).toMatchObject({ message, name: 'RunInputError', step: 'render' });
    // One failed attempt on the timeline, no retry scheduled, and the step never ran.
    expect(timeline).toEqual([expect.objectContaining({ step: 'render', outcome: 'failed', attempt: 1, retry_at: null, error: expect.objectContaining({ message }) })]);
    expect(calls).toBe(0);

    // A delete to an insert-only pipeline does not fit either; a well-formed insert runs, with the
    // fields it left out as null.
    const del = await startFromSql('welcome', { op: 'delete', table: 'public.users', key: { id: 1 }, old: { id: 1 } });
    expect((await finished(del)).run.error.message).toMatch(/\(op: expected "insert"\|"backfill", got "delete"\)$/);
    const good = await startFromSql('welcome', { op: 'insert', table: 'public.users', key: { id: 1 }, row: { id: 1, email: 'a@b.c' } });
    expect((await finished(good)).run).toMatchObject({ status: 'completed', result: { to: 'a@b.c', op: 'insert', old: null, lsn: null } });
    expect(calls).toBe(1);
  });

  it('a pipeline without a source checks its declared input schema, and its steps get the parsed value', async () => {
    const jobs = definePipeline({
      name: 'jobs', input: z.object({ id: z.number(), priority: z.number().default(0) }),
      steps: [{ name: 'work', run: (ctx, input: { id: number; priority: number }) => ({ id: ctx.runInput.id, priority: input.priority }) }],
    });
    await run([jobs]);
    const bad = await finished(await startFromSql('jobs', { id: 'seven' }));
    expect(bad.run).toMatchObject({ status: 'failed', attempt: 1, error: { name: 'RunInputError', message: 'run input does not fit pipeline "jobs": id: Invalid input: expected number, received string — got {"id":"seven"}' } });
    expect(bad.timeline).toEqual([expect.objectContaining({ outcome: 'failed', retry_at: null })]);
    const good = await finished(await startFromSql('jobs', { id: 7 }));
    expect(good.run).toMatchObject({ status: 'completed', result: { id: 7, priority: 0 } });
  });
});

// Durability under SIGKILL: real worker processes killed at random points.
import { describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { definePipeline } from '../../../src/pipeline/define.js';
import { useTestDatabase } from '../../harness/db.js';
import { sigkill, startTsProcess, type Proc } from '../../harness/processes.js';
import { waitFor } from '../../harness/wait.js';

const db = useTestDatabase();
const WORKER = new URL('../../fixtures/engine/crash-worker.ts', import.meta.url).pathname;
const RUNS = 300;

describe('engine under SIGKILL', () => {
  it('every run completes; no ctx.tx effect is applied twice and no committed step runs again', async () => {
    await db.pool.query('CREATE TABLE effects (run_id uuid, step text, pid int, at timestamptz DEFAULT clock_timestamp())');
    await db.pool.query('CREATE TABLE reexecutions (run_id uuid, step text)');
    // Register the pipeline and queue the runs from this process (as an application would).
    const noop = definePipeline({ name: 'crashy', steps: ['a', 'b', 'c'].map((name) => ({ name, run: () => null })) });
    const starter = new Engine({ url: db.url, pipelines: [noop] });
    await starter.register();
    await starter.startMany('crashy', Array.from({ length: RUNS }, (_, n) => ({ input: { n }, key: `k${n}` })));
    await starter.stop();

    let kills = 0;
    let p: Proc = await startTsProcess(WORKER, [db.url, '1500']);
    const completed = async () => Number((await db.pool.query(`SELECT count(*) FROM walflow.runs WHERE status = 'completed'`)).rows[0].count);
    while (kills < 12 && (await completed()) < RUNS) {
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 400));
      await sigkill(p);
      kills++;
      p = await startTsProcess(WORKER, [db.url, '1500']);
    }
    await waitFor(`all ${RUNS} runs completed`, async () => (await completed()) === RUNS, 90_000, 200);
    p.child.kill('SIGTERM');
    await p.exited;

    expect(kills).toBeGreaterThanOrEqual(5);
    const dupEffects = await db.pool.query('SELECT run_id, step, count(*) FROM effects GROUP BY 1, 2 HAVING count(*) > 1');
    expect(dupEffects.rows).toEqual([]);
    const effects = await db.pool.query('SELECT count(*)::int AS n FROM effects');
    expect(effects.rows[0].n).toBe(RUNS * 3);
    const re = await db.pool.query('SELECT count(*)::int AS n FROM reexecutions');
    expect(re.rows[0].n).toBe(0);
    const outputs = await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs r WHERE walflow.result(r.id) = jsonb_build_object('n', (r.input->>'n')::int + 3)`);
    expect(outputs.rows[0].n).toBe(RUNS);
  }, 180_000);
});

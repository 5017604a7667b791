// Several worker processes sharing work, and graceful shutdown.
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { definePipeline } from '../../../src/pipeline/define.js';
import { useTestDatabase } from '../../harness/db.js';
import { startTsProcess } from '../../harness/processes.js';
import { waitFor } from '../../harness/wait.js';

const db = useTestDatabase();
const WORKER = new URL('../../fixtures/engine/crash-worker.ts', import.meta.url).pathname;
let engines: Engine[] = [];
afterEach(async () => {
  await Promise.all(engines.map((e) => e.stop()));
  engines = [];
});

async function statuses(pipeline: string): Promise<Record<string, number>> {
  const { rows } = await db.pool.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM walflow.runs WHERE pipeline = $1 GROUP BY 1', [pipeline]);
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

describe('worker processes', () => {
  it('two processes share the work without executing anything twice, and stop cleanly on SIGTERM', async () => {
    await db.pool.query('CREATE TABLE effects (run_id uuid, step text, pid int)');
    await db.pool.query('CREATE TABLE reexecutions (run_id uuid, step text)');
    const starter = new Engine({ url: db.url, pipelines: [definePipeline({ name: 'crashy', steps: ['a', 'b', 'c'].map((name) => ({ name, run: () => null })) })] });
    engines.push(starter);
    await starter.register();
    const [p1, p2] = await Promise.all([startTsProcess(WORKER, [db.url]), startTsProcess(WORKER, [db.url])]);
    await starter.startMany('crashy', Array.from({ length: 400 }, (_, n) => ({ input: { n } })));
    await waitFor('400 completed', async () => (await statuses('crashy')).completed === 400, 60_000, 100);
    p1.child.kill('SIGTERM');
    p2.child.kill('SIGTERM');
    expect(await p1.exited).toBe(0);
    expect(await p2.exited).toBe(0);
    const dup = await db.pool.query('SELECT count(*)::int AS n FROM (SELECT 1 FROM effects GROUP BY run_id, step HAVING count(*) > 1) d');
    expect(dup.rows[0].n).toBe(0);
    const byPid = await db.pool.query<{ pid: number; n: number }>('SELECT pid, count(*)::int AS n FROM effects GROUP BY pid');
    expect(byPid.rows).toHaveLength(2); // both did work
    expect(byPid.rows.reduce((a, r) => a + r.n, 0)).toBe(1200);
  });
});

describe('graceful shutdown', () => {
  it('lets running steps finish within the deadline and claims nothing new', async () => {
    let started = 0;
    const p = definePipeline({ name: 'drain', steps: [{ name: 's', run: async () => { started++; await new Promise((r) => setTimeout(r, 300)); } }] });
    const e = new Engine({ url: db.url, pipelines: [p], maxInFlight: 4, pollIntervalMs: 50, shutdownTimeoutMs: 5000 });
    await e.register();
    await e.startMany('drain', Array.from({ length: 10 }, (_, n) => ({ input: { n } })));
    await e.runWorkers();
    await waitFor('4 running', async () => started === 4);
    await e.stop();
    expect(await statuses('drain')).toEqual({ completed: 4, queued: 6 });
  });

  it('past the deadline, releases unfinished runs so another worker takes them at once, without counting an attempt', async () => {
    let firstAborted = false;
    const slow = definePipeline({ name: 'handover', steps: [{ name: 's', run: (ctx) => new Promise((resolve) => {
      ctx.signal.addEventListener('abort', () => (firstAborted = true));
      setTimeout(resolve, 60_000);
    }) }] });
    const a = new Engine({ url: db.url, pipelines: [slow], pollIntervalMs: 50, shutdownTimeoutMs: 100, leaseMs: 60_000 });
    await a.register();
    const id = await a.start('handover', {});
    await a.runWorkers();
    await waitFor('running', async () => (await statuses('handover')).running === 1);
    await a.stop();
    expect(firstAborted).toBe(true);
    const row = (await db.pool.query('SELECT status, attempt, lease_owner FROM walflow.runs WHERE id = $1', [id])).rows[0];
    expect(row).toEqual({ status: 'queued', attempt: 0, lease_owner: null });
    const fast = definePipeline({ name: 'handover', steps: [{ name: 's', run: (ctx) => ({ attempt: ctx.attempt }) }] });
    const b = new Engine({ url: db.url, pipelines: [fast], pollIntervalMs: 60_000 }); // only the release NOTIFY can wake it in time
    engines.push(b);
    await b.runWorkers();
    // Well inside the one-minute poll: only a wake-up (startup claim or release NOTIFY) can do it.
    await waitFor('taken over', async () => (await statuses('handover')).completed === 1, 15_000, 10);
    expect((await db.pool.query('SELECT walflow.result($1) AS r', [id])).rows[0].r).toEqual({ attempt: 1 });
  });
});

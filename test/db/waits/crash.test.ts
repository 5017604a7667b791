// Waits under SIGKILL: real worker processes killed while runs sleep, wait for signals (sent all
// along) and wait for their children. Every sleeper wakes once and not early, every signal is
// consumed once, every join is complete and no child is started twice.
import { describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { definePipeline } from '../../../src/pipeline/define.js';
import { useTestDatabase } from '../../harness/db.js';
import { sigkill, startTsProcess, type Proc } from '../../harness/processes.js';
import { waitFor } from '../../harness/wait.js';

const db = useTestDatabase();
const WORKER = new URL('../../fixtures/engine/waits-worker.ts', import.meta.url).pathname;
const SLEEPERS = 60;
const WAITERS = 40;
const PARENTS = 5;
const KIDS = 20;

describe('waits under SIGKILL', () => {
  it('sleepers wake once, never early; signals are consumed once; joins are complete; no child starts twice', async () => {
    await db.pool.query('CREATE TABLE effects (run_id uuid, step text, value jsonb)');
    const noop = [{ name: 'x', run: () => null }];
    const starter = new Engine({ url: db.url, pipelines: ['sleepy', 'signalled', 'kid', 'family'].map((name) => definePipeline({ name, steps: noop })) });
    await starter.register();
    const t0 = Date.now();
    await starter.startMany('sleepy', Array.from({ length: SLEEPERS }, (_, n) => ({ input: { wakeAt: new Date(t0 + 2000 + n * 100).toISOString() } })));
    const waiters = (await starter.startMany('signalled', Array.from({ length: WAITERS }, () => ({ input: {} })))).map((r) => r.run_id);
    await starter.startMany('family', Array.from({ length: PARENTS }, () => ({ input: { kids: KIDS } })));
    await starter.stop();

    let p: Proc = await startTsProcess(WORKER, [db.url]);
    let kills = 0;
    let sent = 0;
    const open = async () => Number((await db.pool.query(`SELECT count(*) FROM walflow.runs WHERE status NOT IN ('completed', 'failed', 'cancelled')`)).rows[0].count);
    while (kills < 10 || sent < WAITERS * 2) {
      // Two signals to each waiter over the run, in its own transactions, while processes die.
      for (let i = 0; i < 8 && sent < WAITERS * 2; i++, sent++) {
        await db.pool.query(`SELECT walflow.signal($1, 'go', $2)`, [waiters[sent % WAITERS], JSON.stringify({ seq: sent })]);
      }
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 500));
      await sigkill(p);
      kills++;
      p = await startTsProcess(WORKER, [db.url]);
    }
    await waitFor('every run finished', async () => (await open()) === 0, 120_000, 250);
    p.child.kill('SIGTERM');
    await p.exited;

    const q = async (sql: string) => (await db.pool.query(sql)).rows;
    expect(await q(`SELECT status, count(*)::int AS n FROM walflow.runs GROUP BY 1`)).toEqual([{ status: 'completed', n: SLEEPERS + WAITERS + PARENTS + PARENTS * KIDS }]);
    // No effect twice (ctx.tx commits only with its checkpoint).
    expect(await q(`SELECT run_id, step FROM effects GROUP BY 1, 2 HAVING count(*) > 1`)).toEqual([]);
    // Sleepers: one wake each, never before its time (by the database's clock: the sleep's checkpoint).
    expect(await q(`SELECT count(*)::int AS n FROM effects WHERE step = 'post'`)).toEqual([{ n: SLEEPERS }]);
    expect(await q(`SELECT s.run_id FROM walflow.steps s JOIN walflow.runs r ON r.id = s.run_id
                     WHERE r.pipeline = 'sleepy' AND s.step = 'nap' AND s.finished_at < (r.input->>'wakeAt')::timestamptz`)).toEqual([]);
    // Signals: every one consumed, once, by one wait; each waiter got its two, in order.
    expect(await q(`SELECT count(*)::int AS n FROM walflow.signals WHERE consumed_at IS NULL`)).toEqual([{ n: 0 }]);
    expect(await q(`SELECT count(*)::int AS n FROM effects WHERE step IN ('use-first', 'use-second')`)).toEqual([{ n: WAITERS * 2 }]);
    expect(await q(`SELECT count(DISTINCT value->>'seq')::int AS n FROM effects WHERE step IN ('use-first', 'use-second')`)).toEqual([{ n: WAITERS * 2 }]);
    // Children: exactly KIDS per parent, each worked once; every join complete and in order.
    expect(await q(`SELECT count(*)::int AS n FROM walflow.runs WHERE parent_run_id IS NOT NULL GROUP BY parent_run_id`)).toEqual(Array(PARENTS).fill({ n: KIDS }));
    expect(await q(`SELECT count(*)::int AS n FROM effects WHERE step = 'work'`)).toEqual([{ n: PARENTS * KIDS }]);
    const sums = await q(`SELECT value FROM effects WHERE step = 'sum'`);
    expect(sums.map((s) => s.value)).toEqual(Array(PARENTS).fill(Array.from({ length: KIDS }, (_, n) => n)));
    expect(kills).toBeGreaterThanOrEqual(10);
  }, 240_000);
});

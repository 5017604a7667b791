// ctx.attempt counts executions, including one whose process was SIGKILLed mid-step: the redo
// after the lease expired is attempt 2, and the lost execution has its own timeline entry.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/db.js';
import { sigkill, startTsProcess } from '../../harness/processes.js';
import { waitFor } from '../../harness/wait.js';

const db = useTestDatabase();
const WORKER = new URL('../../fixtures/ops/attempt-worker.ts', import.meta.url).pathname;

describe('attempts across a SIGKILL', () => {
  it('a run whose worker is killed in its second step resumes there as attempt 2', async () => {
    await db.pool.query('CREATE TABLE executions (run_id uuid, step text, attempt int, pid int)');
    const first = await startTsProcess(WORKER, [db.url, '1000']);
    const id = (await db.pool.query(`SELECT walflow.start('attempts', '{}') AS id`)).rows[0].id as string;
    await waitFor('the second step executing', async () => (await db.pool.query('SELECT 1 FROM executions WHERE run_id = $1', [id])).rowCount === 1);
    await sigkill(first);

    const second = await startTsProcess(WORKER, [db.url, '1000']);
    try {
      await waitFor('run completed', async () => (await db.pool.query('SELECT status FROM walflow.runs WHERE id = $1', [id])).rows[0].status === 'completed', 30_000);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
    const { rows: executions } = await db.pool.query('SELECT attempt, pid FROM executions WHERE run_id = $1 ORDER BY attempt', [id]);
    expect(executions.map((e) => e.attempt)).toEqual([1, 2]);
    expect(executions.map((e) => e.pid)).toEqual([first.child.pid, second.child.pid]);
    expect((await db.pool.query('SELECT walflow.result($1) AS r', [id])).rows[0].r).toBe(2);
    // The timeline: the first step once, the killed execution (its lease expired), then the redo.
    const { rows: timeline } = await db.pool.query(
      `SELECT step, outcome, attempt, error->>'name' AS error FROM walflow.run_timeline WHERE run_id = $1 ORDER BY step_index, attempt`, [id]);
    expect(timeline).toEqual([
      { step: 'first', outcome: 'completed', attempt: 1, error: null },
      { step: 'second', outcome: 'failed', attempt: 1, error: 'LeaseExpired' },
      { step: 'second', outcome: 'completed', attempt: 2, error: null },
    ]);
  }, 60_000);
});

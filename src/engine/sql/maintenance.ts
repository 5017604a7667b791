// Housekeeping: pruning finished runs, and this process's row in walflow.workers (walflow status).
import type { Queryable } from '../../db/queryable.js';

/** Deletes finished runs (and their steps) older than the retention, in bounded batches. */
export async function pruneFinished(db: Queryable, olderThanMs: number, batch = 1000): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `WITH gone AS (
       DELETE FROM walflow.runs WHERE id IN (
         SELECT id FROM walflow.runs
          WHERE status IN ('completed', 'superseded', 'cancelled') AND finished_at < now() - $1 * interval '1 millisecond'
          LIMIT $2 FOR UPDATE SKIP LOCKED)
       RETURNING id
     ), steps AS (
       DELETE FROM walflow.steps s USING gone WHERE s.run_id = gone.id
     ), errors AS (
       DELETE FROM walflow.step_errors e USING gone WHERE e.run_id = gone.id
     ), parked AS (
       DELETE FROM walflow.waits w USING gone WHERE w.run_id = gone.id
     ), mailbox AS (
       DELETE FROM walflow.signals s USING gone WHERE s.run_id = gone.id
     ), fences AS (
       -- A run cancelled mid-step left its checkpoint fence behind (sql/0005): it goes with the run.
       DELETE FROM walflow.cancelled_running c USING gone WHERE c.run_id = gone.id
     )
     SELECT count(*)::int AS n FROM gone`,
    [olderThanMs, batch],
  );
  return rows[0]?.n ?? 0;
}

/** How long after its last heartbeat a dead process's row stays in walflow.workers (walflow status). */
export const DEAD_WORKER_RETENTION_MS = 3600_000;

/** Forgets processes that stopped heartbeating an hour ago (SIGKILLed, or their host is gone). */
export async function pruneDeadWorkers(db: Queryable, olderThanMs = DEAD_WORKER_RETENTION_MS): Promise<number> {
  const { rowCount } = await db.query(`DELETE FROM walflow.workers WHERE heartbeat_at < now() - $1 * interval '1 millisecond'`, [olderThanMs]);
  return rowCount ?? 0;
}

/** Tells operators (walflow.worker_health) that this process is alive and how many runs it holds. */
export async function recordHeartbeat(db: Queryable, owner: string, pipelines: string[], inFlight: number): Promise<void> {
  const [host, pid] = owner.split(':');
  await db.query(
    `INSERT INTO walflow.workers (owner, host, pid, pipelines, in_flight) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (owner) DO UPDATE SET in_flight = EXCLUDED.in_flight, heartbeat_at = now()`,
    [owner, host, Number(pid), pipelines, inFlight],
  );
}

/** A clean stop: this process leaves walflow status at once. */
export async function removeWorker(db: Queryable, owner: string): Promise<void> {
  await db.query('DELETE FROM walflow.workers WHERE owner = $1', [owner]);
}

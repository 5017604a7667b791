// Leases: a run's, renewed while it executes, handed back at shutdown, reaped when its worker died;
// and a step slot's (a step's concurrency limit across processes), renewed with them.
import type { Queryable } from '../../db/queryable.js';

/** Extends the lease of runs still owned; the ids missing from the result were cancelled or taken over. */
export async function renewLeases(db: Queryable, ids: string[], owner: string, leaseMs: number): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const { rows } = await db.query<{ id: string }>(
    `UPDATE walflow.runs SET lease_expires_at = now() + $3 * interval '1 millisecond'
      WHERE id = ANY($1::uuid[]) AND lease_owner = $2 AND status = 'running' RETURNING id`,
    [ids, owner, leaseMs],
  );
  return new Set(rows.map((r) => r.id));
}

/** Hands runs back (shutdown): queued again at once, and the interrupted attempt is not counted. */
export async function releaseRuns(db: Queryable, ids: string[], owner: string): Promise<number> {
  if (ids.length === 0) return 0;
  const { rowCount } = await db.query(
    `UPDATE walflow.runs SET status = 'queued', attempt = greatest(attempt - 1, 0), lease_owner = NULL,
            lease_expires_at = NULL, run_at = now(), updated_at = now()
      WHERE id = ANY($1::uuid[]) AND lease_owner = $2 AND status = 'running'`,
    [ids, owner],
  );
  if (rowCount) await db.query(`SELECT pg_notify('walflow_runs', 'released')`);
  return rowCount ?? 0;
}

/**
 * Requeues runs whose worker stopped renewing its lease (crashed, partitioned). The lost execution
 * counts as an attempt of the step it was in (the one after the last checkpoint), so that the next
 * execution's ctx.attempt says it is a redo, and a row that kills its worker every time ends up
 * failed instead of looping forever. It gets its own timeline entry (walflow.step_errors), from
 * the later of its claim and its previous checkpoint to the reaping.
 */
export const REAP_SQL = `
WITH expired AS (
  SELECT id FROM walflow.runs WHERE status = 'running' AND lease_expires_at < now() LIMIT 1000 FOR UPDATE SKIP LOCKED
), lost AS (
  SELECT r.id, r.pipeline, r.lease_owner, coalesce(last.step_index + 1, 0) AS step_index,
         CASE WHEN coalesce(last.step_index + 1, 0) > r.step_index THEN 1 ELSE r.attempt END AS attempt,
         CASE WHEN coalesce(last.step_index + 1, 0) > r.step_index THEN 0 ELSE r.retry_base END AS retry_base,
         greatest(r.updated_at, last.finished_at) AS started_at
    FROM expired e
    JOIN walflow.runs r ON r.id = e.id
    LEFT JOIN LATERAL (
      SELECT s.step_index, s.finished_at FROM walflow.steps s WHERE s.run_id = r.id ORDER BY s.step_index DESC LIMIT 1
    ) last ON true
), requeued AS (
  UPDATE walflow.runs r
     SET status = 'queued', run_at = now(), updated_at = now(), lease_owner = NULL, lease_expires_at = NULL,
         step_index = l.step_index, attempt = l.attempt, retry_base = l.retry_base,
         error = jsonb_build_object('message', 'worker ' || l.lease_owner || ' lost its lease (crashed or stalled) during attempt ' || l.attempt, 'name', 'LeaseExpired')
    FROM lost l
   WHERE r.id = l.id
  RETURNING r.id, r.error
), recorded AS (
  -- Not for a run whose every step is checkpointed (only its completion was missing).
  INSERT INTO walflow.step_errors (run_id, step_index, step, attempt, error, started_at)
  SELECT l.id, l.step_index, p.steps[l.step_index + 1], l.attempt, q.error || jsonb_build_object('step', p.steps[l.step_index + 1], 'attempt', l.attempt), l.started_at
    FROM lost l JOIN requeued q ON q.id = l.id JOIN walflow.pipelines p ON p.name = l.pipeline
   WHERE l.step_index < cardinality(p.steps)
  ON CONFLICT (run_id, step_index, attempt) DO NOTHING
)
SELECT count(*)::int AS n FROM requeued`;

export async function reapExpiredLeases(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>(REAP_SQL);
  const n = rows[0]?.n ?? 0;
  if (n) await db.query(`SELECT pg_notify('walflow_runs', 'reaped')`);
  return n;
}

/** Takes a free (or expired) slot of a step; undefined when all are held. */
export async function takeSlot(db: Queryable, pipeline: string, step: string, owner: string, leaseMs: number): Promise<number | undefined> {
  const { rows } = await db.query<{ slot: number }>(
    `UPDATE walflow.step_slots s SET owner = $3, expires_at = now() + $4 * interval '1 millisecond'
      WHERE (s.pipeline, s.step, s.slot) = (
        SELECT pipeline, step, slot FROM walflow.step_slots
         WHERE pipeline = $1 AND step = $2 AND (owner IS NULL OR expires_at < now())
         LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING s.slot`,
    [pipeline, step, owner, leaseMs],
  );
  return rows[0]?.slot;
}

export async function releaseSlot(db: Queryable, pipeline: string, step: string, slot: number, owner: string): Promise<void> {
  await db.query(`UPDATE walflow.step_slots SET owner = NULL, expires_at = NULL WHERE pipeline = $1 AND step = $2 AND slot = $3 AND owner = $4`, [pipeline, step, slot, owner]);
}

/** Extends the leases of every slot this process holds. */
export async function renewSlots(db: Queryable, owner: string, leaseMs: number): Promise<void> {
  await db.query(`UPDATE walflow.step_slots SET expires_at = now() + $2 * interval '1 millisecond' WHERE owner = $1`, [owner, leaseMs]);
}

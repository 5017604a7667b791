// Failed attempts: a retry scheduled, or the run failed (dead letter), with the error on the timeline.
import type { Queryable } from '../../db/queryable.js';
import type { StoredError } from '../retry.js';

export interface FailureItem {
  run_id: string;
  step_index: number;
  step: string;
  error: StoredError;
  attempts: number;
  duration_ms: number;
  /** When to try again; null: the run fails (dead letter). */
  retry_at: string | null;
}

/** Failed attempts: fenced on the lease, since they change what happens to the run next. */
const FAIL = `
WITH d AS (
  SELECT * FROM json_to_recordset($1::json) AS x(run_id uuid, step_index int, step text, error jsonb,
    attempts int, duration_ms int, retry_at timestamptz)
), owned AS (
  UPDATE walflow.runs r
     SET status = CASE WHEN d.retry_at IS NULL THEN 'failed' ELSE 'waiting' END,
         step_index = d.step_index, attempt = d.attempts,
         run_at = coalesce(d.retry_at, r.run_at),
         error = d.error, lease_owner = NULL, lease_expires_at = NULL,
         finished_at = CASE WHEN d.retry_at IS NULL THEN now() END, updated_at = now()
    FROM d
   WHERE r.id = d.run_id AND r.lease_owner = $2 AND r.status = 'running'
  RETURNING r.id
), recorded AS (
  -- Each execution has its own entry. The one conflict left is an exhausted budget reported as the
  -- last attempt, whose entry (the reaper's record of a lost execution) stays as it was.
  INSERT INTO walflow.step_errors (run_id, step_index, step, attempt, error, started_at, retry_at)
  SELECT d.run_id, d.step_index, d.step, d.attempts, d.error, now() - d.duration_ms * interval '1 millisecond', d.retry_at
    FROM d JOIN owned o ON o.id = d.run_id
  ON CONFLICT (run_id, step_index, attempt) DO NOTHING
)
SELECT id AS run_id FROM owned`;

export async function writeFailures(db: Queryable, items: FailureItem[], owner: string): Promise<Set<string>> {
  const { rows } = await db.query<{ run_id: string }>(FAIL, [JSON.stringify(items), owner]);
  return new Set(rows.map((r) => r.run_id));
}

-- walflow.run_timeline: each run's steps in order, completed checkpoints and failed attempts, with errors.
CREATE OR REPLACE VIEW walflow.run_timeline AS
SELECT r.id AS run_id, r.pipeline, r.key, r.status AS run_status,
       t.step_index, t.step, t.outcome, t.attempt, t.started_at, t.finished_at,
       round(extract(epoch FROM t.finished_at - t.started_at) * 1000, 3) AS duration_ms,
       t.error, t.retry_at
FROM walflow.runs r
JOIN (
  SELECT run_id, step_index, step, 'completed' AS outcome, attempts AS attempt, started_at, finished_at, NULL::jsonb AS error, NULL::timestamptz AS retry_at
    FROM walflow.steps
  UNION ALL
  SELECT run_id, step_index, step, 'failed', attempt, started_at, failed_at, error, retry_at
    FROM walflow.step_errors
) t ON t.run_id = r.id;

-- walflow.run_timeline: each run's steps in order, completed checkpoints (or skipped, when the step's
-- condition was false) and failed attempts, with errors; and, for a parked run, the wait it is in
-- (outcome 'sleeping', 'awaiting signal', 'awaiting children' or 'repeating': `waiting_for` says for
-- what, `retry_at` until when).
CREATE OR REPLACE VIEW walflow.run_timeline AS
SELECT r.id AS run_id, r.pipeline, r.key, r.status AS run_status,
       t.step_index, t.step, t.outcome, t.attempt, t.started_at, t.finished_at,
       round(extract(epoch FROM t.finished_at - t.started_at) * 1000, 3) AS duration_ms,
       t.error, t.retry_at, t.waiting_for
FROM walflow.runs r
JOIN (
  SELECT run_id, step_index, step, CASE WHEN skipped THEN 'skipped' ELSE 'completed' END AS outcome, attempts AS attempt,
         started_at, finished_at, NULL::jsonb AS error, NULL::timestamptz AS retry_at, NULL::jsonb AS waiting_for
    FROM walflow.steps
  UNION ALL
  SELECT run_id, step_index, step, 'failed', attempt, started_at, failed_at, error, retry_at, NULL::jsonb
    FROM walflow.step_errors
  UNION ALL
  SELECT w.run_id, w.step_index, w.step,
         CASE w.kind WHEN 'sleep' THEN 'sleeping' WHEN 'signal' THEN 'awaiting signal' WHEN 'children' THEN 'awaiting children' ELSE 'repeating' END,
         NULL::integer, w.since, NULL::timestamptz, NULL::jsonb, w.until,
         jsonb_strip_nulls(jsonb_build_object('kind', w.kind, 'until', w.until, 'signal', w.signal,
           'children', w.children, 'children_left', w.children_left, 'join', w.mode, 'repeats', nullif(w.repeats, 0)))
    FROM walflow.waits w JOIN walflow.runs pr ON pr.id = w.run_id AND pr.status = 'waiting'
) t ON t.run_id = r.id;

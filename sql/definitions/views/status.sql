-- walflow.status: one row per pipeline. Every count is answered from a partial index, so this stays cheap with millions of
-- finished runs. Runs with status 'waiting' are told apart: `waiting` are those waiting for a retry
-- of a failed attempt; the parked ones (docs/waits.md) are counted by what they wait for — a
-- sleep, a signal, their child runs, or their step's own again() — and are never "stuck".
CREATE OR REPLACE VIEW walflow.status AS
SELECT p.name AS pipeline,
       p.version,
       (SELECT count(*) FROM walflow.runs r WHERE r.pipeline = p.name AND r.status = 'queued')  AS queued,
       (SELECT count(*) FROM walflow.runs r WHERE r.pipeline = p.name AND r.status = 'running') AS running,
       (SELECT count(*) FROM walflow.runs r WHERE r.pipeline = p.name AND r.status = 'waiting'
           AND NOT EXISTS (SELECT 1 FROM walflow.waits w WHERE w.run_id = r.id)) AS waiting,
       (SELECT count(*) FROM walflow.runs r WHERE r.pipeline = p.name AND r.status = 'failed')  AS failed,
       (SELECT count(*) FROM walflow.runs r
         WHERE r.status = 'completed' AND r.finished_at > now() - interval '1 hour' AND r.pipeline = p.name) AS completed_1h,
       (SELECT round(count(*) / 60.0, 2) FROM walflow.runs r
         WHERE r.status = 'completed' AND r.finished_at > now() - interval '1 minute' AND r.pipeline = p.name) AS completed_per_s_1m,
       (SELECT now() - min(r.run_at) FROM walflow.runs r WHERE r.pipeline = p.name AND r.status = 'queued') AS oldest_queued_age,
       coalesce(parked.sleeping, 0) AS sleeping,
       coalesce(parked.awaiting_signal, 0) AS awaiting_signal,
       coalesce(parked.awaiting_children, 0) AS awaiting_children,
       coalesce(parked.repeating, 0) AS repeating,
       parked.next_wake
FROM walflow.pipelines p
LEFT JOIN LATERAL (
  SELECT count(*) FILTER (WHERE w.kind = 'sleep') AS sleeping,
         count(*) FILTER (WHERE w.kind = 'signal') AS awaiting_signal,
         count(*) FILTER (WHERE w.kind = 'children') AS awaiting_children,
         count(*) FILTER (WHERE w.kind = 'repeat') AS repeating,
         min(w.until) FILTER (WHERE w.kind IN ('sleep', 'repeat')) AS next_wake
    FROM walflow.waits w JOIN walflow.runs r ON r.id = w.run_id AND r.status = 'waiting'
   WHERE w.pipeline = p.name
) parked ON true;

-- walflow.status: one row per pipeline. Every count is answered from a partial index, so this stays cheap with millions of
-- finished runs.
CREATE OR REPLACE VIEW walflow.status AS
SELECT p.name AS pipeline,
       p.version,
       (SELECT count(*) FROM walflow.runs r WHERE r.pipeline = p.name AND r.status = 'queued')  AS queued,
       (SELECT count(*) FROM walflow.runs r WHERE r.pipeline = p.name AND r.status = 'running') AS running,
       (SELECT count(*) FROM walflow.runs r WHERE r.pipeline = p.name AND r.status = 'waiting') AS waiting,
       (SELECT count(*) FROM walflow.runs r WHERE r.pipeline = p.name AND r.status = 'failed')  AS failed,
       (SELECT count(*) FROM walflow.runs r
         WHERE r.status = 'completed' AND r.finished_at > now() - interval '1 hour' AND r.pipeline = p.name) AS completed_1h,
       (SELECT round(count(*) / 60.0, 2) FROM walflow.runs r
         WHERE r.status = 'completed' AND r.finished_at > now() - interval '1 minute' AND r.pipeline = p.name) AS completed_per_s_1m,
       (SELECT now() - min(r.run_at) FROM walflow.runs r WHERE r.pipeline = p.name AND r.status = 'queued') AS oldest_queued_age
FROM walflow.pipelines p;

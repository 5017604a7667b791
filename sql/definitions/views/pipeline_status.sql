-- walflow.pipeline_status: every pipeline, from pipeline files (registered by walflow processes) and
-- from SQL (walflow.sql_pipelines, listed from the moment it is created), like pgai's vectorizer_status.
-- origin: 'file' | 'sql'; version: a file pipeline's version, or 'v<n>' of a SQL one; source: its
-- table; pending: runs not finished (queued, waiting, running); failed; last_error: the newest failed
-- run's error. Every count is answered from a partial index (runs_runnable, runs_running,
-- runs_failed), so this stays cheap with millions of finished runs.
CREATE OR REPLACE VIEW walflow.pipeline_status AS
WITH names AS (
  SELECT p.name, 'file'::text AS origin, p.version, p.source->>'table' AS source, NULL::text AS kind, NULL::text AS definer,
         p.updated_at
    FROM walflow.pipelines p
   WHERE NOT EXISTS (SELECT 1 FROM walflow.sql_pipelines s WHERE s.name = p.name)
  UNION ALL
  SELECT s.name, 'sql', 'v' || s.version, coalesce(s.definition->'source'->>'table', s.definition->>'source_table'), s.kind, s.definer,
         s.updated_at
    FROM walflow.sql_pipelines s
)
SELECT n.name AS pipeline, n.origin, n.kind, n.version, n.source, n.definer,
       (SELECT count(*) FROM walflow.runs r WHERE r.pipeline = n.name AND r.status IN ('queued', 'waiting'))
       + (SELECT count(*) FROM walflow.runs r WHERE r.status = 'running' AND r.pipeline = n.name) AS pending,
       (SELECT count(*) FROM walflow.runs r WHERE r.pipeline = n.name AND r.status = 'failed') AS failed,
       (SELECT r.error FROM walflow.runs r WHERE r.pipeline = n.name AND r.status = 'failed' ORDER BY r.seq DESC LIMIT 1) AS last_error,
       n.updated_at
  FROM names n;

-- walflow.supersede(pipeline, keys, starter): latest wins. For each key, this starter's queued runs
-- that never started give way to its newest unfinished run of that key. Returns how many runs it
-- superseded. Called by both start paths after they insert, with the keys walflow.contested_keys
-- found (usually none): walflow.start_batch and the replication writer (src/engine/fast-start.ts).
-- Runs of other starters are never touched (docs/guarantees.md, "Authorization").
CREATE OR REPLACE FUNCTION walflow.supersede(p_pipeline text, p_keys text[], p_starter text)
RETURNS integer LANGUAGE sql AS $$
  WITH superseded AS (
    UPDATE walflow.runs o
       SET status = 'superseded', finished_at = pg_catalog.now(), updated_at = pg_catalog.now()
     WHERE o.pipeline = p_pipeline AND o.key = ANY(p_keys)
       AND o.status = 'queued' AND o.started_at IS NULL
       AND o.started_by IS NOT DISTINCT FROM p_starter
       AND o.seq < (SELECT pg_catalog.max(n.seq) FROM walflow.runs n
                     WHERE n.key = o.key AND n.pipeline = p_pipeline AND n.status IN ('queued', 'waiting', 'running')
                       AND n.started_by IS NOT DISTINCT FROM p_starter)
    RETURNING 1
  )
  SELECT pg_catalog.count(*)::integer FROM superseded
$$;

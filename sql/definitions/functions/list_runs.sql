-- walflow.list_runs(...): keyset pagination over runs, newest first; pass the last id of a page as
-- p_before for the next. Any filter NULL: no filter.
CREATE OR REPLACE FUNCTION walflow.list_runs(
  p_pipeline text DEFAULT NULL, p_status text DEFAULT NULL, p_key text DEFAULT NULL,
  p_before uuid DEFAULT NULL, p_limit integer DEFAULT 50)
RETURNS TABLE (id uuid, pipeline text, key text, status text, step_index integer, attempt integer,
               created_at timestamptz, finished_at timestamptz, error_message text)
LANGUAGE sql STABLE AS $$
  SELECT r.id, r.pipeline, r.key, r.status, r.step_index, r.attempt, r.created_at, r.finished_at, r.error->>'message'
  FROM walflow.runs r
  WHERE (p_pipeline IS NULL OR r.pipeline = p_pipeline)
    AND (p_status IS NULL OR r.status = p_status)
    AND (p_key IS NULL OR r.key = p_key)
    AND (p_before IS NULL OR r.id < p_before)
  ORDER BY r.id DESC
  LIMIT least(greatest(p_limit, 1), 10000)
$$;

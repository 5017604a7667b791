-- walflow.retry_failed(pipeline): re-queues every failed run of a pipeline, as walflow.retry; returns how many.
CREATE OR REPLACE FUNCTION walflow.retry_failed(p_pipeline text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM walflow.pipelines WHERE name = p_pipeline) THEN
    RAISE EXCEPTION 'walflow: unknown pipeline "%"', p_pipeline USING ERRCODE = 'WF001';
  END IF;
  UPDATE walflow.runs SET status = 'queued', retry_base = attempt, run_at = now(), error = NULL, finished_at = NULL, updated_at = now()
   WHERE pipeline = p_pipeline AND status = 'failed';
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n > 0 THEN PERFORM pg_notify('walflow_runs', p_pipeline); END IF;
  RETURN n;
END;
$$;

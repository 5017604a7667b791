-- walflow.retry(run): re-queues a failed or cancelled run at its unfinished step. Its attempt count goes on (the next
-- execution is attempt n+1) and the step gets a fresh budget of maxAttempts.
CREATE OR REPLACE FUNCTION walflow.retry(run uuid) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  v_pipeline text;
BEGIN
  UPDATE walflow.runs SET status = 'queued', retry_base = attempt, run_at = now(), error = NULL, finished_at = NULL, updated_at = now()
   WHERE id = run AND status IN ('failed', 'cancelled')
  RETURNING pipeline INTO v_pipeline;
  IF FOUND THEN
    DELETE FROM walflow.cancelled_running WHERE run_id = run;
    PERFORM pg_notify('walflow_runs', v_pipeline);
    RETURN true;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM walflow.runs WHERE id = run) THEN
    RAISE EXCEPTION 'walflow: no run %', run USING ERRCODE = 'WF003';
  END IF;
  RETURN false;
END;
$$;

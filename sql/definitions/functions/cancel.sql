-- walflow.cancel(run): cancels a run that has not finished; false when it had already finished.
-- A running run is also listed in walflow.cancelled_running, which makes its step's checkpoint be
-- refused, and a NOTIFY walflow_cancel tells its worker to abort the step's signal at once (the
-- lease renewal is the backstop).
CREATE OR REPLACE FUNCTION walflow.cancel(run uuid) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  v_status text;
BEGIN
  SELECT status INTO v_status FROM walflow.runs WHERE id = run FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'walflow: no run %', run USING ERRCODE = 'WF003';
  END IF;
  IF v_status NOT IN ('queued', 'waiting', 'running') THEN
    RETURN false;
  END IF;
  UPDATE walflow.runs SET status = 'cancelled', finished_at = now(), updated_at = now(), lease_owner = NULL, lease_expires_at = NULL
   WHERE id = run;
  IF v_status = 'running' THEN
    -- Its worker may be mid-step: refuse that step's checkpoint, and tell the worker to stop now
    -- rather than at its next lease renewal.
    INSERT INTO walflow.cancelled_running (run_id) VALUES (run)
    ON CONFLICT (run_id) DO UPDATE SET cancelled_at = now();
    PERFORM pg_notify('walflow_cancel', run::text);
  END IF;
  RETURN true;
END;
$$;

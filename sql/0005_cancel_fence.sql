-- Cancelling a running run fences its worker off through a small table instead of a status probe in
-- every checkpoint. Checkpoints are the hottest write walflow makes; a correlated look-up of the
-- run's status for each of them cost as much as the insert itself, to guard against an event
-- (cancelling a run mid-step) that almost never happens. Now a checkpoint is refused only for the
-- runs listed here: an empty or tiny table that the checkpoint statement anti-joins for nearly free.
-- Duplicate execution after a lost lease stays fenced by walflow.steps' primary key.
CREATE TABLE walflow.cancelled_running (
  run_id       uuid PRIMARY KEY,
  cancelled_at timestamptz NOT NULL DEFAULT now()
);

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

CREATE OR REPLACE FUNCTION walflow.retry(run uuid) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  v_pipeline text;
BEGIN
  UPDATE walflow.runs SET status = 'queued', attempt = 0, run_at = now(), error = NULL, finished_at = NULL, updated_at = now()
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

-- walflow.signal(run, name, payload): sends a signal to a run, inside the caller's transaction (a
-- rollback sends nothing). A wait for this name in the run (a step's waitFor) consumes it; sent
-- before the run reaches its wait, it waits in the run's mailbox. Each signal is consumed once.
-- Returns the signal's id. Refused: an unknown run, or one the caller may not see (WF003, as for
-- walflow.status); a finished run (WF004).
-- Who may signal: the run's starter; walflow's own principal; and for runs walflow started itself
-- (from WAL, backfill, schedules, parents) any role that may start the pipeline (its startRoles).
-- Takes the run's row lock until the caller commits: the worker deciding to park the run takes the
-- same lock, so the run either sees the signal or is woken by it.
CREATE OR REPLACE FUNCTION walflow.signal(run uuid, name text, payload jsonb DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_role     text := walflow.caller_role();
  v_starter  text := walflow.caller_starter();
  v_run      walflow.runs%ROWTYPE;
  v_roles    text[];
  v_id       bigint;
BEGIN
  IF name IS NULL OR btrim(name) = '' THEN
    RAISE EXCEPTION 'walflow: a signal needs a name' USING ERRCODE = 'WF002';
  END IF;
  SELECT * INTO v_run FROM walflow.runs r WHERE r.id = run FOR NO KEY UPDATE;
  IF FOUND AND v_starter IS NOT NULL AND v_run.started_by IS DISTINCT FROM v_starter THEN
    SELECT p.start_roles INTO v_roles FROM walflow.pipelines p WHERE p.name = v_run.pipeline;
    IF v_run.started_by IS NOT NULL
       OR (v_roles IS NOT NULL AND NOT EXISTS (SELECT 1 FROM unnest(v_roles) AS s(r) JOIN pg_roles g ON g.rolname = s.r WHERE pg_has_role(v_role, g.oid, 'MEMBER'))) THEN
      v_run := NULL;
    END IF;
  END IF;
  IF v_run.id IS NULL THEN
    RAISE EXCEPTION 'walflow: no run %', run USING ERRCODE = 'WF003';
  END IF;
  IF v_run.status NOT IN ('queued', 'waiting', 'running') THEN
    RAISE EXCEPTION 'walflow: run % is %: signals go only to unfinished runs', run, v_run.status
      USING ERRCODE = 'WF004', HINT = 'A signal a finished run never reads would be lost silently; check walflow.status(run) first, or signal by key (walflow.signal_key) to reach the key''s current run.';
  END IF;
  INSERT INTO walflow.signals (run_id, name, payload, sent_by) VALUES (run, name, payload, v_starter) RETURNING id INTO v_id;
  -- Parked in a wait for this signal: due now. (A run waiting for another signal, or for its retry,
  -- keeps the signal in its mailbox.)
  UPDATE walflow.runs r SET run_at = now(), updated_at = now()
   WHERE r.id = run AND r.status = 'waiting'
     AND EXISTS (SELECT 1 FROM walflow.waits w WHERE w.run_id = run AND w.kind = 'signal' AND w.signal = name);
  IF FOUND THEN
    PERFORM pg_notify('walflow_runs', v_run.pipeline);
  END IF;
  RETURN v_id;
END;
$$;

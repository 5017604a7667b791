-- walflow.cancel(run): cancels a run that has not finished, and its unfinished child runs (and
-- theirs: walflow.cancel_tree); false when it had already finished.
-- A running run is also listed in walflow.cancelled_running, which makes its step's checkpoint be
-- refused, and a NOTIFY walflow_cancel tells its worker to abort the step's signal at once (the
-- lease renewal is the backstop). A parked run's wait is dropped with it.
-- Runs with the owner's rights for a caller that started the run (or is walflow's own principal,
-- walflow.caller_starter() NULL); a run the caller may not see raises WF003 exactly like one that
-- does not exist, so its existence is not revealed.
CREATE OR REPLACE FUNCTION walflow.cancel(run uuid) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_starter text := walflow.caller_starter();
  v_status  text;
BEGIN
  -- Not locked here: walflow.cancel_tree locks the tree children first (see there), and skips what
  -- finished meanwhile.
  SELECT r.status INTO v_status FROM walflow.runs r
   WHERE r.id = run AND (v_starter IS NULL OR r.started_by = v_starter);
  IF NOT FOUND THEN
    RAISE EXCEPTION 'walflow: no run %', run USING ERRCODE = 'WF003';
  END IF;
  IF v_status NOT IN ('queued', 'waiting', 'running') THEN
    RETURN false;
  END IF;
  PERFORM walflow.cancel_tree(run);
  -- Whether the run itself was cancelled (it may have finished since it was read). A statement of
  -- its own, so that it sees what cancel_tree changed.
  RETURN EXISTS (SELECT 1 FROM walflow.runs r WHERE r.id = run AND r.status = 'cancelled' AND r.finished_at = now());
END;
$$;

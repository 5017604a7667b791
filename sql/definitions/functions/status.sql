-- walflow.status(run): the run's status.
-- Runs with the owner's rights for a caller that started the run (or is walflow's own principal,
-- walflow.caller_starter() NULL); a run the caller may not see raises WF003 exactly like one that
-- does not exist, so its existence is not revealed.
CREATE OR REPLACE FUNCTION walflow.status(run uuid) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_starter text := walflow.caller_starter();
  v_status  text;
BEGIN
  SELECT r.status INTO v_status FROM walflow.runs r
   WHERE r.id = run AND (v_starter IS NULL OR r.started_by = v_starter);
  IF NOT FOUND THEN
    RAISE EXCEPTION 'walflow: no run %', run USING ERRCODE = 'WF003';
  END IF;
  RETURN v_status;
END;
$$;

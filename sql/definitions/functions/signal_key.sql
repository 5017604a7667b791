-- walflow.signal_key(pipeline, key, name, payload): walflow.signal to the current run of a key
-- (the application usually knows the row, not the run): the oldest unfinished run of that pipeline
-- and key, the one the key's runs wait behind. WF004 when the key has no unfinished run.
CREATE OR REPLACE FUNCTION walflow.signal_key(pipeline text, key text, name text, payload jsonb DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_run uuid;
BEGIN
  SELECT r.id INTO v_run FROM walflow.runs r
   WHERE r.key = signal_key.key AND r.pipeline = signal_key.pipeline AND r.status IN ('queued', 'waiting', 'running')
   ORDER BY r.seq LIMIT 1;
  IF v_run IS NULL THEN
    RAISE EXCEPTION 'walflow: pipeline "%" has no unfinished run with key "%"', signal_key.pipeline, signal_key.key
      USING ERRCODE = 'WF004', HINT = 'A signal nobody can read would be lost silently: start the run first, or send it once the run exists.';
  END IF;
  RETURN walflow.signal(v_run, name, payload);
END;
$$;

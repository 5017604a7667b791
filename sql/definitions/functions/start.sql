-- walflow.start(pipeline, input, key, dedupe_id): the single-run form of start_batch, for SQL
-- callers: SELECT walflow.start('pipeline', '{"id": 1}', 'key-1');
-- Runs with the privileges of walflow's owner (the role that migrates) and a pinned search path, so
-- an application role that starts runs needs only USAGE on schema walflow and no table privileges:
-- it cannot read other runs' inputs, change their status or touch checkpoints, and nothing in the
-- caller's search path can stand in for an object this function uses.
CREATE OR REPLACE FUNCTION walflow.start(pipeline text, input jsonb, key text DEFAULT NULL, dedupe_id text DEFAULT NULL)
RETURNS uuid LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_id uuid;
BEGIN
  IF input IS NULL THEN
    RAISE EXCEPTION 'walflow: input must not be NULL (use ''{}''::jsonb for no input)' USING ERRCODE = 'WF002';
  END IF;
  IF jsonb_typeof(input) <> 'object' THEN
    RAISE EXCEPTION 'walflow: input must be a JSON object, not % (wrap it: {"value": ...}; use ''{}'' for no input)', jsonb_typeof(input)
      USING ERRCODE = 'WF002';
  END IF;
  SELECT b.run_id INTO v_id
  FROM walflow.start_batch(pipeline, jsonb_build_array(jsonb_strip_nulls(jsonb_build_object('input', input, 'key', key, 'dedupe_id', dedupe_id)))) b
  LIMIT 1;
  RETURN v_id;
END;
$$;

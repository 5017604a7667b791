-- walflow.create_pipeline(name, steps, source, start_roles): defines a pipeline from SQL; every
-- running `walflow run` picks it up within about a second. Returns its version (1).
--   SELECT walflow.create_pipeline('order-paid',
--     ARRAY[walflow.sql_step('load', 'SELECT total FROM orders WHERE id = :input.key.id::int'),
--           walflow.sql_step('record', 'INSERT INTO shipments (order_id) VALUES (:input.key.id::int)')],
--     source => '{"table": "orders", "events": ["update"], "columns": ["paid"]}');
-- source (optional; without it, runs are started with walflow.start): {"table", "events",
-- "columns", "key", "backfill"} as a pipeline file's source (no "where": a row filter is a step's
-- WHERE clause). SQL steps run with the calling role's privileges (walflow.define_sql_steps).
-- Runs as the caller; EXECUTE is the operator's grant (README, "From SQL").
CREATE OR REPLACE FUNCTION walflow.create_pipeline(name text, steps jsonb[], source jsonb DEFAULT NULL, start_roles text[] DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  v_steps jsonb := to_jsonb(steps);
  v_def jsonb;
  v_version integer;
BEGIN
  PERFORM walflow.define_sql_steps(name, NULL, v_steps);
  v_def := jsonb_strip_nulls(jsonb_build_object('steps', v_steps, 'source', walflow.check_pipeline_source(name, source), 'startRoles', to_jsonb(start_roles)));
  v_version := walflow.save_pipeline(name, 'create', 'steps', v_def);
  PERFORM walflow.define_sql_steps(name, v_version, v_steps);
  RETURN v_version;
END;
$$;
REVOKE ALL ON FUNCTION walflow.create_pipeline(text, jsonb[], jsonb, text[]) FROM PUBLIC;

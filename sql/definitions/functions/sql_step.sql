-- walflow.sql_step(name, statement): a SQL step for walflow.create_pipeline. The statement runs with
-- the privileges of the role that defines the pipeline, in the transaction of the step's checkpoint
-- (its effect is exactly once). Parameters are bound by name from the run so far:
--   :input.row.id  :input.key.id  :input.op   the run's input (a source pipeline's change)
--   :steps.fetch.rows  :steps."my-step".count  an earlier step's output
--   :prev.rows     the previous step's output      :run.id  :run.key  :run.pipeline
-- Each is the value as text (NULL when absent): cast it where a type is needed (:input.row.id::int).
-- The step's output is {"rows": [...], "count": n}: the rows a SELECT, VALUES or RETURNING gives
-- (as JSON objects), or the number of rows an INSERT/UPDATE/DELETE without RETURNING touched.
-- A pure builder of the step's JSON: anyone may call it.
CREATE OR REPLACE FUNCTION walflow.sql_step(name text, statement text) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT jsonb_build_object('kind', 'sql', 'name', name, 'statement', statement)
$$;

-- walflow.drop_pipeline(name, drop_target): removes a SQL-defined pipeline; running processes stop
-- it within about a second and take its table out of the publication (the slot stays). Its runs
-- stay for inspection; unfinished ones stay queued until a pipeline of that name is loaded again.
-- Its SQL step functions go (the caller must own them: the definer, or a member of its role).
-- drop_target: an embedding pipeline's target table goes too (the caller must own it), and with it
-- its walflow.embedding_targets row.
-- Runs as the caller; EXECUTE is the operator's grant.
CREATE OR REPLACE FUNCTION walflow.drop_pipeline(name text, drop_target boolean DEFAULT false) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  cur jsonb := walflow.pipeline_definition(name);
  fn regprocedure;
  v_target regclass;
  v_key text;
BEGIN
  FOR fn IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
             WHERE p.pronamespace = 'walflow_steps'::regnamespace AND pg_catalog.obj_description(p.oid, 'pg_proc') = name LOOP
    EXECUTE format('DROP FUNCTION %s', fn);
  END LOOP;
  IF drop_target THEN
    IF cur->>'kind' <> 'embedding' THEN
      RAISE EXCEPTION 'walflow: pipeline "%" has no target table to drop (drop_target is for embedding pipelines)', name USING ERRCODE = '22023';
    END IF;
    v_target := pg_catalog.to_regclass(cur->'definition'->>'target_table');
    IF v_target IS NOT NULL THEN
      -- The key walflow.embedding_targets knows it by (schema.table, unquoted), for save_pipeline.
      SELECT n.nspname || '.' || c.relname INTO v_key FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = v_target;
      EXECUTE format('DROP TABLE %s', v_target);
    END IF;
  END IF;
  PERFORM walflow.save_pipeline(name, 'drop', NULL, CASE WHEN v_key IS NOT NULL THEN jsonb_build_object('dropped_target', v_key) END);
  RETURN true;
END;
$$;
REVOKE ALL ON FUNCTION walflow.drop_pipeline(text, boolean) FROM PUBLIC;

-- walflow.alter_pipeline(name, steps, source, options): a new version of a SQL-defined pipeline;
-- running processes pick it up within about a second. What is NULL stays as it was.
--   steps, source: a pipeline of walflow.create_pipeline (its steps replaced as a whole);
--   options: an embedding pipeline's options to change, by create_embedding_pipeline's argument
--            names: alter_pipeline('notes-embed', options => '{"chunk_size": 64}').
-- As for a changed pipeline file: a run a worker holds when the change arrives finishes on the
-- version it started with (that version's step functions stay until the pipeline is dropped); runs
-- claimed afterwards, including ones part done, continue on the new version from their next
-- step. The caller becomes the definer: its privileges are the new SQL steps'. Returns the new
-- version. Runs as the caller; EXECUTE is the operator's grant.
CREATE OR REPLACE FUNCTION walflow.alter_pipeline(name text, steps jsonb[] DEFAULT NULL, source jsonb DEFAULT NULL, options jsonb DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  cur jsonb := walflow.pipeline_definition(name);
  v_def jsonb := cur->'definition';
  v_steps jsonb;
  v_version integer;
BEGIN
  IF cur->>'kind' = 'embedding' THEN
    IF steps IS NOT NULL OR source IS NOT NULL THEN
      RAISE EXCEPTION 'walflow: pipeline "%" is an embedding pipeline: change it with options => ''{"chunk_size": …}''', name USING ERRCODE = '22023';
    END IF;
    IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
      RAISE EXCEPTION 'walflow: pipeline "%": options must be a JSON object of create_embedding_pipeline''s argument names', name USING ERRCODE = '22023';
    END IF;
    v_def := walflow.check_embedding_definition(name, v_def || options);
    v_version := walflow.save_pipeline(name, 'alter', 'embedding', v_def);
    IF v_def ? 'row_filter' THEN
      PERFORM walflow.define_row_filter(name, v_version, v_def->>'source_table', v_def->>'row_filter');
    END IF;
    RETURN v_version;
  END IF;
  IF options IS NOT NULL THEN
    RAISE EXCEPTION 'walflow: pipeline "%" is not an embedding pipeline: change its steps or source', name USING ERRCODE = '22023';
  END IF;
  v_steps := coalesce(to_jsonb(steps), v_def->'steps');
  PERFORM walflow.define_sql_steps(name, NULL, v_steps);
  v_def := v_def || jsonb_build_object('steps', v_steps);
  IF source IS NOT NULL THEN
    v_def := jsonb_strip_nulls(v_def || jsonb_build_object('source', walflow.check_pipeline_source(name, source)));
  END IF;
  v_version := walflow.save_pipeline(name, 'alter', 'steps', v_def);
  PERFORM walflow.define_sql_steps(name, v_version, v_steps);
  RETURN v_version;
END;
$$;
REVOKE ALL ON FUNCTION walflow.alter_pipeline(text, jsonb[], jsonb, jsonb) FROM PUBLIC;

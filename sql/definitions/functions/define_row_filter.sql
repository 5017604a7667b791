-- walflow.define_row_filter(pipeline, version, source_table, expression): an embedding pipeline's
-- row_filter (a SQL boolean expression over the source row's columns, e.g. 'status = ''published''')
-- as the function walflow.sql_step_function(pipeline, 'row_filter', version): it takes the row as
-- jsonb, is owned by the calling role and SECURITY DEFINER (the expression runs with the definer's
-- privileges, never walflow's), EXECUTE only for walflow's owner. NULL counts as false. Runs as the
-- caller, who needs CREATE on schema walflow_steps.
CREATE OR REPLACE FUNCTION walflow.define_row_filter(pipeline text, version integer, source_table text, expression text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_fn text := walflow.sql_step_function(pipeline, 'row_filter', version);
  v_owner text;
BEGIN
  IF expression IS NULL OR btrim(expression) = '' THEN
    RAISE EXCEPTION 'walflow: pipeline "%": row_filter is empty', pipeline USING ERRCODE = '22023';
  END IF;
  BEGIN
    EXECUTE format('CREATE OR REPLACE FUNCTION %s(r jsonb) RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS %L',
                   v_fn, format('SELECT coalesce((%s)::boolean, false) FROM jsonb_populate_record(NULL::%s, $1) AS t', expression, source_table));
  EXCEPTION WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'walflow: role "%" may not create row filters: the operator grants USAGE, CREATE ON SCHEMA walflow_steps (README, "From SQL")', current_user
      USING ERRCODE = '42501';
  WHEN syntax_error OR undefined_column OR undefined_function OR datatype_mismatch THEN
    RAISE EXCEPTION 'walflow: pipeline "%": row_filter: %', pipeline, SQLERRM USING ERRCODE = '22023';
  END;
  EXECUTE format('COMMENT ON FUNCTION %s(jsonb) IS %L', v_fn, pipeline);
  EXECUTE format('REVOKE ALL ON FUNCTION %s(jsonb) FROM PUBLIC', v_fn);
  SELECT nspowner::regrole::text INTO v_owner FROM pg_catalog.pg_namespace WHERE nspname = 'walflow';
  EXECUTE format('GRANT EXECUTE ON FUNCTION %s(jsonb) TO %s', v_fn, v_owner);
END;
$$;

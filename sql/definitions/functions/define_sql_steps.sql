-- walflow.define_sql_steps(pipeline, version, steps): checks a SQL-defined pipeline's steps (a JSON
-- array of what sql_step, http_step, sleep_step and signal_step build) and creates, for each SQL
-- step, its function walflow_steps."<pipeline>/<step>/v<version>" (walflow.sql_step_function):
-- owned by the calling role and SECURITY DEFINER, so the statement runs with that role's
-- privileges whoever calls it; EXECUTE only for walflow's owner. Runs as the caller (it must be: the
-- caller owns what it creates), who needs CREATE on schema walflow_steps. Returns the steps.
CREATE OR REPLACE FUNCTION walflow.define_sql_steps(pipeline text, version integer, steps jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  s jsonb;
  i integer := 0;
  v_names text[] := '{}';
  v_name text;
  v_fn text;
  v_owner text;
BEGIN
  IF steps IS NULL OR jsonb_typeof(steps) <> 'array' OR jsonb_array_length(steps) = 0 THEN
    RAISE EXCEPTION 'walflow: pipeline "%" needs at least one step (walflow.sql_step(name, statement), walflow.http_step(...), …)', pipeline
      USING ERRCODE = '22023';
  END IF;
  FOR s IN SELECT value FROM jsonb_array_elements(steps) LOOP
    i := i + 1;
    v_name := s->>'name';
    IF jsonb_typeof(s) <> 'object' OR v_name IS NULL OR v_name !~ '^[A-Za-z_][A-Za-z0-9_.-]{0,62}$' THEN
      RAISE EXCEPTION 'walflow: pipeline "%": step % needs a name of letters, digits, _ . - (got %)', pipeline, i, coalesce((s->'name')::text, 'none')
        USING ERRCODE = '22023';
    END IF;
    IF v_name = ANY (v_names) THEN
      RAISE EXCEPTION 'walflow: pipeline "%": duplicate step name "%"', pipeline, v_name USING ERRCODE = '22023';
    END IF;
    v_names := v_names || v_name;
    IF s->>'kind' = 'sql' THEN
      IF version IS NULL THEN CONTINUE; END IF;
      v_fn := walflow.sql_step_function(pipeline, v_name, version);
      BEGIN
        EXECUTE format('CREATE OR REPLACE FUNCTION %s(ctx jsonb) RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS %L',
                       v_fn, walflow.compile_sql_step(s->>'statement'));
      EXCEPTION WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'walflow: role "%" may not create SQL steps: the operator grants USAGE, CREATE ON SCHEMA walflow_steps (README, "From SQL")', current_user
          USING ERRCODE = '42501';
      WHEN syntax_error THEN
        RAISE EXCEPTION 'walflow: pipeline "%": step "%": %', pipeline, v_name, SQLERRM USING ERRCODE = '42601';
      END;
      EXECUTE format('COMMENT ON FUNCTION %s(jsonb) IS %L', v_fn, pipeline);
      EXECUTE format('REVOKE ALL ON FUNCTION %s(jsonb) FROM PUBLIC', v_fn);
      SELECT nspowner::regrole::text INTO v_owner FROM pg_catalog.pg_namespace WHERE nspname = 'walflow';
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s(jsonb) TO %s', v_fn, v_owner);
    ELSIF s->>'kind' = 'http' THEN
      IF coalesce(s->>'url', '') !~ '^https?://' THEN
        RAISE EXCEPTION 'walflow: pipeline "%": step "%": url must be an http(s) URL (got %)', pipeline, v_name, coalesce((s->'url')::text, 'none')
          USING ERRCODE = '22023';
      END IF;
    ELSIF s->>'kind' = 'embed' THEN
      IF coalesce(btrim(s->>'text'), '') = '' THEN
        RAISE EXCEPTION 'walflow: pipeline "%": step "%": an embedding step needs the text to embed (e.g. '':input.row.body'')', pipeline, v_name
          USING ERRCODE = '22023';
      END IF;
      IF coalesce(s->>'embedder', 'local') NOT IN ('local', 'openai') THEN
        RAISE EXCEPTION 'walflow: pipeline "%": step "%": unknown embedder "%" (use ''local'' or ''openai'')', pipeline, v_name, s->>'embedder'
          USING ERRCODE = '22023';
      END IF;
      IF s->>'embedder' = 'openai' AND (coalesce(s->>'baseUrl', '') !~ '^https?://' OR s->>'model' IS NULL OR coalesce((s->>'dimensions')::integer, 0) <= 0) THEN
        RAISE EXCEPTION 'walflow: pipeline "%": step "%": an openai embedder needs base_url (http or https), model and dimensions', pipeline, v_name
          USING ERRCODE = '22023';
      END IF;
      IF s ? 'apiKeyEnv' AND s->>'apiKeyEnv' !~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN
        RAISE EXCEPTION 'walflow: pipeline "%": step "%": api_key_env must be the NAME of an environment variable holding the key, not the key itself', pipeline, v_name
          USING ERRCODE = '22023';
      END IF;
    ELSIF s ? 'sleep' OR s ? 'waitFor' THEN
      NULL; -- durable waits: the engine checks their durations when it loads the pipeline
    ELSE
      RAISE EXCEPTION 'walflow: pipeline "%": step % ("%") is not a step: build it with walflow.sql_step, walflow.http_step, walflow.embed_step, walflow.sleep_step or walflow.signal_step',
        pipeline, i, v_name USING ERRCODE = '22023';
    END IF;
  END LOOP;
  RETURN steps;
END;
$$;

-- walflow.save_pipeline(name, mode, kind, definition): the one writer of walflow.sql_pipelines, for
-- create_pipeline, alter_pipeline, create_embedding_pipeline and drop_pipeline (which check the
-- definition as the calling role first). mode: 'create' | 'alter' | 'drop' (definition: NULL, or
-- {"dropped_target": "schema.table"} after drop_pipeline dropped that target). Returns the new
-- version (0 for a drop). Records the caller (walflow.caller_role()) as the definer and wakes every
-- running walflow process (NOTIFY walflow_pipelines, delivered when the caller's transaction commits).
-- Runs as walflow's owner (the caller needs no table privileges); EXECUTE is the operator's grant.
CREATE OR REPLACE FUNCTION walflow.save_pipeline(name text, mode text, kind text DEFAULT NULL, definition jsonb DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_name text := name;
  v_role text := walflow.caller_role();
  v_version integer;
  v_kind text;
BEGIN
  IF v_name IS NULL OR v_name !~ '^[A-Za-z_][A-Za-z0-9_.-]{0,62}$' THEN
    RAISE EXCEPTION 'walflow: a pipeline needs a name of letters, digits, _ . - starting with a letter or _ (got %)', coalesce(to_jsonb(v_name)::text, 'NULL')
      USING ERRCODE = '22023';
  END IF;
  IF mode = 'create' THEN
    IF EXISTS (SELECT 1 FROM walflow.sql_pipelines p WHERE p.name = v_name) THEN
      RAISE EXCEPTION 'walflow: pipeline "%" already exists (change it with walflow.alter_pipeline, or drop it with walflow.drop_pipeline)', v_name
        USING ERRCODE = '42710';
    END IF;
    IF EXISTS (SELECT 1 FROM walflow.pipelines p WHERE p.name = v_name) THEN
      RAISE EXCEPTION 'walflow: pipeline "%" is defined by a pipeline file (a walflow process registered it): choose another name', v_name
        USING ERRCODE = '42710';
    END IF;
    INSERT INTO walflow.sql_pipelines (name, version, kind, definition, definer) VALUES (v_name, 1, save_pipeline.kind, save_pipeline.definition, v_role);
    v_version := 1;
  ELSIF mode = 'alter' THEN
    UPDATE walflow.sql_pipelines p SET version = p.version + 1, definition = save_pipeline.definition, definer = v_role, updated_at = now()
     WHERE p.name = v_name RETURNING p.version, p.kind INTO v_version, v_kind;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'walflow: no SQL-defined pipeline "%" (walflow.pipeline_status lists them)', v_name USING ERRCODE = '42704';
    END IF;
    IF v_kind <> save_pipeline.kind THEN
      RAISE EXCEPTION 'walflow: pipeline "%" is an % pipeline, not a % one', v_name, v_kind, save_pipeline.kind USING ERRCODE = '22023';
    END IF;
  ELSIF mode = 'drop' THEN
    DELETE FROM walflow.sql_pipelines p WHERE p.name = v_name;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'walflow: no SQL-defined pipeline "%" (walflow.pipeline_status lists them)', v_name USING ERRCODE = '42704';
    END IF;
    -- Its registration goes too (the name is free again); its runs stay, for inspection. A pipeline
    -- created again later under this name is new: it gets its initial backfill again.
    DELETE FROM walflow.pipelines p WHERE p.name = v_name;
    DELETE FROM walflow.pipeline_sources s WHERE s.pipeline = v_name;
    -- drop_pipeline(drop_target => true) dropped the target table in this transaction: walflow's
    -- record of it (dimensions, index, truncation fence) goes too, once the table is really gone,
    -- so a table created later under that name starts afresh.
    IF save_pipeline.definition ? 'dropped_target' THEN
      DELETE FROM walflow.embedding_targets t WHERE t.target = save_pipeline.definition->>'dropped_target'
         AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                          WHERE n.nspname || '.' || c.relname = t.target);
    END IF;
    v_version := 0;
  ELSE
    RAISE EXCEPTION 'walflow: save_pipeline mode must be create, alter or drop (got %)', mode USING ERRCODE = '22023';
  END IF;
  PERFORM pg_notify('walflow_pipelines', v_name);
  RETURN v_version;
END;
$$;
REVOKE ALL ON FUNCTION walflow.save_pipeline(text, text, text, jsonb) FROM PUBLIC;

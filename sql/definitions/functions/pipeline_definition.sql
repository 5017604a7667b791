-- walflow.pipeline_definition(name): a SQL-defined pipeline's current definition, with its kind,
-- version and definer ({"kind", "version", "definer", "definition"}); for alter_pipeline and
-- drop_pipeline, which run as the calling role. Definitions hold no secrets (API keys are named by
-- environment variable only). EXECUTE is the operator's grant.
CREATE OR REPLACE FUNCTION walflow.pipeline_definition(name text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v jsonb;
BEGIN
  SELECT jsonb_build_object('kind', p.kind, 'version', p.version, 'definer', p.definer, 'definition', p.definition) INTO v
    FROM walflow.sql_pipelines p WHERE p.name = pipeline_definition.name;
  IF v IS NULL THEN
    RAISE EXCEPTION 'walflow: no SQL-defined pipeline "%" (walflow.pipeline_status lists them)', pipeline_definition.name USING ERRCODE = '42704';
  END IF;
  RETURN v;
END;
$$;
REVOKE ALL ON FUNCTION walflow.pipeline_definition(text) FROM PUBLIC;

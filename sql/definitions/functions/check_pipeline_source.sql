-- walflow.check_pipeline_source(pipeline, source): a SQL-defined pipeline's source, checked as the
-- calling role (walflow.check_source_table) and returned with its table schema-qualified; NULL for none.
CREATE OR REPLACE FUNCTION walflow.check_pipeline_source(pipeline text, source jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_table text;
  v_bad text;
BEGIN
  IF source IS NULL OR source = 'null' THEN RETURN NULL; END IF;
  IF jsonb_typeof(source) <> 'object' THEN
    RAISE EXCEPTION 'walflow: pipeline "%": source must be a JSON object like {"table": "orders"}', pipeline USING ERRCODE = '22023';
  END IF;
  SELECT k INTO v_bad FROM jsonb_object_keys(source) k WHERE k NOT IN ('table', 'events', 'columns', 'key', 'backfill') LIMIT 1;
  IF v_bad IS NOT NULL THEN
    RAISE EXCEPTION 'walflow: pipeline "%": unknown source field "%" (use table, events, columns, key, backfill)', pipeline, v_bad USING ERRCODE = '22023';
  END IF;
  v_table := walflow.check_source_table(pipeline, source->>'table');
  SELECT e INTO v_bad FROM jsonb_array_elements_text(coalesce(source->'events', '[]')) e WHERE e NOT IN ('insert', 'update', 'delete', 'truncate') LIMIT 1;
  IF v_bad IS NOT NULL THEN
    RAISE EXCEPTION 'walflow: pipeline "%": unknown source event "%" (use insert, update, delete, truncate)', pipeline, v_bad USING ERRCODE = '22023';
  END IF;
  SELECT c INTO v_bad FROM jsonb_array_elements_text(coalesce(source->'columns', '[]') || coalesce(source->'key', '[]')) c
   WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = v_table::regclass AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped) LIMIT 1;
  IF v_bad IS NOT NULL THEN
    RAISE EXCEPTION 'walflow: pipeline "%": % has no column "%"', pipeline, v_table, v_bad USING ERRCODE = '42703';
  END IF;
  IF source ? 'backfill' AND NOT (source->'backfill' IN ('true', 'false', '"on-version-change"')) THEN
    RAISE EXCEPTION 'walflow: pipeline "%": source backfill must be true, false or "on-version-change"', pipeline USING ERRCODE = '22023';
  END IF;
  RETURN source || jsonb_build_object('table', v_table);
END;
$$;

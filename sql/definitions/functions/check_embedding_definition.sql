-- walflow.check_embedding_definition(pipeline, definition): an embedding pipeline's options (the
-- named arguments of walflow.create_embedding_pipeline, as JSON), checked at call time as the calling
-- role, with clear errors: the source table, its key and text column, the template's placeholders,
-- the embedder and its settings (an API key only by environment variable name), and an existing
-- target whose vector size contradicts the model. Returns them with the tables schema-qualified
-- (a new target without a schema goes in the source's).
CREATE OR REPLACE FUNCTION walflow.check_embedding_definition(pipeline text, definition jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
  d jsonb := jsonb_strip_nulls(definition);
  v_source text;
  v_target regclass;
  v_type text;
  v_bad text;
  v_dims integer;
  v_typmod integer;
  v_embedder text := coalesce(d->>'embedder', 'local');
  v_template text := d->>'template';
BEGIN
  SELECT k INTO v_bad FROM jsonb_object_keys(d) k WHERE k NOT IN ('source_table', 'text_column', 'target_table', 'template', 'template_columns',
    'chunk_size', 'chunk_overlap', 'separators', 'embedder', 'base_url', 'model', 'dimensions', 'api_key_env', 'index_min_rows', 'backfill', 'row_filter') LIMIT 1;
  IF v_bad IS NOT NULL THEN
    RAISE EXCEPTION 'walflow: pipeline "%": unknown option "%"', pipeline, v_bad USING ERRCODE = '22023';
  END IF;
  v_source := walflow.check_source_table(pipeline, d->>'source_table');
  IF d->>'text_column' IS NULL THEN
    RAISE EXCEPTION 'walflow: pipeline "%": text_column is required', pipeline USING ERRCODE = '22023';
  END IF;
  -- Every column named: the text column, template columns, and each {placeholder} but {chunk}.
  IF v_template IS NOT NULL AND v_template NOT LIKE '%{chunk}%' THEN
    RAISE EXCEPTION 'walflow: pipeline "%": template must contain {chunk} (e.g. ''{title}: {chunk}'')', pipeline USING ERRCODE = '22023';
  END IF;
  SELECT c INTO v_bad FROM (
    SELECT d->>'text_column' AS c
    UNION ALL SELECT jsonb_array_elements_text(coalesce(d->'template_columns', '[]'))
    UNION ALL SELECT m[1] FROM regexp_matches(replace(replace(coalesce(v_template, ''), '{{', ''), '}}', ''), '\{([^{}]*)\}', 'g') m WHERE m[1] <> 'chunk'
  ) x WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = v_source::regclass AND a.attname = x.c AND a.attnum > 0 AND NOT a.attisdropped)
  LIMIT 1;
  IF v_bad IS NOT NULL THEN
    RAISE EXCEPTION 'walflow: pipeline "%": % has no column "%" (columns: %)', pipeline, v_source, v_bad,
      (SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_catalog.pg_attribute WHERE attrelid = v_source::regclass AND attnum > 0 AND NOT attisdropped)
      USING ERRCODE = '42703';
  END IF;
  SELECT format_type(atttypid, atttypmod) INTO v_type FROM pg_catalog.pg_attribute WHERE attrelid = v_source::regclass AND attname = d->>'text_column';
  IF v_type !~ '^(text|character varying|character|citext|json|jsonb)' THEN
    RAISE EXCEPTION 'walflow: pipeline "%": text column "%" of % is %; the chunker needs text (text, varchar, json/jsonb)', pipeline, d->>'text_column', v_source, v_type
      USING ERRCODE = '22023';
  END IF;
  -- The embedder.
  IF v_embedder = 'local' THEN
    SELECT k INTO v_bad FROM unnest(ARRAY['base_url', 'model', 'api_key_env']) k WHERE d ? k LIMIT 1;
    IF v_bad IS NOT NULL THEN
      RAISE EXCEPTION 'walflow: pipeline "%": % is for embedder => ''openai''; the local model needs none', pipeline, v_bad USING ERRCODE = '22023';
    END IF;
    v_dims := 512;
    IF (d->>'dimensions')::int IS DISTINCT FROM NULL AND (d->>'dimensions')::int <> v_dims THEN
      RAISE EXCEPTION 'walflow: pipeline "%": the local model makes %-dim vectors, not %', pipeline, v_dims, d->>'dimensions' USING ERRCODE = '22023';
    END IF;
  ELSIF v_embedder = 'openai' THEN
    IF coalesce(d->>'base_url', '') !~ '^https?://' THEN
      RAISE EXCEPTION 'walflow: pipeline "%": embedder ''openai'' needs base_url, an http(s) URL (e.g. https://api.openai.com/v1)', pipeline USING ERRCODE = '22023';
    END IF;
    IF d->>'model' IS NULL OR (d->>'dimensions') IS NULL OR (d->>'dimensions')::int <= 0 THEN
      RAISE EXCEPTION 'walflow: pipeline "%": embedder ''openai'' needs model and dimensions (e.g. model => ''text-embedding-3-small'', dimensions => 1536)', pipeline
        USING ERRCODE = '22023';
    END IF;
    v_dims := (d->>'dimensions')::int;
    IF d ? 'api_key_env' AND (d->>'api_key_env' !~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$') THEN
      RAISE EXCEPTION 'walflow: pipeline "%": api_key_env takes the NAME of an environment variable of the walflow processes that holds the key (e.g. ''OPENAI_API_KEY''), never the key itself',
        pipeline USING ERRCODE = '22023';
    END IF;
  ELSE
    RAISE EXCEPTION 'walflow: pipeline "%": unknown embedder "%" (use ''local'' or ''openai'', an OpenAI-compatible API)', pipeline, v_embedder USING ERRCODE = '22023';
  END IF;
  IF (d ? 'chunk_size' AND (d->>'chunk_size')::int <= 0) OR (d ? 'chunk_overlap' AND (d->>'chunk_overlap')::int < 0) THEN
    RAISE EXCEPTION 'walflow: pipeline "%": chunk_size must be positive and chunk_overlap not negative', pipeline USING ERRCODE = '22023';
  END IF;
  -- The target: not the source; an existing one must hold vectors of this size and be writable by the caller.
  IF d->>'target_table' IS NULL THEN
    RAISE EXCEPTION 'walflow: pipeline "%": target_table is required', pipeline USING ERRCODE = '22023';
  END IF;
  v_target := pg_catalog.to_regclass(d->>'target_table');
  IF v_target = v_source::regclass THEN
    RAISE EXCEPTION 'walflow: pipeline "%": the target table cannot be the source table', pipeline USING ERRCODE = '22023';
  END IF;
  IF v_target IS NOT NULL THEN
    SELECT atttypmod INTO v_typmod FROM pg_catalog.pg_attribute WHERE attrelid = v_target AND attname = 'embedding' AND NOT attisdropped;
    IF v_typmod IS NULL THEN
      RAISE EXCEPTION 'walflow: pipeline "%": target % exists and is not an embeddings table (no column "embedding"): choose another target_table', pipeline, v_target
        USING ERRCODE = '22023';
    END IF;
    IF v_typmod <> v_dims THEN
      RAISE EXCEPTION 'walflow: pipeline "%": target % holds %-dim vectors but the model makes %: choose another target_table, or drop that one to re-embed',
        pipeline, v_target, v_typmod, v_dims USING ERRCODE = '22023';
    END IF;
    IF NOT pg_catalog.has_table_privilege(v_target, 'INSERT, DELETE') THEN
      RAISE EXCEPTION 'walflow: pipeline "%": role "%" may not write %', pipeline, current_user, v_target USING ERRCODE = '42501';
    END IF;
  END IF;
  -- Stored schema-qualified, so every process writes the table checked here: an existing one as
  -- found on the caller's search path; a new one in the source's schema unless the name has one.
  RETURN d || jsonb_build_object('source_table', v_source, 'embedder', v_embedder, 'target_table',
    CASE WHEN v_target IS NOT NULL THEN (SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_catalog.pg_class c
                                          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = v_target)
         WHEN position('.' IN d->>'target_table') > 0 THEN d->>'target_table'
         WHEN left(d->>'target_table', 1) = '"' THEN split_part(v_source, '.', 1) || '.' || (d->>'target_table')
         ELSE split_part(v_source, '.', 1) || '.' || quote_ident(lower(d->>'target_table')) END);
END;
$$;

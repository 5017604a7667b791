-- walflow.create_embedding_pipeline(name, source_table, text_column, target_table, …): a vectorizer
-- in one call: the flagship chunk → embed → upsert pipeline (src/steps/embedding/pipeline.ts) with
-- these options. row_filter: a SQL boolean expression over the source row's columns
-- ('status = ''published'''): only rows it accepts are embedded (a row that stops matching loses its
-- chunks); it runs with the caller's privileges (walflow.define_row_filter). Every running `walflow run` picks it up within about a second, embeds every
-- existing row (the initial backfill, unless backfill => false) and then follows every change.
--   SELECT walflow.create_embedding_pipeline('notes-embed', 'public.notes', 'body', 'notes_embeddings');
-- Defaults are the TypeScript pipeline's: the offline local model, its chunking. Checked at call
-- time (walflow.check_embedding_definition). Returns the version (1). Runs as the caller; EXECUTE
-- is the operator's grant (README, "From SQL").
CREATE OR REPLACE FUNCTION walflow.create_embedding_pipeline(
  name text, source_table text, text_column text, target_table text,
  template text DEFAULT NULL, template_columns text[] DEFAULT NULL,
  chunk_size integer DEFAULT NULL, chunk_overlap integer DEFAULT NULL, separators text[] DEFAULT NULL,
  embedder text DEFAULT 'local', base_url text DEFAULT NULL, model text DEFAULT NULL, dimensions integer DEFAULT NULL,
  api_key_env text DEFAULT NULL, index_min_rows integer DEFAULT NULL, backfill boolean DEFAULT true, row_filter text DEFAULT NULL
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  v_def jsonb;
  v_version integer;
BEGIN
  v_def := walflow.check_embedding_definition(name, jsonb_build_object(
    'source_table', source_table, 'text_column', text_column, 'target_table', target_table,
    'template', template, 'template_columns', to_jsonb(template_columns),
    'chunk_size', chunk_size, 'chunk_overlap', chunk_overlap, 'separators', to_jsonb(separators),
    'embedder', embedder, 'base_url', base_url, 'model', model, 'dimensions', dimensions,
    'api_key_env', api_key_env, 'index_min_rows', index_min_rows, 'backfill', backfill, 'row_filter', row_filter));
  v_version := walflow.save_pipeline(name, 'create', 'embedding', v_def);
  IF v_def ? 'row_filter' THEN
    PERFORM walflow.define_row_filter(name, v_version, v_def->>'source_table', v_def->>'row_filter');
  END IF;
  RETURN v_version;
END;
$$;
REVOKE ALL ON FUNCTION walflow.create_embedding_pipeline(text, text, text, text, text, text[], integer, integer, text[], text, text, text, integer, text, integer, boolean, text) FROM PUBLIC;

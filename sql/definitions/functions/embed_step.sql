-- walflow.embed_step(name, text, embedder, base_url, model, dimensions, api_key_env): an embedding
-- step for walflow.create_pipeline: embeds `text` (with :placeholders, e.g. ':input.row.body' or
-- 'Title: :input.row.title') and outputs {embedding, model, dimensions}; a later SQL step stores it
-- (':prev.embedding::vector'). embedder 'local' (the offline model, the default) or 'openai' (an
-- OpenAI-compatible endpoint: base_url, model, dimensions, and the NAME of the environment variable
-- holding the key, never the key). A pure builder of the step's JSON: anyone may call it; checked
-- by create_pipeline.
CREATE OR REPLACE FUNCTION walflow.embed_step(name text, text text, embedder text DEFAULT 'local', base_url text DEFAULT NULL,
                                              model text DEFAULT NULL, dimensions integer DEFAULT NULL, api_key_env text DEFAULT NULL) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object('kind', 'embed', 'name', name, 'text', text, 'embedder', embedder,
                                              'baseUrl', base_url, 'model', model, 'dimensions', dimensions, 'apiKeyEnv', api_key_env))
$$;

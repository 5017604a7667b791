-- Embedding targets kept by embedding pipelines: their vector size, when their HNSW index was
-- built, and the WAL position of the last TRUNCATE of their source (versions read before it never
-- write again).
CREATE TABLE walflow.embedding_targets (
  target         text PRIMARY KEY,
  dimensions     integer NOT NULL,
  truncated_at   pg_lsn,
  index_built_at timestamptz,
  created_at     timestamptz NOT NULL DEFAULT now()
);

-- Backfills: start a run for every existing row of a pipeline's source, in keyset-paginated
-- batches. Progress commits with each batch's run starts, so a crashed backfill resumes exactly
-- where it stopped (and dedupe ids make a replayed batch start nothing twice).
CREATE TABLE walflow.backfills (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  pipeline    text NOT NULL,
  source      text NOT NULL,
  key_columns text[] NOT NULL,
  last_key    jsonb,
  total       bigint NOT NULL,
  done        bigint NOT NULL DEFAULT 0,
  started_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE UNIQUE INDEX backfills_one_active ON walflow.backfills (pipeline) WHERE finished_at IS NULL;

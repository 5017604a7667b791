-- Pipelines that change while walflow runs (live reload) and their automatic initial backfill.

-- Every (pipeline, source table) pair the replication leader has published, with the version it
-- last saw: a pair seen for the first time gets an automatic backfill (unless the pipeline opts
-- out), and so does a new version of a pipeline that asks for it (source.backfill: 'on-version-change').
CREATE TABLE walflow.pipeline_sources (
  pipeline      text NOT NULL,
  source        text NOT NULL,
  version       text NOT NULL,
  first_seen_at timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (pipeline, source)
);

-- Pipelines registered before this migration were already streaming: they are not new, and must
-- not be backfilled again on upgrade. (A bare table name means schema public, as in source.table.)
INSERT INTO walflow.pipeline_sources (pipeline, source, version)
SELECT name,
       CASE WHEN source->>'table' LIKE '%.%' THEN source->>'table' ELSE 'public.' || lower(source->>'table') END,
       version
  FROM walflow.pipelines
 WHERE source IS NOT NULL AND source->>'table' IS NOT NULL
ON CONFLICT DO NOTHING;

-- Automatic backfills are driven (and resumed after a crash) by the replication leader; manual
-- ones (`walflow backfill`) by the command that started them.
ALTER TABLE walflow.backfills
  ADD COLUMN automatic boolean NOT NULL DEFAULT false,
  ADD COLUMN version   text;

-- Pipeline files a running `walflow run` could not (re)load, so that `walflow status` in another
-- process shows them. Each process replaces its own rows on every reload and deletes them on stop.
CREATE TABLE walflow.pipeline_load_errors (
  owner     text NOT NULL,
  file      text NOT NULL,
  message   text NOT NULL,
  failed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (owner, file)
);

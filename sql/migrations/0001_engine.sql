-- walflow:amends c37526eaaed1cba6
-- The durable engine's tables: pipelines, runs, step checkpoints, failed attempts, step slots.
-- Every durable state lives in schema walflow. Functions and views are not here: each has one file
-- under sql/definitions (this migration once held their first versions).

-- Pipelines known to the workers. Workers register theirs at startup; walflow.start() refuses names
-- that are not here, so a typo fails at the call site instead of queueing a run nobody executes.
CREATE TABLE walflow.pipelines (
  name          text PRIMARY KEY,
  version       text NOT NULL,
  steps         text[] NOT NULL,
  source        jsonb,
  registered_at timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE walflow.runs (
  id               uuid PRIMARY KEY, -- default: walflow.uuid_v7() (sql/definitions/defaults/runs.sql)
  -- Start order; "older" and "newer" for a key always mean seq order.
  seq              bigint GENERATED ALWAYS AS IDENTITY,
  pipeline         text NOT NULL,
  pipeline_version text,
  key              text,
  status           text NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'running', 'waiting', 'completed', 'failed', 'cancelled', 'superseded')),
  input            jsonb NOT NULL,
  -- The step the run was at when last claimed, failed or completed (while it runs, its progress is
  -- the checkpoints in walflow.steps; writing it per step would double the write load).
  step_index       integer NOT NULL DEFAULT 0,
  -- Attempts of the step at step_index (a crash of the worker counts as an attempt).
  attempt          integer NOT NULL DEFAULT 0,
  run_at           timestamptz NOT NULL DEFAULT now(),
  lease_owner      text,
  lease_expires_at timestamptz,
  error            jsonb,
  dedupe_id        text,
  source_lsn       pg_lsn,
  source_index     integer,
  created_at       timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  updated_at       timestamptz NOT NULL DEFAULT now(),
  finished_at      timestamptz
) WITH (fillfactor = 80); -- room on the page for a run's next versions (lease renewals stay HOT)

-- Claiming, one pipeline at a time: only runnable rows are indexed (millions of finished runs cost
-- nothing), in claim order, so a claim reads just the rows it takes.
CREATE INDEX runs_runnable ON walflow.runs (pipeline, run_at, seq) WHERE status IN ('queued', 'waiting');
-- Per-key serialization and supersede: the unfinished runs of a key, in start order. Key first: it
-- is the selective column, and an index that cannot be entered without it keeps plans honest
-- while table statistics are stale (a fresh table taking a burst of starts).
CREATE INDEX runs_active_key ON walflow.runs (key, pipeline, seq) WHERE status IN ('queued', 'waiting', 'running');
-- Lease recovery scans only running rows.
CREATE INDEX runs_running ON walflow.runs (lease_owner) WHERE status = 'running';
-- Idempotent starts.
CREATE UNIQUE INDEX runs_dedupe ON walflow.runs (pipeline, dedupe_id) WHERE dedupe_id IS NOT NULL;
-- Pruning and operator listings.
CREATE INDEX runs_finished ON walflow.runs (finished_at) WHERE status IN ('completed', 'superseded', 'cancelled');
CREATE INDEX runs_failed ON walflow.runs (pipeline, seq) WHERE status = 'failed';

-- One row per (run, step): the checkpoint, written once and never changed. Its primary key is the
-- fence: if two workers ever execute the same step (a lease expired under a slow worker), the
-- second checkpoint conflicts, its transaction (with its ctx.tx writes) commits nothing, and that
-- worker continues from the winner's output. No foreign key to runs: its per-insert KEY SHARE lock
-- on the run row costs more than it protects (pruning deletes both).
CREATE TABLE walflow.steps (
  run_id      uuid NOT NULL,
  step_index  integer NOT NULL,
  step        text NOT NULL,
  output      jsonb,
  attempts    integer NOT NULL,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  PRIMARY KEY (run_id, step_index)
);

-- Every failed attempt, for the timeline and post-mortems.
CREATE TABLE walflow.step_errors (
  run_id     uuid NOT NULL,
  step_index integer NOT NULL,
  step       text NOT NULL,
  attempt    integer NOT NULL,
  error      jsonb NOT NULL,
  started_at timestamptz NOT NULL,
  failed_at  timestamptz NOT NULL DEFAULT now(),
  retry_at   timestamptz,
  PRIMARY KEY (run_id, step_index, attempt)
);

-- Cross-process concurrency limits: a step with `concurrency: n` has n slot rows; executing it
-- means holding one, under a lease like a run's, so a crashed holder frees its slot when it expires.
CREATE TABLE walflow.step_slots (
  pipeline   text NOT NULL,
  step       text NOT NULL,
  slot       integer NOT NULL,
  owner      text,
  expires_at timestamptz,
  PRIMARY KEY (pipeline, step, slot)
);

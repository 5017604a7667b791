-- walflow durable engine: pipelines, runs, step checkpoints, and the SQL API to start and steer runs.
-- Every durable state lives in schema walflow.

-- Time-ordered UUIDs (v7 layout) keep the runs primary key index append-mostly.
CREATE FUNCTION walflow.uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      52, 1), 53, 1), 'hex')::uuid
$$;

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
  id               uuid PRIMARY KEY DEFAULT walflow.uuid_v7(),
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
) WITH (fillfactor = 80); -- room for HOT updates of per-step progress

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

-- Starts a batch of runs for one pipeline. items: [{"input": {...}, "key": "...", "dedupe_id": "...",
-- "source_lsn": "0/16B3748", "source_index": 0}, ...]. Idempotent on dedupe_id; a newer start for a
-- key whose run has not begun supersedes it. Works inside the caller's transaction.
CREATE FUNCTION walflow.start_batch(p_pipeline text, p_items jsonb)
RETURNS TABLE (run_id uuid, ordinal integer, created boolean)
LANGUAGE plpgsql AS $$
DECLARE
  v_version  text;
  v_keys     text[];
  v_dedupes  text[];
  v_key      text;
BEGIN
  SELECT version INTO v_version FROM walflow.pipelines WHERE name = p_pipeline;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'walflow: unknown pipeline "%"', p_pipeline
      USING ERRCODE = 'WF001', HINT = 'Pipelines are registered when a walflow worker that loads them starts; see SELECT name FROM walflow.pipelines.';
  END IF;
  IF p_items IS NULL OR jsonb_typeof(p_items) <> 'array' THEN
    RAISE EXCEPTION 'walflow: items must be a JSON array of objects' USING ERRCODE = 'WF002';
  END IF;

  IF EXISTS (SELECT 1 FROM jsonb_array_elements(p_items) e
             WHERE jsonb_typeof(e) <> 'object' OR NOT e ? 'input' OR jsonb_typeof(e->'input') = 'null') THEN
    RAISE EXCEPTION 'walflow: every item needs an "input" (a JSON value, not null)' USING ERRCODE = 'WF002';
  END IF;

  -- Keys that may have an older run to supersede: repeated in this batch, or with an unfinished run
  -- already. Usually none, so the common path costs one index probe per key. (Scalar subqueries and
  -- per-key statements keep every lookup an index probe, whatever the table statistics say.)
  SELECT coalesce(array_agg(x.k), '{}') INTO v_keys
    FROM (SELECT e->>'key' AS k, count(*) AS n FROM jsonb_array_elements(p_items) e WHERE e ? 'key' GROUP BY 1) x
   WHERE x.n > 1 OR (SELECT 1 FROM walflow.runs o
                      WHERE o.key = x.k AND o.pipeline = p_pipeline AND o.status IN ('queued', 'waiting', 'running')
                      LIMIT 1) IS NOT NULL;
  SELECT coalesce(array_agg(e->>'dedupe_id') FILTER (WHERE e ? 'dedupe_id'), '{}') INTO v_dedupes
    FROM jsonb_array_elements(p_items) e;

  -- Ids are drawn up front so that inserted rows can be matched back to their items. Lookups go
  -- through = ANY(array) so that the plan is an index scan whatever the table statistics say.
  RETURN QUERY
  WITH items AS MATERIALIZED (
    SELECT walflow.uuid_v7() AS new_id, (i.ordinality - 1)::integer AS ord, i.value AS item
    FROM jsonb_array_elements(p_items) WITH ORDINALITY AS i
  ), existing AS MATERIALIZED (
    SELECT r.id, r.dedupe_id FROM walflow.runs r
    WHERE cardinality(v_dedupes) > 0 AND r.pipeline = p_pipeline AND r.dedupe_id = ANY(v_dedupes)
  ), inserted AS (
    INSERT INTO walflow.runs AS r (id, pipeline, pipeline_version, key, input, dedupe_id, source_lsn, source_index)
    SELECT it.new_id, p_pipeline, v_version, it.item->>'key', it.item->'input', it.item->>'dedupe_id',
           (it.item->>'source_lsn')::pg_lsn, (it.item->>'source_index')::integer
    FROM items it ORDER BY it.ord
    ON CONFLICT (pipeline, dedupe_id) WHERE dedupe_id IS NOT NULL DO NOTHING
    RETURNING r.id
  )
  SELECT it.new_id, it.ord, true FROM items it JOIN inserted ins ON ins.id = it.new_id
  UNION ALL
  -- Replayed starts: the run that already holds this dedupe id.
  SELECT ex.id, it.ord, false
  FROM items it JOIN existing ex ON ex.dedupe_id = it.item->>'dedupe_id';

  -- Latest wins: queued runs of these keys that never started are superseded by the newest one.
  FOREACH v_key IN ARRAY v_keys LOOP
    UPDATE walflow.runs o
       SET status = 'superseded', finished_at = now(), updated_at = now()
     WHERE o.key = v_key AND o.pipeline = p_pipeline
       AND o.status = 'queued' AND o.started_at IS NULL
       AND o.seq < (SELECT max(n.seq) FROM walflow.runs n
                     WHERE n.key = v_key AND n.pipeline = p_pipeline AND n.status IN ('queued', 'waiting', 'running'));
  END LOOP;

  PERFORM pg_notify('walflow_runs', p_pipeline);
END;
$$;

-- The single-run form, for SQL callers: SELECT walflow.start('pipeline', '{"id": 1}', 'key-1');
CREATE FUNCTION walflow.start(pipeline text, input jsonb, key text DEFAULT NULL, dedupe_id text DEFAULT NULL)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
  v_id uuid;
BEGIN
  IF input IS NULL THEN
    RAISE EXCEPTION 'walflow: input must not be NULL (use ''{}''::jsonb for no input)' USING ERRCODE = 'WF002';
  END IF;
  SELECT b.run_id INTO v_id
  FROM walflow.start_batch(pipeline, jsonb_build_array(jsonb_strip_nulls(jsonb_build_object('input', input, 'key', key, 'dedupe_id', dedupe_id)))) b
  LIMIT 1;
  RETURN v_id;
END;
$$;

CREATE FUNCTION walflow.status(run uuid) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT status FROM walflow.runs WHERE id = run
$$;

-- The output of the last step of a completed run; NULL while it is not completed.
CREATE FUNCTION walflow.result(run uuid) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT (SELECT s.output FROM walflow.steps s WHERE s.run_id = r.id ORDER BY s.step_index DESC LIMIT 1)
  FROM walflow.runs r
  WHERE r.id = run AND r.status = 'completed'
$$;

-- Cancels a run that has not finished. A running step is not interrupted mid-call: its worker
-- notices at its next checkpoint or lease renewal, aborts the step's signal, and commits nothing.
CREATE FUNCTION walflow.cancel(run uuid) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  UPDATE walflow.runs SET status = 'cancelled', finished_at = now(), updated_at = now(), lease_owner = NULL, lease_expires_at = NULL
   WHERE id = run AND status IN ('queued', 'waiting', 'running');
  IF FOUND THEN RETURN true; END IF;
  IF NOT EXISTS (SELECT 1 FROM walflow.runs WHERE id = run) THEN
    RAISE EXCEPTION 'walflow: no run %', run USING ERRCODE = 'WF003';
  END IF;
  RETURN false;
END;
$$;

-- Re-runs a failed (or cancelled) run from the step that did not complete; earlier checkpoints stay.
CREATE FUNCTION walflow.retry(run uuid) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  v_pipeline text;
BEGIN
  UPDATE walflow.runs SET status = 'queued', attempt = 0, run_at = now(), error = NULL, finished_at = NULL, updated_at = now()
   WHERE id = run AND status IN ('failed', 'cancelled')
  RETURNING pipeline INTO v_pipeline;
  IF FOUND THEN
    PERFORM pg_notify('walflow_runs', v_pipeline);
    RETURN true;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM walflow.runs WHERE id = run) THEN
    RAISE EXCEPTION 'walflow: no run %', run USING ERRCODE = 'WF003';
  END IF;
  RETURN false;
END;
$$;

-- Operators: each run's steps in order: completed checkpoints and failed attempts, with errors.
CREATE VIEW walflow.run_timeline AS
SELECT r.id AS run_id, r.pipeline, r.key, r.status AS run_status,
       t.step_index, t.step, t.outcome, t.attempt, t.started_at, t.finished_at,
       round(extract(epoch FROM t.finished_at - t.started_at) * 1000, 3) AS duration_ms,
       t.error, t.retry_at
FROM walflow.runs r
JOIN (
  SELECT run_id, step_index, step, 'completed' AS outcome, attempts AS attempt, started_at, finished_at, NULL::jsonb AS error, NULL::timestamptz AS retry_at
    FROM walflow.steps
  UNION ALL
  SELECT run_id, step_index, step, 'failed', attempt, started_at, failed_at, error, retry_at
    FROM walflow.step_errors
) t ON t.run_id = r.id;

-- Operator surface in SQL: the same answers as `walflow status` / `walflow runs`, for psql and
-- Grafana's Postgres data source.

-- Each walflow process heartbeats here, so operators can see who is alive and what it holds.
CREATE TABLE walflow.workers (
  owner        text PRIMARY KEY,
  host         text NOT NULL,
  pid          integer NOT NULL,
  pipelines    text[] NOT NULL,
  in_flight    integer NOT NULL DEFAULT 0,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- Per pipeline. Every count is answered from a partial index, so this stays cheap with millions of
-- finished runs.
CREATE VIEW walflow.status AS
SELECT p.name AS pipeline,
       p.version,
       (SELECT count(*) FROM walflow.runs r WHERE r.pipeline = p.name AND r.status = 'queued')  AS queued,
       (SELECT count(*) FROM walflow.runs r WHERE r.pipeline = p.name AND r.status = 'running') AS running,
       (SELECT count(*) FROM walflow.runs r WHERE r.pipeline = p.name AND r.status = 'waiting') AS waiting,
       (SELECT count(*) FROM walflow.runs r WHERE r.pipeline = p.name AND r.status = 'failed')  AS failed,
       (SELECT count(*) FROM walflow.runs r
         WHERE r.status = 'completed' AND r.finished_at > now() - interval '1 hour' AND r.pipeline = p.name) AS completed_1h,
       (SELECT round(count(*) / 60.0, 2) FROM walflow.runs r
         WHERE r.status = 'completed' AND r.finished_at > now() - interval '1 minute' AND r.pipeline = p.name) AS completed_per_s_1m,
       (SELECT now() - min(r.run_at) FROM walflow.runs r WHERE r.pipeline = p.name AND r.status = 'queued') AS oldest_queued_age
FROM walflow.pipelines p;

-- Live processes (heartbeat within 3 intervals) and stale ones, for `walflow status`.
CREATE VIEW walflow.worker_health AS
SELECT owner, host, pid, pipelines, in_flight, started_at, heartbeat_at,
       CASE WHEN heartbeat_at > now() - interval '30 seconds' THEN 'alive' ELSE 'stale' END AS health
FROM walflow.workers;

-- Keyset pagination over runs, newest first: pass the last id of a page as p_before for the next.
CREATE FUNCTION walflow.list_runs(
  p_pipeline text DEFAULT NULL, p_status text DEFAULT NULL, p_key text DEFAULT NULL,
  p_before uuid DEFAULT NULL, p_limit integer DEFAULT 50)
RETURNS TABLE (id uuid, pipeline text, key text, status text, step_index integer, attempt integer,
               created_at timestamptz, finished_at timestamptz, error_message text)
LANGUAGE sql STABLE AS $$
  SELECT r.id, r.pipeline, r.key, r.status, r.step_index, r.attempt, r.created_at, r.finished_at, r.error->>'message'
  FROM walflow.runs r
  WHERE (p_pipeline IS NULL OR r.pipeline = p_pipeline)
    AND (p_status IS NULL OR r.status = p_status)
    AND (p_key IS NULL OR r.key = p_key)
    AND (p_before IS NULL OR r.id < p_before)
  ORDER BY r.id DESC
  LIMIT least(greatest(p_limit, 1), 10000)
$$;

-- Re-queues every failed run of a pipeline (each resumes at its failed step). Returns how many.
CREATE FUNCTION walflow.retry_failed(p_pipeline text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM walflow.pipelines WHERE name = p_pipeline) THEN
    RAISE EXCEPTION 'walflow: unknown pipeline "%"', p_pipeline USING ERRCODE = 'WF001';
  END IF;
  UPDATE walflow.runs SET status = 'queued', attempt = 0, run_at = now(), error = NULL, finished_at = NULL, updated_at = now()
   WHERE pipeline = p_pipeline AND status = 'failed';
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n > 0 THEN PERFORM pg_notify('walflow_runs', p_pipeline); END IF;
  RETURN n;
END;
$$;

-- Replication at a glance, for `walflow status`: each slot walflow consumes, how far behind it is
-- in bytes and in time, and whether its leader is alive. lag_seconds is the walsender's flush_lag
-- (how long ago the WAL walflow last confirmed was written); NULL while no process streams the
-- slot, and once it has caught up and the server has been idle for a while. leader_health:
-- 'alive' (streaming, heartbeat within 3 intervals), 'stale' (a leader was recorded but nothing
-- streams the slot or its heartbeat stopped), 'none' (no leader yet).
CREATE VIEW walflow.replication_status AS
SELECT l.slot_name,
       l.publication,
       coalesce(l.active, false) AS active,
       l.lag_bytes::bigint AS lag_bytes,
       extract(epoch FROM r.flush_lag)::float8 AS lag_seconds,
       l.leader_id,
       l.leader_heartbeat_at,
       CASE WHEN l.leader_id IS NULL THEN 'none'
            WHEN l.active AND l.leader_heartbeat_at > now() - interval '30 seconds' THEN 'alive'
            ELSE 'stale' END AS leader_health,
       l.wal_status,
       l.confirmed_flush_lsn,
       l.durable_lsn
FROM walflow.replication_lag l
LEFT JOIN pg_stat_replication r ON r.pid = l.active_pid;

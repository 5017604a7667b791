-- walflow.worker_health: live processes (heartbeat within 3 intervals) and stale ones, for `walflow status`.
CREATE OR REPLACE VIEW walflow.worker_health AS
SELECT owner, host, pid, pipelines, in_flight, started_at, heartbeat_at,
       CASE WHEN heartbeat_at > now() - interval '30 seconds' THEN 'alive' ELSE 'stale' END AS health
FROM walflow.workers;

-- walflow.worker_health: a process is alive while it heartbeats (every 10 s); after three missed heartbeats it is dead,
-- and what it had in flight is no longer claimed as current (its runs come back when their leases
-- expire). Engine maintenance deletes dead processes' rows an hour after their last heartbeat.
CREATE OR REPLACE VIEW walflow.worker_health AS
SELECT owner, host, pid, pipelines,
       CASE WHEN heartbeat_at > now() - interval '30 seconds' THEN in_flight END AS in_flight,
       started_at, heartbeat_at,
       CASE WHEN heartbeat_at > now() - interval '30 seconds' THEN 'alive' ELSE 'dead' END AS health
FROM walflow.workers;

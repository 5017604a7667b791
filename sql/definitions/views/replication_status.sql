-- walflow.replication_status: replication at a glance, for `walflow status`: each slot walflow consumes, how far behind it is
-- in bytes and in time, and whether its leader is alive. lag_seconds is the walsender's flush_lag
-- (how long ago the WAL walflow last confirmed was written); NULL while no process streams the
-- slot, and once it has caught up and the server has been idle for a while. leader_health:
-- 'alive' (streaming, heartbeat within 3 intervals), 'stale' (a leader was recorded but nothing
-- streams the slot or its heartbeat stopped), 'none' (no leader yet).
-- Only slots the server still has: walflow's state row of a dropped slot is no replication.
-- (walflow.replication_lag keeps showing it, with NULL active, for whoever looks for such rows.)
CREATE OR REPLACE VIEW walflow.replication_status AS
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
LEFT JOIN pg_stat_replication r ON r.pid = l.active_pid
WHERE l.active IS NOT NULL;

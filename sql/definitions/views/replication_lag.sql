-- walflow.replication_lag: how far each slot is behind the server's WAL, in bytes, and who consumes it.
-- A slot row with NULL active means walflow's state names a slot the server no longer has.
CREATE OR REPLACE VIEW walflow.replication_lag AS
SELECT st.slot_name,
       st.publication,
       s.active,
       s.active_pid,
       CASE WHEN s.confirmed_flush_lsn IS NULL THEN NULL
            ELSE pg_current_wal_lsn() - s.confirmed_flush_lsn END AS lag_bytes,
       pg_current_wal_lsn() - st.durable_lsn AS durable_lag_bytes,
       s.confirmed_flush_lsn,
       st.durable_lsn,
       s.wal_status,
       st.leader_id,
       st.leader_heartbeat_at,
       st.updated_at
FROM walflow.replication_state st
LEFT JOIN pg_replication_slots s ON s.slot_name = st.slot_name;

// walflow.replication_state: the durable position of a slot and who consumes it.
import type { Queryable as Db } from '../../db/queryable.js';


/** Creates the slot's row (starting at the slot's own position) and returns the durable position. */
export async function loadDurableLsn(db: Db, slotName: string, publication: string, slotLsn: string): Promise<string> {
  const { rows } = await db.query<{ durable_lsn: string }>(
    `INSERT INTO walflow.replication_state (slot_name, publication, durable_lsn, confirmed_lsn)
     VALUES ($1, $2, $3::pg_lsn, $3::pg_lsn)
     ON CONFLICT (slot_name) DO UPDATE SET publication = EXCLUDED.publication, updated_at = now()
     RETURNING durable_lsn::text`,
    [slotName, publication, slotLsn],
  );
  return rows[0]!.durable_lsn;
}

export async function markLeader(db: Db, slotName: string, leaderId: string): Promise<void> {
  await db.query(
    `UPDATE walflow.replication_state SET leader_id = $2, leader_since = now(), leader_heartbeat_at = now(), updated_at = now()
      WHERE slot_name = $1`,
    [slotName, leaderId],
  );
}

/** The leader's liveness and the last position acknowledged; returns the slot's lag in bytes. */
export async function beat(db: Db, slotName: string, leaderId: string, confirmedLsn: string): Promise<number | null> {
  const { rows } = await db.query<{ lag: string | null }>(
    `WITH u AS (
       UPDATE walflow.replication_state SET leader_heartbeat_at = now(), confirmed_lsn = GREATEST(confirmed_lsn, $3::pg_lsn)
        WHERE slot_name = $1 AND leader_id = $2)
     SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::text AS lag FROM pg_replication_slots WHERE slot_name = $1`,
    [slotName, leaderId, confirmedLsn],
  );
  return rows[0]?.lag == null ? null : Number(rows[0].lag);
}

/** Records the durable position: every run start up to it has committed (see DurableRecorder). */
export async function recordDurableLsn(db: Db, slotName: string, lsn: string): Promise<void> {
  await db.query(`UPDATE walflow.replication_state SET durable_lsn = GREATEST(durable_lsn, $2::pg_lsn), updated_at = now() WHERE slot_name = $1`, [slotName, lsn]);
}

/** A leader stopping cleanly says so: operators then see no leader rather than a stale one. */
export async function clearLeader(db: Db, slotName: string, leaderId: string): Promise<void> {
  await db.query(`UPDATE walflow.replication_state SET leader_id = NULL, leader_heartbeat_at = NULL, updated_at = now() WHERE slot_name = $1 AND leader_id = $2`, [slotName, leaderId]);
}

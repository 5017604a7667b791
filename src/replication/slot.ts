// The pgoutput slot: created when missing (it then starts at the current WAL position), checked to
// be logical, pgoutput and of this database when it exists.
import type pg from 'pg';
import { UserError } from '../errors.js';

type Db = Pick<pg.ClientBase, 'query'>;

export interface SlotInfo {
  created: boolean;
  confirmedFlushLsn: string;
}

export async function ensureSlot(db: Db, slotName: string): Promise<SlotInfo> {
  const read = () =>
    db.query<{ plugin: string; slot_type: string; db: boolean; lsn: string | null }>(
      `SELECT plugin, slot_type, database = current_database() AS db, confirmed_flush_lsn::text AS lsn
         FROM pg_replication_slots WHERE slot_name = $1`,
      [slotName],
    );
  let { rows } = await read();
  let created = false;
  if (rows.length === 0) {
    try {
      await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slotName]);
      created = true;
    } catch (err) {
      if ((err as { code?: string }).code !== '42710') throw err; // created concurrently
    }
    ({ rows } = await read());
  }
  const s = rows[0];
  if (!s) throw new Error(`replication slot "${slotName}" vanished right after it was created`);
  if (s.slot_type !== 'logical' || s.plugin !== 'pgoutput' || !s.db) {
    const what = s.slot_type === 'logical' && s.plugin === 'pgoutput' ? 'belongs to another database of this server (slot names are server-wide)' : `is not a pgoutput logical slot (type ${s.slot_type}, plugin ${s.plugin})`;
    throw new UserError(`replication slot "${slotName}" ${what}: set another slot name (WALFLOW_SLOT_NAME), or drop it with SELECT pg_drop_replication_slot('${slotName.replace(/'/g, "''")}')`);
  }
  return { created, confirmedFlushLsn: s.lsn ?? '0/0' };
}

/** Drops the slot (terminating its consumer if one is attached); true if it existed. */
export async function dropSlot(db: Db, slotName: string): Promise<boolean> {
  await db.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, [slotName]);
  for (let i = 0; i < 50; i++) {
    try {
      const { rows } = await db.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, [slotName]);
      return rows.length > 0;
    } catch (err) {
      if ((err as { code?: string }).code !== '55006') throw err; // still active: the walsender is exiting
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`replication slot "${slotName}" stayed active; could not drop it`);
}

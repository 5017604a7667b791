// The pgoutput slot: created when missing (it then starts at the current WAL position), checked to
// be logical, pgoutput and of this database when it exists.
import type { Queryable as Db } from '../../db/queryable.js';
import { sleep } from '../../util/sleep.js';
import { UserError } from '../../errors.js';


export interface SlotInfo {
  created: boolean;
  confirmedFlushLsn: string;
}

/**
 * The server invalidated the slot (it fell further behind than max_slot_wal_keep_size, or a
 * conflict on a standby removed it): the WAL it needed is gone, so the changes since its confirmed
 * position can never be streamed. Replication stops here rather than silently skipping them; the
 * operator recovers with a new slot and a re-backfill (docs/deploying.md).
 */
export class SlotInvalidatedError extends UserError {
  override name = 'SlotInvalidatedError';
  constructor(
    readonly slotName: string,
    readonly reason: string,
    readonly confirmedFlushLsn: string | null,
  ) {
    const q = slotName.replace(/'/g, "''");
    super(
      `replication slot "${slotName}" was invalidated by the server (${reason}); the changes after ${confirmedFlushLsn ?? 'its confirmed position'} are no longer in WAL, ` +
        `so walflow stopped replicating instead of skipping them. Recover: stop walflow, SELECT pg_drop_replication_slot('${q}'), start walflow run (it creates a new slot), ` +
        `then \`walflow backfill <pipeline> --restart\` for each pipeline with a source, and raise max_slot_wal_keep_size (see docs/deploying.md)`,
    );
  }
}

/** Why the server invalidated the slot (wal_status 'lost', or PostgreSQL 16+'s conflicting / 17+'s invalidation_reason); undefined when it is healthy or absent. */
export async function slotInvalidation(db: Db, slotName: string): Promise<SlotInvalidatedError | undefined> {
  // to_jsonb reads the columns that exist on this server version (invalidation_reason: 17+, conflicting: 16+).
  const { rows } = await db.query<{ s: Record<string, unknown> }>(`SELECT to_jsonb(s) AS s FROM pg_replication_slots s WHERE slot_name = $1`, [slotName]);
  const s = rows[0]?.s;
  if (!s) return undefined;
  const lsn = (s.confirmed_flush_lsn as string | null) ?? null;
  if (typeof s.invalidation_reason === 'string') return new SlotInvalidatedError(slotName, `invalidation_reason ${s.invalidation_reason}, wal_status ${String(s.wal_status)}`, lsn);
  if (s.wal_status === 'lost') return new SlotInvalidatedError(slotName, 'wal_status lost: it fell behind by more than max_slot_wal_keep_size', lsn);
  if (s.conflicting === true) return new SlotInvalidatedError(slotName, 'conflicting with recovery on a standby', lsn);
  return undefined;
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
      // PostgreSQL 17+: a failover slot, which standbys with sync_replication_slots = on keep in
      // step, so that a promoted standby still has it (docs/deploying.md). Earlier: a plain slot.
      // (The 5-argument form does not exist before 17, so the choice is made here, not in SQL.)
      const version = Number((await db.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]?.v ?? 0);
      await db.query(version >= 170000 ? `SELECT pg_create_logical_replication_slot($1, 'pgoutput', false, false, true)` : `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slotName]);
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
  const invalid = await slotInvalidation(db, slotName);
  if (invalid) throw invalid;
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
      await sleep(100);
    }
  }
  throw new Error(`replication slot "${slotName}" stayed active; could not drop it`);
}

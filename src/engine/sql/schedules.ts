// Statements of the scheduler (walflow.schedules): file schedules kept in step with the loaded
// pipelines, the due schedules claimed for firing, and their ticks moved on.
import type { Queryable } from '../../db/queryable.js';
import type { DeclaredSchedule } from '../../pipeline/define.js';
import type { CatchUp } from '../../pipeline/schedule.js';

export interface ScheduleRow {
  name: string;
  pipeline: string;
  cron: string | null;
  every_ms: number | null;
  timezone: string;
  input: Record<string, unknown>;
  catch_up: CatchUp;
  next_tick: Date | null;
}

const COLUMNS = 'name, pipeline, cron, every_ms::float8 AS every_ms, timezone, input, catch_up, next_tick';

/**
 * Writes the schedules the given pipelines declare (origin 'file') and removes the file schedules
 * of those pipelines that they no longer declare. A changed timing restarts from now (next_tick
 * NULL: the scheduler computes it); an unchanged one keeps its next tick, so downtime is caught up.
 */
export async function syncFileSchedules(db: Queryable, pipelines: readonly { name: string; schedules: readonly DeclaredSchedule[] }[]): Promise<void> {
  if (pipelines.length === 0) return;
  const rows = pipelines.flatMap((p) => p.schedules.map((s) => ({
    name: s.name, pipeline: p.name, cron: s.cron, every_ms: s.every_ms, timezone: s.timezone, input: s.input, catch_up: s.catch_up,
  })));
  await db.query(
    `WITH d AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(name text, pipeline text, cron text, every_ms bigint, timezone text, input jsonb, catch_up text)),
     gone AS (DELETE FROM walflow.schedules s WHERE s.origin = 'file' AND s.pipeline = ANY($2::text[])
                AND NOT EXISTS (SELECT 1 FROM d WHERE d.name = s.name) RETURNING 1),
     up AS (INSERT INTO walflow.schedules AS s (name, pipeline, cron, every_ms, timezone, input, catch_up, origin)
            SELECT name, pipeline, cron, every_ms, timezone, input, catch_up, 'file' FROM d
            ON CONFLICT (name) DO UPDATE
              SET pipeline = EXCLUDED.pipeline, cron = EXCLUDED.cron, every_ms = EXCLUDED.every_ms, timezone = EXCLUDED.timezone,
                  input = EXCLUDED.input, catch_up = EXCLUDED.catch_up, origin = 'file', updated_at = now(),
                  next_tick = CASE WHEN (s.cron, s.every_ms, s.timezone) IS NOT DISTINCT FROM (EXCLUDED.cron, EXCLUDED.every_ms, EXCLUDED.timezone)
                                   THEN s.next_tick END,
                  error = NULL
              WHERE (s.pipeline, s.cron, s.every_ms, s.timezone, s.input, s.catch_up, s.origin)
                    IS DISTINCT FROM (EXCLUDED.pipeline, EXCLUDED.cron, EXCLUDED.every_ms, EXCLUDED.timezone, EXCLUDED.input, EXCLUDED.catch_up, 'file')
            RETURNING 1)
     SELECT pg_notify('walflow_schedules', '') FROM (SELECT count(*) AS n FROM gone UNION ALL SELECT count(*) FROM up) c HAVING sum(n) > 0`,
    [JSON.stringify(rows), pipelines.map((p) => p.name)],
  );
}

/** Removes the file schedules of pipelines a process stopped loading (a live reload removed them). */
export async function removeFileSchedules(db: Queryable, pipelines: readonly string[]): Promise<void> {
  if (pipelines.length === 0) return;
  await db.query(`DELETE FROM walflow.schedules WHERE origin = 'file' AND pipeline = ANY($1::text[])`, [pipelines]);
}

/** Schedules whose next tick is not computed yet (new or changed), locked; any process may compute them. */
export async function claimUncomputed(db: Queryable, limit: number): Promise<ScheduleRow[]> {
  const { rows } = await db.query<ScheduleRow>(
    `SELECT ${COLUMNS} FROM walflow.schedules WHERE next_tick IS NULL AND error IS NULL ORDER BY name LIMIT $1 FOR UPDATE SKIP LOCKED`, [limit]);
  return rows;
}

/** Due schedules of the pipelines this process loads, locked until the transaction ends, and the database's clock. */
export async function claimDue(db: Queryable, pipelines: readonly string[], limit: number): Promise<{ rows: ScheduleRow[]; now: Date }> {
  const { rows } = await db.query<ScheduleRow & { db_now: Date }>(
    `SELECT ${COLUMNS}, now() AS db_now FROM walflow.schedules
      WHERE next_tick <= now() AND error IS NULL AND pipeline = ANY($1::text[])
      ORDER BY next_tick LIMIT $2 FOR UPDATE SKIP LOCKED`, [pipelines, limit]);
  const now = rows[0]?.db_now ?? (await db.query<{ now: Date }>('SELECT now()')).rows[0]!.now;
  return { rows, now };
}

export async function setTicks(db: Queryable, name: string, next: Date, last: Date | null): Promise<void> {
  await db.query(`UPDATE walflow.schedules SET next_tick = $2, last_tick = coalesce($3, last_tick) WHERE name = $1`, [name, next, last]);
}

export async function setError(db: Queryable, name: string, error: string): Promise<void> {
  await db.query(`UPDATE walflow.schedules SET error = $2, next_tick = NULL, updated_at = now() WHERE name = $1`, [name, error]);
}

/** Milliseconds (database clock) until the nearest next tick of these pipelines' schedules, or until any uncomputed one (0); null: none. */
export async function msUntilNextTick(db: Queryable, pipelines: readonly string[]): Promise<number | null> {
  const { rows } = await db.query<{ ms: number | null }>(
    `SELECT CASE WHEN EXISTS (SELECT 1 FROM walflow.schedules WHERE next_tick IS NULL AND error IS NULL) THEN 0
                 ELSE (SELECT extract(epoch FROM min(next_tick) - now()) * 1000 FROM walflow.schedules
                        WHERE error IS NULL AND pipeline = ANY($1::text[]))::float8 END AS ms`, [pipelines]);
  return rows[0]?.ms ?? null;
}

// Statements of durable waits (docs/waits.md). All of them run inside a run transaction
// (run-transaction.ts), which holds the run's row lock: a signal sent concurrently takes the same
// lock (walflow.signal), so a wait either sees the signal or is woken by it, never neither.
import type { Queryable } from '../../db/queryable.js';
import type { Json } from '../../pipeline/types.js';
import type { ParkedWait } from './claim.js';

export interface ParkSpec {
  runId: string;
  pipeline: string;
  stepIndex: number;
  step: string;
  kind: ParkedWait['kind'];
  /** The wake time or timeout: an instant, a delay from the database's now, or none (NULL: only a signal or a child wakes it). */
  until: { at: string } | { inMs: number } | null;
  signal?: string | null;
  children?: number | null;
  childrenLeft?: number | null;
  mode?: string | null;
  repeats?: number;
}

/**
 * Parks the run: records what it waits for and makes it 'waiting' until `until` (or for ever), its
 * lease released. The step's retry budget restarts (retry_base = attempt), so each wake-up is a
 * fresh execution, not a failed attempt. Returns the wake time.
 */
export async function parkRun(tx: Queryable, p: ParkSpec): Promise<Date | null> {
  const at = p.until && 'at' in p.until ? p.until.at : null;
  const inMs = p.until && 'inMs' in p.until ? p.until.inMs : null;
  const { rows } = await tx.query<{ until: Date | null }>(
    `WITH w AS (
       INSERT INTO walflow.waits AS w (run_id, pipeline, step_index, step, kind, until, signal, children, children_left, repeats, mode)
       VALUES ($1, $2, $3, $4, $5,
               CASE WHEN $6::timestamptz IS NOT NULL THEN $6::timestamptz WHEN $7::bigint IS NOT NULL THEN now() + $7 * interval '1 millisecond' END,
               $8, $9, $10, $11, $12)
       ON CONFLICT (run_id) DO UPDATE SET step_index = EXCLUDED.step_index, step = EXCLUDED.step, kind = EXCLUDED.kind,
         until = EXCLUDED.until, signal = EXCLUDED.signal, children = EXCLUDED.children, children_left = EXCLUDED.children_left,
         repeats = EXCLUDED.repeats, mode = EXCLUDED.mode,
         since = CASE WHEN w.step_index = EXCLUDED.step_index AND w.kind = EXCLUDED.kind THEN w.since ELSE now() END
       RETURNING until
     )
     UPDATE walflow.runs r SET status = 'waiting', run_at = coalesce((SELECT until FROM w), 'infinity'), step_index = $3,
            retry_base = r.attempt, error = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
      WHERE r.id = $1
     RETURNING (SELECT until FROM w) AS until`,
    [p.runId, p.pipeline, p.stepIndex, p.step, p.kind, at, inMs, p.signal ?? null, p.children ?? null, p.childrenLeft ?? null, p.repeats ?? 0, p.mode ?? null],
  );
  return rows[0]?.until ?? null;
}

/** The wait's deadline has passed (by the database's clock). */
export async function isDue(tx: Queryable, until: string | null): Promise<boolean> {
  if (until === null) return false;
  const { rows } = await tx.query<{ due: boolean }>('SELECT $1::timestamptz <= now() AS due', [until]);
  return rows[0]!.due;
}

/** The run's wait as it is now (inside the run transaction), or undefined. */
export async function readWait(tx: Queryable, runId: string): Promise<ParkedWait | undefined> {
  const { rows } = await tx.query<ParkedWait>(
    `SELECT step_index, step, kind, to_json(until)#>>'{}' AS until, signal, children, children_left, repeats FROM walflow.waits WHERE run_id = $1`, [runId]);
  return rows[0];
}

export async function clearWait(tx: Queryable, runId: string): Promise<void> {
  await tx.query('DELETE FROM walflow.waits WHERE run_id = $1', [runId]);
}

/** Consumes the oldest unconsumed signal of this name in the run's mailbox, or returns undefined. */
export async function consumeSignal(tx: Queryable, runId: string, name: string, stepIndex: number): Promise<{ payload: Json; sent_at: string } | undefined> {
  const { rows } = await tx.query<{ payload: Json; sent_at: string }>(
    `UPDATE walflow.signals s SET consumed_at = now(), consumed_by_step = $3
      WHERE s.id = (SELECT id FROM walflow.signals WHERE run_id = $1 AND name = $2 AND consumed_at IS NULL ORDER BY id LIMIT 1)
      RETURNING s.payload, to_json(s.sent_at)#>>'{}' AS sent_at`,
    [runId, name, stepIndex],
  );
  return rows[0];
}

/** Marks a checkpoint as a skipped step (its condition was false). */
export async function markSkipped(tx: Queryable, runId: string, stepIndex: number): Promise<void> {
  await tx.query('UPDATE walflow.steps SET skipped = true WHERE run_id = $1 AND step_index = $2', [runId, stepIndex]);
}

/**
 * The earliest future wake time of a parked or retrying run of these pipelines (the worker's timer
 * for runs parked by other processes). One index probe per pipeline (runs_runnable).
 */
export async function nextWake(db: Queryable, pipelines: string[]): Promise<Date | null> {
  const { rows } = await db.query<{ at: Date | null }>(
    `SELECT min(x.run_at) AS at FROM unnest($1::text[]) AS p(name), LATERAL (
       SELECT r.run_at FROM walflow.runs r
        WHERE r.status IN ('queued', 'waiting') AND r.pipeline = p.name AND r.run_at > now() AND r.run_at < 'infinity'
        ORDER BY r.run_at LIMIT 1) x`,
    [pipelines],
  );
  return rows[0]?.at ?? null;
}

/** A run reaching a sleep: parked with the others that reach one at the same time. */
export interface SleepPark {
  run_id: string;
  pipeline: string;
  step_index: number;
  step: string;
  /** An instant, or a delay from the database's now. */
  at: string | null;
  in_ms: number | null;
}

/**
 * Parks runs reaching a sleep, many in one statement (the group-committed form of parkRun for the
 * one wait no signal or child can end early, so it needs no row lock): fenced on the lease, so a run
 * cancelled or taken over meanwhile is not parked. Returns the parked ids with their wake times.
 */
export async function writeSleepParks(db: Queryable, items: SleepPark[], owner: string): Promise<Map<string, Date>> {
  const { rows } = await db.query<{ run_id: string; run_at: Date }>(
    `WITH d AS (
       SELECT * FROM json_to_recordset($1::json) AS x(run_id uuid, pipeline text, step_index int, step text, at timestamptz, in_ms bigint)
     ), owned AS (
       UPDATE walflow.runs r
          SET status = 'waiting', run_at = coalesce(d.at, now() + d.in_ms * interval '1 millisecond'), step_index = d.step_index,
              retry_base = r.attempt, error = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
         FROM d
        WHERE r.id = d.run_id AND r.lease_owner = $2 AND r.status = 'running'
       RETURNING r.id, r.run_at
     ), parked AS (
       INSERT INTO walflow.waits AS w (run_id, pipeline, step_index, step, kind, until)
       SELECT d.run_id, d.pipeline, d.step_index, d.step, 'sleep', o.run_at FROM d JOIN owned o ON o.id = d.run_id
       ON CONFLICT (run_id) DO UPDATE SET step_index = EXCLUDED.step_index, step = EXCLUDED.step, kind = 'sleep', until = EXCLUDED.until,
         signal = NULL, children = NULL, children_left = NULL, mode = NULL, repeats = 0, since = now()
     )
     SELECT id AS run_id, run_at FROM owned`,
    [JSON.stringify(items), owner],
  );
  return new Map(rows.map((r) => [r.run_id, r.run_at]));
}

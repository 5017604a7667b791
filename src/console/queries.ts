// Everything the console reads or changes, through the same views and functions as the CLI
// (walflow.status, list_runs, run_timeline, replication_status, worker_health, retry, cancel).
// Each query runs only when a page (or its live refresh) asks: no page open, no load.
import type pg from 'pg';
import { num } from '../ops/output.js';

export const STATUSES = ['queued', 'running', 'waiting', 'completed', 'failed', 'cancelled', 'superseded'] as const;
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Run inputs and outputs larger than this show a preview and a link to the whole value. */
export const PREVIEW_CHARS = 64 * 1024;

export interface PipelineRow {
  pipeline: string; version: string | null; queued: number; running: number; waiting: number; failed: number;
  completed_1h: number; completed_per_s_1m: number; oldest_queued_s: number | null;
  /** Parked runs (durable waits); `waiting` counts only runs waiting for a retry. */
  sleeping: number; awaiting_signal: number; awaiting_children: number; repeating: number;
}
export interface SlotRow {
  slot: string; publication: string; active: boolean; lag_bytes: number | null; lag_seconds: number | null;
  leader: string | null; leader_health: string; leader_heartbeat_at: Date | null; wal_status: string | null;
}
export interface WorkerRow { owner: string; host: string; pid: number; pipelines: string[]; in_flight: number; started_at: Date; heartbeat_at: Date; health: string }
export interface Overview {
  pipelines: PipelineRow[];
  /** Completions per minute over the last hour: minute (epoch seconds) → pipeline → count. */
  completions: { minute: number; pipeline: string; count: number }[];
  replication: SlotRow[];
  workers: WorkerRow[];
}

export async function readOverview(db: pg.Pool): Promise<Overview> {
  const [p, c, r, w] = await Promise.all([
    db.query(`SELECT pipeline, version, queued, running, waiting, failed, completed_1h, completed_per_s_1m,
                     extract(epoch FROM oldest_queued_age)::float8 AS oldest_queued_s, sleeping, awaiting_signal, awaiting_children, repeating
                FROM walflow.status ORDER BY pipeline`),
    // The same partial index (runs_finished) as walflow.status's completed_1h.
    db.query(`SELECT pipeline, extract(epoch FROM date_trunc('minute', finished_at))::bigint AS minute, count(*) AS count
                FROM walflow.runs WHERE status = 'completed' AND finished_at > now() - interval '1 hour'
               GROUP BY 1, 2 ORDER BY 2`),
    db.query(`SELECT slot_name, publication, active, lag_bytes, lag_seconds, leader_id, leader_health, leader_heartbeat_at, wal_status
                FROM walflow.replication_status ORDER BY slot_name`),
    db.query('SELECT owner, host, pid, pipelines, in_flight, started_at, heartbeat_at, health FROM walflow.worker_health ORDER BY started_at, owner'),
  ]);
  return {
    pipelines: p.rows.map((x) => ({
      pipeline: x.pipeline, version: x.version, queued: num(x.queued)!, running: num(x.running)!, waiting: num(x.waiting)!,
      failed: num(x.failed)!, completed_1h: num(x.completed_1h)!, completed_per_s_1m: num(x.completed_per_s_1m) ?? 0, oldest_queued_s: num(x.oldest_queued_s),
      sleeping: num(x.sleeping)!, awaiting_signal: num(x.awaiting_signal)!, awaiting_children: num(x.awaiting_children)!, repeating: num(x.repeating)!,
    })),
    completions: c.rows.map((x) => ({ minute: num(x.minute)!, pipeline: x.pipeline, count: num(x.count)! })),
    replication: r.rows.map((x) => ({
      slot: x.slot_name, publication: x.publication, active: x.active, lag_bytes: num(x.lag_bytes), lag_seconds: num(x.lag_seconds),
      leader: x.leader_id, leader_health: x.leader_health, leader_heartbeat_at: x.leader_heartbeat_at, wal_status: x.wal_status,
    })),
    workers: w.rows,
  };
}

export interface RunFilter {
  pipeline?: string; status?: string; key?: string;
  /** Created at or after / before (the run id's own timestamp, to the millisecond). */
  since?: Date; until?: Date;
  /** Keyset: runs older than `before`, or newer than `after`; `oldest` starts from the oldest page. */
  before?: string; after?: string; oldest?: boolean;
  limit: number;
}
export interface RunListRow {
  id: string; pipeline: string; key: string | null; status: string; step_index: number; attempt: number;
  created_at: Date; finished_at: Date | null; error_message: string | null;
}

/** The smallest UUIDv7 of a millisecond: run ids are UUIDv7, so a time bound is an id bound. */
export function uuidAt(t: Date): string {
  const hex = Math.max(0, Math.min(t.getTime(), 0xffffffffffff)).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7000-8000-000000000000`;
}

/**
 * One page of runs, newest first, by keyset on the (time-ordered) id, so a page costs the same on
 * the first page and the last of millions. Newest-first pages are walflow.list_runs; pages walked
 * towards newer runs (and the oldest page) read the same predicates in ascending order.
 */
export async function listRuns(db: pg.Pool, f: RunFilter): Promise<{ runs: RunListRow[]; hasOlder: boolean; hasNewer: boolean }> {
  const lower = f.since ? uuidAt(f.since) : null;
  let upper = f.until ? uuidAt(f.until) : null;
  if (f.before && (!upper || f.before < upper)) upper = f.before;
  const ascending = !!f.after || !!f.oldest;
  let rows: RunListRow[];
  if (!ascending) {
    ({ rows } = await db.query(
      `SELECT * FROM walflow.list_runs($1, $2, $3, $4, $5) WHERE $6::uuid IS NULL OR id >= $6::uuid`,
      [f.pipeline ?? null, f.status ?? null, f.key ?? null, upper, f.limit + 1, lower],
    ));
  } else {
    const from = f.after && (!lower || f.after >= lower) ? f.after : null;
    ({ rows } = await db.query(
      `SELECT r.id, r.pipeline, r.key, r.status, r.step_index, r.attempt, r.created_at, r.finished_at, r.error->>'message' AS error_message
         FROM walflow.runs r
        WHERE ($1::text IS NULL OR r.pipeline = $1) AND ($2::text IS NULL OR r.status = $2) AND ($3::text IS NULL OR r.key = $3)
          AND ($4::uuid IS NULL OR r.id < $4) AND ($5::uuid IS NULL OR r.id > $5) AND ($6::uuid IS NULL OR r.id >= $6)
        ORDER BY r.id ASC LIMIT $7`,
      [f.pipeline ?? null, f.status ?? null, f.key ?? null, upper, from, lower, f.limit + 1],
    ));
  }
  const more = rows.length > f.limit;
  rows = rows.slice(0, f.limit);
  if (ascending) rows.reverse();
  return {
    runs: rows,
    // Walking older: more rows exist below; walking newer: the page came from `after`, so older ones exist.
    hasOlder: ascending ? !!f.after : more,
    hasNewer: ascending ? more : !!f.before,
  };
}

export interface RunDetail {
  id: string; pipeline: string; pipeline_version: string | null; key: string | null; status: string; step_index: number; attempt: number;
  input_preview: string; input_bytes: number; error: { message?: string; stack?: string; name?: string } | null;
  created_at: Date; started_at: Date | null; finished_at: Date | null; run_at: Date;
  source_lsn: string | null; source_index: number | null; dedupe_id: string | null;
}
export interface TimelineRow {
  step_index: number; step: string; outcome: 'completed' | 'failed' | 'skipped' | 'sleeping' | 'awaiting signal' | 'awaiting children' | 'repeating'; attempt: number; duration_ms: number | null;
  started_at: Date | null; finished_at: Date | null; retry_at: Date | null; error: { message?: string; stack?: string } | null;
  output_bytes: number | null; output_preview: string | null;
}

export async function readRun(db: pg.Pool, id: string): Promise<{ run: RunDetail; steps: TimelineRow[] } | undefined> {
  // Only a preview of a large input leaves the database: a 5 MB value costs the page 64 kB.
  const run = (await db.query(
    `SELECT id, pipeline, pipeline_version, key, status, step_index, attempt, left(jsonb_pretty(input), $2) AS input_preview,
            octet_length(input::text) AS input_bytes, error, created_at, started_at, finished_at, run_at, source_lsn::text, source_index, dedupe_id
       FROM walflow.runs WHERE id = $1`, [id, PREVIEW_CHARS])).rows[0] as RunDetail | undefined;
  if (!run) return undefined;
  run.input_bytes = num(run.input_bytes)!;
  const { rows } = await db.query(
    `SELECT t.step_index, t.step, t.outcome, t.attempt, t.duration_ms, t.started_at, t.finished_at, t.retry_at, t.error,
            octet_length(s.output::text) AS output_bytes, left(jsonb_pretty(s.output), 2000) AS output_preview
       FROM walflow.run_timeline t
       LEFT JOIN walflow.steps s ON s.run_id = t.run_id AND s.step_index = t.step_index AND t.outcome = 'completed'
      WHERE t.run_id = $1 ORDER BY t.step_index, t.attempt, t.outcome DESC`, [id]);
  const steps = rows.map((s) => ({ ...s, duration_ms: num(s.duration_ms), output_bytes: num(s.output_bytes) })) as TimelineRow[];
  return { run, steps };
}

/** A run's whole input, pretty-printed (the "show all" of a truncated preview). */
export async function readInput(db: pg.Pool, id: string): Promise<string | undefined> {
  return (await db.query('SELECT jsonb_pretty(input) AS input FROM walflow.runs WHERE id = $1', [id])).rows[0]?.input as string | undefined;
}

export interface FailureGroup { status: 'failed' | 'waiting'; pipeline: string; message: string | null; runs: number; last_at: Date | null; example: string }

/**
 * Runs that failed for good (retry them) and runs waiting to retry after an error (cancel them),
 * grouped by pipeline and error message. Two statements over two partial indexes (runs_failed,
 * runs_runnable), so finished runs cost nothing.
 */
export async function readFailureGroups(db: pg.Pool): Promise<FailureGroup[]> {
  const group = (status: string, at: string) =>
    `SELECT '${status}' AS status, pipeline, error->>'message' AS message, count(*) AS runs, max(${at}) AS last_at, (max(id::text))::uuid AS example
       FROM walflow.runs WHERE status = '${status}' AND error IS NOT NULL GROUP BY 2, 3`;
  const { rows } = await db.query(
    `SELECT * FROM (${group('failed', 'finished_at')} UNION ALL ${group('waiting', 'updated_at')}) g
      ORDER BY status, runs DESC, pipeline, message LIMIT 500`);
  return rows.map((r) => ({ ...r, runs: num(r.runs)! }));
}

export async function pipelineNames(db: pg.Pool): Promise<string[]> {
  return (await db.query('SELECT name FROM walflow.pipelines ORDER BY name')).rows.map((r) => r.name as string);
}

export async function retryRun(db: pg.Pool, id: string): Promise<boolean> {
  return (await db.query('SELECT walflow.retry($1) AS ok', [id])).rows[0].ok as boolean;
}

export async function cancelRun(db: pg.Pool, id: string): Promise<boolean> {
  return (await db.query('SELECT walflow.cancel($1) AS ok', [id])).rows[0].ok as boolean;
}

/** Retries every failed run of one error group; how many. */
export async function retryGroup(db: pg.Pool, pipeline: string, message: string | null): Promise<number> {
  const { rows } = await db.query(
    `SELECT count(*) FILTER (WHERE walflow.retry(id)) AS n FROM walflow.runs
      WHERE status = 'failed' AND pipeline = $1 AND error->>'message' IS NOT DISTINCT FROM $2`, [pipeline, message]);
  return num(rows[0].n)!;
}

/** Cancels every run of a pipeline waiting to retry after an error with this message; how many. */
export async function cancelGroup(db: pg.Pool, pipeline: string, message: string | null): Promise<number> {
  const { rows } = await db.query(
    `SELECT count(*) FILTER (WHERE walflow.cancel(id)) AS n FROM walflow.runs
      WHERE status = 'waiting' AND pipeline = $1 AND error->>'message' IS NOT DISTINCT FROM $2`, [pipeline, message]);
  return num(rows[0].n)!;
}

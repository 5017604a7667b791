// Every SQL statement the engine runs. Each one handles a whole batch of runs, so that throughput
// is bounded by Postgres' write rate rather than by round trips.
import type pg from 'pg';
import type { Json } from '../pipeline/types.js';
import type { StoredError } from './retry.js';

type Queryable = Pick<pg.ClientBase, 'query'> | pg.Pool;

export interface ClaimedRun {
  id: string;
  pipeline: string;
  key: string | null;
  input: Json;
  step_index: number;
  attempt: number;
  /** Output of the last committed step: the input of the step at step_index. */
  prev_output: Json | null;
}

export interface CheckpointItem {
  run_id: string;
  step_index: number;
  step: string;
  output: Json;
  attempts: number;
  started_at: string;
  finished_at: string;
  /** The last step: the run completes in the same statement. */
  final: boolean;
}

export interface FailureItem {
  run_id: string;
  step_index: number;
  step: string;
  error: StoredError;
  attempts: number;
  started_at: string;
  finished_at: string;
  /** When to try again; null: the run fails (dead letter). */
  retry_at: string | null;
}

const CLAIM = `
WITH candidates AS (
  SELECT r.id FROM walflow.runs r
  WHERE r.status IN ('queued', 'waiting') AND r.run_at <= now()
    AND r.pipeline = ANY($1::text[])
    -- One run per key at a time, in start order: an older unfinished run of the key goes first.
    AND (r.key IS NULL OR NOT EXISTS (
      SELECT 1 FROM walflow.runs o
      WHERE o.pipeline = r.pipeline AND o.key = r.key AND o.seq < r.seq
        AND o.status IN ('queued', 'waiting', 'running')))
  ORDER BY r.run_at, r.seq
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)
UPDATE walflow.runs r
   SET status = 'running', attempt = r.attempt + 1, lease_owner = $3,
       lease_expires_at = now() + $4 * interval '1 millisecond',
       started_at = coalesce(r.started_at, now()), updated_at = now()
  FROM candidates c
 WHERE r.id = c.id
RETURNING r.id, r.pipeline, r.key, r.input, r.step_index, r.attempt,
  (SELECT s.output FROM walflow.steps s WHERE s.run_id = r.id AND s.step_index = r.step_index - 1) AS prev_output`;

/**
 * The checkpoint: fenced on the lease (a worker whose lease was taken over updates no run row, so
 * it inserts no checkpoint and its transaction has written nothing). The UPDATE also locks the run
 * row until commit, so a concurrent takeover waits and then sees the renewed lease.
 */
const CHECKPOINT = `
WITH d AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(run_id uuid, step_index int, step text, output jsonb,
    attempts int, started_at timestamptz, finished_at timestamptz, final boolean)
), owned AS (
  UPDATE walflow.runs r
     SET step_index = d.step_index + 1,
         attempt = CASE WHEN d.final THEN r.attempt ELSE 1 END,
         status = CASE WHEN d.final THEN 'completed' ELSE 'running' END,
         finished_at = CASE WHEN d.final THEN now() END,
         lease_owner = CASE WHEN d.final THEN NULL ELSE r.lease_owner END,
         lease_expires_at = CASE WHEN d.final THEN NULL ELSE now() + $3 * interval '1 millisecond' END,
         error = NULL, updated_at = now()
    FROM d
   WHERE r.id = d.run_id AND r.lease_owner = $2 AND r.status = 'running' AND r.step_index = d.step_index
  RETURNING r.id
)
INSERT INTO walflow.steps AS s (run_id, step_index, step, status, output, attempts, started_at, finished_at)
SELECT d.run_id, d.step_index, d.step, 'completed', d.output, d.attempts, d.started_at, d.finished_at
  FROM d JOIN owned o ON o.id = d.run_id
ON CONFLICT (run_id, step_index) DO UPDATE
   SET status = 'completed', output = EXCLUDED.output, attempts = EXCLUDED.attempts, error = NULL,
       started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at
 WHERE s.status = 'failed'
RETURNING s.run_id`;

const FAIL = `
WITH d AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(run_id uuid, step_index int, step text, error jsonb,
    attempts int, started_at timestamptz, finished_at timestamptz, retry_at timestamptz)
), owned AS (
  UPDATE walflow.runs r
     SET status = CASE WHEN d.retry_at IS NULL THEN 'failed' ELSE 'waiting' END,
         run_at = coalesce(d.retry_at, r.run_at),
         error = d.error, lease_owner = NULL, lease_expires_at = NULL,
         finished_at = CASE WHEN d.retry_at IS NULL THEN now() END, updated_at = now()
    FROM d
   WHERE r.id = d.run_id AND r.lease_owner = $2 AND r.status = 'running' AND r.step_index = d.step_index
  RETURNING r.id
)
INSERT INTO walflow.steps AS s (run_id, step_index, step, status, error, attempts, started_at, finished_at)
SELECT d.run_id, d.step_index, d.step, 'failed', d.error, d.attempts, d.started_at, d.finished_at
  FROM d JOIN owned o ON o.id = d.run_id
ON CONFLICT (run_id, step_index) DO UPDATE
   SET error = EXCLUDED.error, attempts = EXCLUDED.attempts, started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at
 WHERE s.status = 'failed'
RETURNING s.run_id`;

export async function claimRuns(db: Queryable, pipelines: string[], limit: number, owner: string, leaseMs: number): Promise<ClaimedRun[]> {
  const { rows } = await db.query<ClaimedRun>(CLAIM, [pipelines, limit, owner, leaseMs]);
  return rows;
}

/** Writes checkpoints; returns the ids whose checkpoint committed (still owned by `owner`). */
export async function writeCheckpoints(db: Queryable, items: CheckpointItem[], owner: string, leaseMs: number): Promise<Set<string>> {
  const { rows } = await db.query<{ run_id: string }>(CHECKPOINT, [JSON.stringify(items), owner, leaseMs]);
  return new Set(rows.map((r) => r.run_id));
}

export async function writeFailures(db: Queryable, items: FailureItem[], owner: string): Promise<Set<string>> {
  const { rows } = await db.query<{ run_id: string }>(FAIL, [JSON.stringify(items), owner]);
  return new Set(rows.map((r) => r.run_id));
}

/** Extends the lease of runs still owned; the ids missing from the result were cancelled or taken over. */
export async function renewLeases(db: Queryable, ids: string[], owner: string, leaseMs: number): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const { rows } = await db.query<{ id: string }>(
    `UPDATE walflow.runs SET lease_expires_at = now() + $3 * interval '1 millisecond'
      WHERE id = ANY($1::uuid[]) AND lease_owner = $2 AND status = 'running' RETURNING id`,
    [ids, owner, leaseMs],
  );
  return new Set(rows.map((r) => r.id));
}

/** Hands runs back (shutdown): queued again at once, and the interrupted attempt is not counted. */
export async function releaseRuns(db: Queryable, ids: string[], owner: string): Promise<number> {
  if (ids.length === 0) return 0;
  const { rowCount } = await db.query(
    `UPDATE walflow.runs SET status = 'queued', attempt = greatest(attempt - 1, 0), lease_owner = NULL,
            lease_expires_at = NULL, run_at = now(), updated_at = now()
      WHERE id = ANY($1::uuid[]) AND lease_owner = $2 AND status = 'running'`,
    [ids, owner],
  );
  if (rowCount) await db.query(`SELECT pg_notify('walflow_runs', 'released')`);
  return rowCount ?? 0;
}

/**
 * Requeues runs whose worker stopped renewing its lease (crashed, partitioned). The lost attempt
 * counts: a row that kills its worker every time ends up failed instead of looping forever.
 */
export async function reapExpiredLeases(db: Queryable): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE walflow.runs
        SET status = 'queued', run_at = now(), updated_at = now(), lease_owner = NULL, lease_expires_at = NULL,
            error = jsonb_build_object('message', 'worker ' || lease_owner || ' lost its lease (crashed or stalled) during attempt ' || attempt, 'name', 'LeaseExpired')
      WHERE id IN (SELECT id FROM walflow.runs WHERE status = 'running' AND lease_expires_at < now() LIMIT 1000 FOR UPDATE SKIP LOCKED)`,
  );
  if (rowCount) await db.query(`SELECT pg_notify('walflow_runs', 'reaped')`);
  return rowCount ?? 0;
}

/** Deletes finished runs (and their steps) older than the retention, in bounded batches. */
export async function pruneFinished(db: Queryable, olderThanMs: number, batch = 1000): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `WITH gone AS (
       DELETE FROM walflow.runs WHERE id IN (
         SELECT id FROM walflow.runs
          WHERE status IN ('completed', 'superseded', 'cancelled') AND finished_at < now() - $1 * interval '1 millisecond'
          LIMIT $2 FOR UPDATE SKIP LOCKED)
       RETURNING id
     ), steps AS (
       DELETE FROM walflow.steps s USING gone WHERE s.run_id = gone.id
     )
     SELECT count(*)::int AS n FROM gone`,
    [olderThanMs, batch],
  );
  return rows[0]?.n ?? 0;
}

export interface StartItem {
  input: Json;
  key?: string | null;
  dedupe_id?: string | null;
  source_lsn?: string | null;
  source_index?: number | null;
}

export interface StartResult {
  run_id: string;
  ordinal: number;
  created: boolean;
}

/** Starts runs inside whatever transaction `db` is in (see walflow.start_batch in sql/). */
export async function startRuns(db: Queryable, pipeline: string, items: StartItem[]): Promise<StartResult[]> {
  const { rows } = await db.query<StartResult>('SELECT run_id, ordinal, created FROM walflow.start_batch($1, $2::jsonb)', [pipeline, JSON.stringify(items)]);
  return rows;
}

export async function registerPipelines(db: Queryable, defs: { name: string; version: string; steps: string[]; source: Json | null }[]): Promise<void> {
  await db.query(
    `INSERT INTO walflow.pipelines (name, version, steps, source)
     SELECT name, version, steps, source FROM jsonb_to_recordset($1::jsonb) AS x(name text, version text, steps text[], source jsonb)
     ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, steps = EXCLUDED.steps, source = EXCLUDED.source, updated_at = now()
       WHERE (walflow.pipelines.version, walflow.pipelines.steps, walflow.pipelines.source) IS DISTINCT FROM (EXCLUDED.version, EXCLUDED.steps, EXCLUDED.source)`,
    [JSON.stringify(defs)],
  );
}

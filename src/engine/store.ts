// Every SQL statement the engine runs. Each one handles a whole batch of runs, so that throughput
// is bounded by Postgres' write rate rather than by round trips.
import type pg from 'pg';
import type { Json } from '../pipeline/types.js';
import { boolArray, plainArray, textArray } from './pg-arrays.js';
import { OutputNotJsonError, type StoredError } from './retry.js';

type Queryable = Pick<pg.ClientBase, 'query'> | pg.Pool;

export interface ClaimedRun {
  id: string;
  pipeline: string;
  key: string | null;
  input: Json;
  step_index: number;
  /** Executions of the step at step_index, this one included (ctx.attempt): retries never reset it. */
  attempt: number;
  /** Executions before the run's last manual retry: the step's retry budget counts from here. */
  retry_base: number;
  /** Output of the last committed step: the input of the step at step_index. */
  prev_output: Json | null;
}

export interface CheckpointItem {
  run_id: string;
  step_index: number;
  step: string;
  output: Json;
  attempts: number;
  duration_ms: number;
  /** The last step: the run completes in the same statement. */
  final: boolean;
}

export interface FailureItem {
  run_id: string;
  step_index: number;
  step: string;
  error: StoredError;
  attempts: number;
  duration_ms: number;
  /** When to try again; null: the run fails (dead letter). */
  retry_at: string | null;
}

/** Exported for the plan test (test/db/engine/claim-plan.test.ts). */
export const CLAIM_SQL = `
WITH candidates AS (
  SELECT r.id, r.started_at FROM walflow.runs r
  WHERE r.status IN ('queued', 'waiting') AND r.run_at <= now()
    AND r.pipeline = $1
    -- One run per key at a time, in start order: only the oldest unfinished run of a key is
    -- runnable. (A scalar subquery keeps this a per-row index probe whatever the statistics say.)
    -- "<=" means "=" here (r is itself unfinished, so the minimum is at most r.seq), but for "="
    -- on a unique column the planner expects almost no row to pass: with analyzed statistics it
    -- then sorts the whole queue (30,000 queued), or reads the index but costs the claim above
    -- jit_above_cost and JIT-compiles it on every call (150,000 queued: 0.3-0.7 s instead of
    -- 25-40 ms per 1,000 claimed). For "<=" it expects a third to pass.
    AND (r.key IS NULL OR r.seq <= (
      SELECT min(o.seq) FROM walflow.runs o
      WHERE o.key = r.key AND o.pipeline = r.pipeline AND o.status IN ('queued', 'waiting', 'running')))
  ORDER BY r.run_at, r.seq
  LIMIT $2
  FOR UPDATE SKIP LOCKED
), resume AS (
  -- Progress is the checkpoints: resume after the last one. A run never claimed before has none,
  -- and most claims are of such runs: they skip the look-up.
  SELECT c.id, coalesce(last.step_index + 1, 0) AS step_index, last.output
  FROM candidates c
  LEFT JOIN LATERAL (
    SELECT s.step_index, s.output FROM walflow.steps s
     WHERE c.started_at IS NOT NULL AND s.run_id = c.id ORDER BY s.step_index DESC LIMIT 1
  ) last ON true
)
UPDATE walflow.runs r
   SET status = 'running',
       -- Attempts count per step: reaching a new step starts again at 1.
       attempt = CASE WHEN m.step_index > r.step_index THEN 1 ELSE r.attempt + 1 END,
       retry_base = CASE WHEN m.step_index > r.step_index THEN 0 ELSE r.retry_base END,
       step_index = m.step_index,
       lease_owner = $3, lease_expires_at = now() + $4 * interval '1 millisecond',
       started_at = coalesce(r.started_at, now()), updated_at = now()
  FROM resume m
 WHERE r.id = m.id
RETURNING r.id, r.pipeline, r.key, r.input, r.step_index, r.attempt, r.retry_base, m.output AS prev_output`;

/**
 * Checkpoints. Two fences keep a step's result from counting twice or after a cancel:
 * - walflow.steps' primary key: if two workers ever execute the same step (a lease expired under a
 *   slow worker), the second checkpoint conflicts and takes no effect (nor do its ctx.tx writes);
 * - walflow.cancelled_running: a run cancelled mid-step takes no checkpoint (see sql/migrations/0005_cancel_fence.sql and sql/definitions/functions/cancel.sql).
 * The last step's checkpoint completes the run in the same statement. The fast form is a plain
 * INSERT, which costs about half of ON CONFLICT DO NOTHING; a conflict makes it fail as a whole,
 * and the batch is then written again in the safe form, which skips the conflicting rows.
 */
function checkpointSql(onConflict: string, result: string): string {
  return `
WITH d AS (
  SELECT * FROM ROWS FROM (unnest($1::uuid[], $2::int[], $3::text[]), jsonb_array_elements($4::jsonb), unnest($5::int[], $6::int[], $7::boolean[]))
    AS x(run_id, step_index, step, output, attempts, duration_ms, final)
), ins AS (
  INSERT INTO walflow.steps (run_id, step_index, step, output, attempts, started_at, finished_at)
  SELECT d.run_id, d.step_index, d.step, d.output, d.attempts, now() - d.duration_ms * interval '1 millisecond', now()
    FROM d
   WHERE NOT EXISTS (SELECT 1 FROM walflow.cancelled_running c WHERE c.run_id = d.run_id)
  ${onConflict}
  RETURNING run_id, step_index
), done AS (
  UPDATE walflow.runs r
     SET status = 'completed', step_index = d.step_index + 1, finished_at = now(), updated_at = now(),
         lease_owner = NULL, lease_expires_at = NULL, error = NULL
    FROM d JOIN ins ON ins.run_id = d.run_id
   WHERE d.final AND r.id = d.run_id AND r.status = 'running'
)
${result}`;
}
// Without a conflict every row is written but those of cancelled runs: return just those (almost
// always none), rather than every written id.
/** Exported for bench:engine's SQL ceiling (the engine's statements looped inside the server). */
export const CHECKPOINT_FAST_SQL = checkpointSql('', 'SELECT d.run_id FROM d JOIN walflow.cancelled_running c ON c.run_id = d.run_id');
const CHECKPOINT_SAFE = checkpointSql('ON CONFLICT (run_id, step_index) DO NOTHING', 'SELECT run_id FROM ins');

/** Which checkpoints of a batch took effect, and which could not be written because of their item. */
export interface Applied {
  has(runId: string): boolean;
  errorOf?(runId: string): Error | undefined;
}

/**
 * The outputs as one JSON array. An output JSON cannot hold (a BigInt, a cycle) must fail its own
 * step, not the whole batch: such items are left out and reported.
 */
function outputsJson(items: CheckpointItem[]): { json: string; valid: CheckpointItem[]; invalid: Map<string, Error> } {
  try {
    return { json: JSON.stringify(items.map((i) => i.output ?? null)), valid: items, invalid: new Map() };
  } catch {
    const invalid = new Map<string, Error>();
    const parts: string[] = [];
    const valid: CheckpointItem[] = [];
    for (const i of items) {
      try {
        parts.push(JSON.stringify(i.output ?? null));
        valid.push(i);
      } catch (err) {
        invalid.set(i.run_id, new OutputNotJsonError(`step "${i.step}" returned a value that cannot be stored as JSON: ${(err as Error).message}`));
      }
    }
    return { json: `[${parts.join(',')}]`, valid, invalid };
  }
}

/** Failed attempts: fenced on the lease, since they change what happens to the run next. */
const FAIL = `
WITH d AS (
  SELECT * FROM json_to_recordset($1::json) AS x(run_id uuid, step_index int, step text, error jsonb,
    attempts int, duration_ms int, retry_at timestamptz)
), owned AS (
  UPDATE walflow.runs r
     SET status = CASE WHEN d.retry_at IS NULL THEN 'failed' ELSE 'waiting' END,
         step_index = d.step_index, attempt = d.attempts,
         run_at = coalesce(d.retry_at, r.run_at),
         error = d.error, lease_owner = NULL, lease_expires_at = NULL,
         finished_at = CASE WHEN d.retry_at IS NULL THEN now() END, updated_at = now()
    FROM d
   WHERE r.id = d.run_id AND r.lease_owner = $2 AND r.status = 'running'
  RETURNING r.id
), recorded AS (
  -- Each execution has its own entry. The one conflict left is an exhausted budget reported as the
  -- last attempt, whose entry (the reaper's record of a lost execution) stays as it was.
  INSERT INTO walflow.step_errors (run_id, step_index, step, attempt, error, started_at, retry_at)
  SELECT d.run_id, d.step_index, d.step, d.attempts, d.error, now() - d.duration_ms * interval '1 millisecond', d.retry_at
    FROM d JOIN owned o ON o.id = d.run_id
  ON CONFLICT (run_id, step_index, attempt) DO NOTHING
)
SELECT id AS run_id FROM owned`;

/** Claims up to `limit` runnable runs of one pipeline (per-pipeline claims keep one pipeline's backlog from starving another). */
export async function claimRuns(db: Queryable, pipeline: string, limit: number, owner: string, leaseMs: number): Promise<ClaimedRun[]> {
  const { rows } = await db.query<ClaimedRun>(CLAIM_SQL, [pipeline, limit, owner, leaseMs]);
  return rows;
}

/**
 * Writes checkpoints; returns the ids whose checkpoint took effect. `inTransaction`: the caller's
 * transaction (a step's ctx.tx) must survive a conflict, so the safe form is used directly.
 */
export async function writeCheckpoints(db: Queryable, all: CheckpointItem[], inTransaction = false): Promise<Applied> {
  const { json, valid: items, invalid } = outputsJson(all);
  const applied = await writeValid(db, items, json, inTransaction);
  if (invalid.size === 0) return applied;
  return { has: (id) => !invalid.has(id) && applied.has(id), errorOf: (id) => invalid.get(id) };
}

async function writeValid(db: Queryable, items: CheckpointItem[], outputs: string, inTransaction: boolean): Promise<Applied> {
  if (items.length === 0) return NONE;
  // Column arrays rather than one JSON document of records: Postgres parses them about a third
  // faster. The outputs, though, go as one JSON array: one stringify and one parse, where a jsonb[]
  // literal costs an escape in Node and an unescape plus a parse per element in Postgres.
  const params = [
    plainArray(items.map((i) => i.run_id)),
    plainArray(items.map((i) => i.step_index)),
    textArray(items.map((i) => i.step)),
    outputs,
    plainArray(items.map((i) => i.attempts)),
    plainArray(items.map((i) => i.duration_ms)),
    boolArray(items.map((i) => i.final)),
  ];
  if (!inTransaction) {
    try {
      const { rows } = await db.query<{ run_id: string }>(CHECKPOINT_FAST_SQL, params);
      if (rows.length === 0) return ALL;
      const fenced = new Set(rows.map((r) => r.run_id));
      return { has: (id) => !fenced.has(id) };
    } catch (err) {
      if ((err as { code?: string }).code !== '23505') throw err;
    }
  }
  const { rows } = await db.query<{ run_id: string }>(CHECKPOINT_SAFE, params);
  return new Set(rows.map((r) => r.run_id));
}

const ALL: Applied = { has: () => true };
const NONE: Applied = { has: () => false };

/**
 * Completes runs whose every step is checkpointed but that are not marked completed: the last
 * checkpoint landed while the run was briefly not running (its lease had been reaped), and the
 * worker that claimed it again found nothing left to do.
 */
export async function completeRuns(db: Queryable, ids: string[], owner: string): Promise<Set<string>> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE walflow.runs SET status = 'completed', finished_at = now(), updated_at = now(), lease_owner = NULL, lease_expires_at = NULL, error = NULL
      WHERE id = ANY($1::uuid[]) AND lease_owner = $2 AND status = 'running' RETURNING id`,
    [ids, owner],
  );
  return new Set(rows.map((r) => r.id));
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
 * Requeues runs whose worker stopped renewing its lease (crashed, partitioned). The lost execution
 * counts as an attempt of the step it was in (the one after the last checkpoint), so that the next
 * execution's ctx.attempt says it is a redo, and a row that kills its worker every time ends up
 * failed instead of looping forever. It gets its own timeline entry (walflow.step_errors), from
 * the later of its claim and its previous checkpoint to the reaping.
 */
export const REAP_SQL = `
WITH expired AS (
  SELECT id FROM walflow.runs WHERE status = 'running' AND lease_expires_at < now() LIMIT 1000 FOR UPDATE SKIP LOCKED
), lost AS (
  SELECT r.id, r.pipeline, r.lease_owner, coalesce(last.step_index + 1, 0) AS step_index,
         CASE WHEN coalesce(last.step_index + 1, 0) > r.step_index THEN 1 ELSE r.attempt END AS attempt,
         CASE WHEN coalesce(last.step_index + 1, 0) > r.step_index THEN 0 ELSE r.retry_base END AS retry_base,
         greatest(r.updated_at, last.finished_at) AS started_at
    FROM expired e
    JOIN walflow.runs r ON r.id = e.id
    LEFT JOIN LATERAL (
      SELECT s.step_index, s.finished_at FROM walflow.steps s WHERE s.run_id = r.id ORDER BY s.step_index DESC LIMIT 1
    ) last ON true
), requeued AS (
  UPDATE walflow.runs r
     SET status = 'queued', run_at = now(), updated_at = now(), lease_owner = NULL, lease_expires_at = NULL,
         step_index = l.step_index, attempt = l.attempt, retry_base = l.retry_base,
         error = jsonb_build_object('message', 'worker ' || l.lease_owner || ' lost its lease (crashed or stalled) during attempt ' || l.attempt, 'name', 'LeaseExpired')
    FROM lost l
   WHERE r.id = l.id
  RETURNING r.id, r.error
), recorded AS (
  -- Not for a run whose every step is checkpointed (only its completion was missing).
  INSERT INTO walflow.step_errors (run_id, step_index, step, attempt, error, started_at)
  SELECT l.id, l.step_index, p.steps[l.step_index + 1], l.attempt, q.error || jsonb_build_object('step', p.steps[l.step_index + 1], 'attempt', l.attempt), l.started_at
    FROM lost l JOIN requeued q ON q.id = l.id JOIN walflow.pipelines p ON p.name = l.pipeline
   WHERE l.step_index < cardinality(p.steps)
  ON CONFLICT (run_id, step_index, attempt) DO NOTHING
)
SELECT count(*)::int AS n FROM requeued`;

export async function reapExpiredLeases(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>(REAP_SQL);
  const n = rows[0]?.n ?? 0;
  if (n) await db.query(`SELECT pg_notify('walflow_runs', 'reaped')`);
  return n;
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
     ), errors AS (
       DELETE FROM walflow.step_errors e USING gone WHERE e.run_id = gone.id
     ), fences AS (
       -- A run cancelled mid-step left its checkpoint fence behind (sql/0005): it goes with the run.
       DELETE FROM walflow.cancelled_running c USING gone WHERE c.run_id = gone.id
     )
     SELECT count(*)::int AS n FROM gone`,
    [olderThanMs, batch],
  );
  return rows[0]?.n ?? 0;
}

/** How long after its last heartbeat a dead process's row stays in walflow.workers (walflow status). */
export const DEAD_WORKER_RETENTION_MS = 3600_000;

/** Forgets processes that stopped heartbeating an hour ago (SIGKILLed, or their host is gone). */
export async function pruneDeadWorkers(db: Queryable, olderThanMs = DEAD_WORKER_RETENTION_MS): Promise<number> {
  const { rowCount } = await db.query(`DELETE FROM walflow.workers WHERE heartbeat_at < now() - $1 * interval '1 millisecond'`, [olderThanMs]);
  return rowCount ?? 0;
}

export interface StartItem {
  /** Any JSON-serializable value. */
  input: unknown;
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

export async function registerPipelines(db: Queryable, defs: { name: string; version: string; steps: string[]; source: Json | null; start_roles: string[] | null }[]): Promise<void> {
  await db.query(
    `INSERT INTO walflow.pipelines (name, version, steps, source, start_roles)
     SELECT name, version, steps, source, start_roles FROM jsonb_to_recordset($1::jsonb) AS x(name text, version text, steps text[], source jsonb, start_roles text[])
     ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, steps = EXCLUDED.steps, source = EXCLUDED.source, start_roles = EXCLUDED.start_roles, updated_at = now()
       WHERE (walflow.pipelines.version, walflow.pipelines.steps, walflow.pipelines.source, walflow.pipelines.start_roles)
             IS DISTINCT FROM (EXCLUDED.version, EXCLUDED.steps, EXCLUDED.source, EXCLUDED.start_roles)`,
    [JSON.stringify(defs)],
  );
}

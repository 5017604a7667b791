// Claiming runnable runs: the statement every worker loop runs most often.
import type { Queryable } from '../../db/queryable.js';
import type { Json } from '../../pipeline/types.js';

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
  /** Name of the last committed step: a resumed run continues after it, matched by name (docs/waits.md, "versions"). */
  prev_step: string | null;
  /** The wait the run was parked in (a resumed run only). */
  wait: ParkedWait | null;
  /** The database's time of the claim (a sleep is over when its wake time is not after it). */
  claimed_at: Date;
}

/** A row of walflow.waits, as the claim returns it. */
export interface ParkedWait {
  step_index: number;
  step: string;
  kind: 'sleep' | 'signal' | 'children' | 'repeat';
  until: string | null;
  signal: string | null;
  children: number | null;
  children_left: number | null;
  repeats: number;
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
    -- then sorts the whole queue, or reads the index but costs the claim above jit_above_cost and
    -- JIT-compiles it on every call (an order of magnitude slower: docs/benchmarks.md, "the
    -- claim's plan"). For "<=" it expects a third to pass.
    AND (r.key IS NULL OR r.seq <= (
      SELECT min(o.seq) FROM walflow.runs o
      WHERE o.key = r.key AND o.pipeline = r.pipeline AND o.status IN ('queued', 'waiting', 'running')))
  ORDER BY r.run_at, r.seq
  LIMIT $2
  FOR UPDATE SKIP LOCKED
), resume AS (
  -- Progress is the checkpoints: resume after the last one. A run never claimed before has none,
  -- and most claims are of such runs: they skip the look-up.
  -- A parked run (a wait: sleep, signal, children, repeat) also brings its wait.
  SELECT c.id, coalesce(last.step_index + 1, 0) AS step_index, last.output, last.step,
         (SELECT json_build_object('step_index', w.step_index, 'step', w.step, 'kind', w.kind, 'until', w.until,
                 'signal', w.signal, 'children', w.children, 'children_left', w.children_left, 'repeats', w.repeats)
            FROM walflow.waits w WHERE c.started_at IS NOT NULL AND w.run_id = c.id) AS wait
  FROM candidates c
  LEFT JOIN LATERAL (
    SELECT s.step_index, s.output, s.step FROM walflow.steps s
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
RETURNING r.id, r.pipeline, r.key, r.input, r.step_index, r.attempt, r.retry_base, m.output AS prev_output, m.step AS prev_step, m.wait, now() AS claimed_at`;

/** Claims up to `limit` runnable runs of one pipeline (per-pipeline claims keep one pipeline's backlog from starving another). */
export async function claimRuns(db: Queryable, pipeline: string, limit: number, owner: string, leaseMs: number): Promise<ClaimedRun[]> {
  const { rows } = await db.query<ClaimedRun>(CLAIM_SQL, [pipeline, limit, owner, leaseMs]);
  return rows;
}

// Checkpoints: a step's result made durable (group-committed, one statement per batch), and the
// completion of runs whose every step is checkpointed.
import type { Queryable } from '../../db/queryable.js';
import { OutputNotJsonError } from '../retry.js';
import type { Json } from '../../pipeline/types.js';
import { boolArray, plainArray, textArray } from '../pg-arrays.js';

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

/**
 * Checkpoints. Two fences keep a step's result from counting twice or after a cancel:
 * - walflow.steps' primary key: if two workers ever execute the same step (a lease expired under a
 *   slow worker), the second checkpoint conflicts and takes no effect (nor do its ctx.tx writes);
 * - walflow.cancelled_running: a run cancelled mid-step takes no checkpoint (see sql/migrations/0005_cancel_fence.sql and sql/definitions/functions/cancel.sql).
 * The last step's checkpoint completes the run in the same statement. The fast form is a plain
 * INSERT, which costs about half of ON CONFLICT DO NOTHING; a conflict makes it fail as a whole,
 * and the batch is then written again in the safe form, which skips the conflicting rows.
 */
function checkpointSql(onConflict: string, result: string, extra = ''): string {
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
)${extra}
${result}`;
}
// Without a conflict every row is written but those of cancelled runs: return just those (almost
// always none), rather than every written id.
/** Exported for bench:engine's SQL ceiling (the engine's statements looped inside the server). */
export const CHECKPOINT_FAST_SQL = checkpointSql('', 'SELECT d.run_id FROM d JOIN walflow.cancelled_running c ON c.run_id = d.run_id');
const CHECKPOINT_SAFE = checkpointSql('ON CONFLICT (run_id, step_index) DO NOTHING', 'SELECT run_id FROM ins');

// A sleep that is over: its checkpoint also clears the run's wait (group-committed like any other;
// a sleep needs no row lock, since nothing but time wakes it).
const CHECKPOINT_WAKE = checkpointSql('ON CONFLICT (run_id, step_index) DO NOTHING', 'SELECT run_id FROM ins',
  `, cleared AS (
  DELETE FROM walflow.waits w USING ins WHERE w.run_id = ins.run_id AND w.step_index = ins.step_index
)`);

/** Checkpoints of sleeps that are over (each clears its run's wait); returns the ids that took effect. */
export async function writeWakeCheckpoints(db: Queryable, items: CheckpointItem[]): Promise<Applied> {
  const { json, valid, invalid } = outputsJson(items);
  if (valid.length === 0) return { has: () => false, errorOf: (id) => invalid.get(id) };
  const { rows } = await db.query<{ run_id: string }>(CHECKPOINT_WAKE, [
    plainArray(valid.map((i) => i.run_id)), plainArray(valid.map((i) => i.step_index)), textArray(valid.map((i) => i.step)), json,
    plainArray(valid.map((i) => i.attempts)), plainArray(valid.map((i) => i.duration_ms)), boolArray(valid.map((i) => i.final)),
  ]);
  const done = new Set(rows.map((r) => r.run_id));
  return { has: (id) => done.has(id), errorOf: (id) => invalid.get(id) };
}

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

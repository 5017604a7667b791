// Starting runs (through walflow.start_batch, the SQL API's rule) and registering pipelines.
// The replication writer's cheaper form is ../fast-start.ts.
import type { Queryable } from '../../db/queryable.js';
import type { Json, StepDefinition } from '../../pipeline/types.js';

/** One run to start through walflow.start_batch (the replication writer's items are replication/types.ts' StartItem). */
export interface StartRequest {
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
export async function startRuns(db: Queryable, pipeline: string, items: StartRequest[]): Promise<StartResult[]> {
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

/** Makes walflow.step_slots hold one row per slot of each step's concurrency limit (none: no rows). */
export async function syncSlots(db: Queryable, pipeline: string, steps: readonly StepDefinition[]): Promise<void> {
  const limits = steps.map((s) => ({ step: s.name, n: s.concurrency ?? 0 }));
  await db.query(
    `WITH l AS (SELECT * FROM jsonb_to_recordset($2::jsonb) AS x(step text, n int)),
     del AS (DELETE FROM walflow.step_slots s WHERE s.pipeline = $1
               AND NOT EXISTS (SELECT 1 FROM l WHERE l.step = s.step AND s.slot < l.n))
     INSERT INTO walflow.step_slots (pipeline, step, slot)
     SELECT $1, l.step, g FROM l, generate_series(0, l.n - 1) g
     ON CONFLICT DO NOTHING`,
    [pipeline, JSON.stringify(limits)],
  );
}

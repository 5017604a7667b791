// Child runs: started by a parent's children step, in the parent's run transaction, idempotently
// (dedupe id child:<parent>:<step>:<i>), so a parent re-executed after a crash starts none twice.
import type { Queryable } from '../../db/queryable.js';
import type { ChildRun, Json } from '../../pipeline/types.js';

/** Starts the children; returns the names of pipelines that do not exist (nothing is started then). */
export async function insertChildren(tx: Queryable, parentId: string, stepIndex: number, children: ChildRun[]): Promise<{ unknown: string[] }> {
  const names = [...new Set(children.map((c) => c.pipeline))];
  const { rows: known } = await tx.query<{ name: string }>('SELECT name FROM walflow.pipelines WHERE name = ANY($1::text[])', [names]);
  const unknown = names.filter((n) => !known.some((k) => k.name === n));
  if (unknown.length > 0) return { unknown };
  await tx.query(
    `INSERT INTO walflow.runs (pipeline, pipeline_version, key, input, dedupe_id, parent_run_id, parent_step_index, child_index)
     SELECT c.pipeline, p.version, c.key, c.input, 'child:' || $1::text || ':' || $2::text || ':' || (c.ord - 1), $1::uuid, $2::integer, c.ord - 1
       FROM ROWS FROM (jsonb_to_recordset($3::jsonb) AS (pipeline text, input jsonb, key text)) WITH ORDINALITY AS c(pipeline, input, key, ord)
       JOIN walflow.pipelines p ON p.name = c.pipeline
     ON CONFLICT (pipeline, dedupe_id, (coalesce(started_by, ''))) WHERE dedupe_id IS NOT NULL DO NOTHING`,
    [parentId, stepIndex, JSON.stringify(children.map((c) => ({ pipeline: c.pipeline, input: c.input, key: c.key ?? null })))],
  );
  for (const n of names) await tx.query('SELECT pg_notify($1, $2)', ['walflow_runs', n]);
  return { unknown: [] };
}

export interface ChildState {
  child_index: number;
  id: string;
  status: string;
  error: Json | null;
  output: Json | null;
  finished_at: string | null;
}

/** The children of a parent's step, in order, with each one's result (its last step's output). */
export async function readChildren(tx: Queryable, parentId: string, stepIndex: number): Promise<ChildState[]> {
  const { rows } = await tx.query<ChildState>(
    `SELECT r.child_index, r.id, r.status, r.error, to_json(r.finished_at)#>>'{}' AS finished_at,
            CASE WHEN r.status = 'completed' THEN (SELECT s.output FROM walflow.steps s WHERE s.run_id = r.id ORDER BY s.step_index DESC LIMIT 1) END AS output
       FROM walflow.runs r WHERE r.parent_run_id = $1 AND r.parent_step_index = $2 ORDER BY r.child_index`,
    [parentId, stepIndex],
  );
  return rows;
}

/** Cancels the unfinished children (and their descendants) of a parent's step: walflow.cancel_tree. */
export async function cancelChildren(tx: Queryable, ids: string[]): Promise<void> {
  if (ids.length > 0) await tx.query('SELECT walflow.cancel_tree(id) FROM unnest($1::uuid[]) AS t(id)', [ids]);
}

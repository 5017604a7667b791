// A run's place among the waits, as `walflow inspect` and the console show it: what it is parked
// on (walflow.waits), the child runs its steps started, and its parent.
import type { Queryable } from '../db/queryable.js';
import { num } from './output.js';

export interface WaitRow {
  step: string; kind: 'sleep' | 'signal' | 'children' | 'repeat'; until: Date | null; signal: string | null;
  children: number | null; children_left: number | null; mode: string | null; repeats: number; since: Date;
}
/** A child (with the parent's step that started it) or a parent. */
export interface FamilyRun { id: string; pipeline: string; status: string; child_index: number | null; step_index?: number }
export interface RunFamily {
  waitingFor: WaitRow | null;
  /** The first `childLimit` children, in start order; `childCount` is all of them. */
  children: FamilyRun[];
  childCount: number;
  parent: FamilyRun | null;
}

/** Four short reads, one after the other: `db` may be a single client (the CLI's), which runs one query at a time. */
export async function readRunFamily(db: Queryable, id: string, status: string, childLimit: number): Promise<RunFamily> {
  // A wait row is deleted with its step's checkpoint; only a waiting run is parked in one.
  const w = await db.query(`SELECT step, kind, until, signal, children, children_left, mode, repeats, since FROM walflow.waits
               WHERE run_id = $1 AND $2 = 'waiting'`, [id, status]);
  const c = await db.query(`SELECT parent_step_index AS step_index, child_index, id, pipeline, status FROM walflow.runs WHERE parent_run_id = $1
               ORDER BY parent_step_index, child_index LIMIT $2`, [id, childLimit]);
  const n = await db.query('SELECT count(*) AS n FROM walflow.runs WHERE parent_run_id = $1', [id]);
  const p = await db.query(`SELECT p.id, p.pipeline, p.status, r.child_index FROM walflow.runs r JOIN walflow.runs p ON p.id = r.parent_run_id
               WHERE r.id = $1`, [id]);
  return {
    waitingFor: (w.rows[0] as WaitRow | undefined) ?? null,
    children: c.rows as FamilyRun[],
    childCount: num(n.rows[0]?.n) ?? 0,
    parent: (p.rows[0] as FamilyRun | undefined) ?? null,
  };
}

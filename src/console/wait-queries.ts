// What the console reads and does for durable waits: what a run is parked on (walflow.waits, as
// `walflow inspect` shows it), its child runs and its parent, the parked counts per pipeline
// (walflow.status), and sending a signal (walflow.signal: the same checks as SQL and the CLI).
import type pg from 'pg';
import { num } from '../ops/output.js';

export interface WaitRow {
  step: string; kind: 'sleep' | 'signal' | 'children' | 'repeat'; until: Date | null; signal: string | null;
  children: number | null; children_left: number | null; mode: string | null; repeats: number; since: Date;
}
export interface FamilyRun { id: string; pipeline: string; status: string; child_index: number | null }
export interface RunFamily {
  waitingFor: WaitRow | null;
  /** The first CHILDREN_SHOWN children, in start order; `childCount` is all of them. */
  children: FamilyRun[];
  childCount: number;
  parent: FamilyRun | null;
}
/** Set by the signal POST: the outcome shown above the form (and the values typed, kept on an error). */
export interface SignalNotice { ok: boolean; text: string; name?: string; payload?: string }
export interface ParkedCounts { sleeping: number; awaiting_signal: number; awaiting_children: number; repeating: number }

export const CHILDREN_SHOWN = 100;

export async function readRunFamily(db: pg.Pool, id: string, status: string): Promise<RunFamily> {
  const [w, c, n, p] = await Promise.all([
    // A waits row outlives nothing: it is deleted with the checkpoint, but only a waiting run is parked.
    db.query(`SELECT step, kind, until, signal, children, children_left, mode, repeats, since FROM walflow.waits
               WHERE run_id = $1 AND $2 = 'waiting'`, [id, status]),
    db.query(`SELECT id, pipeline, status, child_index FROM walflow.runs WHERE parent_run_id = $1
               ORDER BY parent_step_index, child_index LIMIT ${CHILDREN_SHOWN}`, [id]),
    db.query('SELECT count(*) AS n FROM walflow.runs WHERE parent_run_id = $1', [id]),
    db.query(`SELECT p.id, p.pipeline, p.status, r.child_index FROM walflow.runs r JOIN walflow.runs p ON p.id = r.parent_run_id
               WHERE r.id = $1`, [id]),
  ]);
  return { waitingFor: (w.rows[0] as WaitRow | undefined) ?? null, children: c.rows as FamilyRun[], childCount: num(n.rows[0]?.n) ?? 0, parent: (p.rows[0] as FamilyRun | undefined) ?? null };
}

/** Parked runs by what they wait for: of one pipeline, or of all (pipeline undefined). */
export async function readParkedCounts(db: pg.Pool, pipeline: string | undefined): Promise<ParkedCounts> {
  const { rows: [r] } = await db.query(
    `SELECT coalesce(sum(sleeping), 0) AS sleeping, coalesce(sum(awaiting_signal), 0) AS awaiting_signal,
            coalesce(sum(awaiting_children), 0) AS awaiting_children, coalesce(sum(repeating), 0) AS repeating
       FROM walflow.status WHERE $1::text IS NULL OR pipeline = $1`, [pipeline ?? null]);
  return { sleeping: num(r.sleeping)!, awaiting_signal: num(r.awaiting_signal)!, awaiting_children: num(r.awaiting_children)!, repeating: num(r.repeating)! };
}

/**
 * Sends a signal; the refusal of walflow.signal (unknown or finished run, no name) comes back as a
 * message for the page rather than an exception, so the operator sees it next to the form.
 */
export async function sendRunSignal(db: pg.Pool, id: string, name: string, payloadText: string): Promise<{ ok: true; signal: number } | { ok: false; error: string }> {
  if (!name.trim()) return { ok: false, error: 'A signal needs a name (the name a step waits for: waitFor.signal).' };
  let payload: unknown = null;
  if (payloadText.trim()) {
    try {
      payload = JSON.parse(payloadText);
    } catch (err) {
      return { ok: false, error: `The payload is not JSON: ${(err as Error).message}. Leave it empty for none, or write e.g. {"approved": true}.` };
    }
  }
  try {
    const { rows } = await db.query('SELECT walflow.signal($1, $2, $3::jsonb) AS id', [id, name.trim(), JSON.stringify(payload)]);
    return { ok: true, signal: num(rows[0].id)! };
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'WF002' || e.code === 'WF003' || e.code === 'WF004') return { ok: false, error: (e.message ?? '').replace(/^walflow: /, '') };
    throw err;
  }
}

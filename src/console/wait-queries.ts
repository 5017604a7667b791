// What the console reads and does for durable waits: what a run is parked on, its child runs and
// its parent (src/ops/run-family.ts, as `walflow inspect` shows them), the parked counts per
// pipeline (walflow.status), and sending a signal (walflow.signal: the same checks as SQL and the CLI).
import type pg from 'pg';
import { num } from '../ops/output.js';
import { readRunFamily as readFamily, type RunFamily } from '../ops/run-family.js';

/** Set by the signal POST: the outcome shown above the form (and the values typed, kept on an error). */
export interface SignalNotice { ok: boolean; text: string; name?: string; payload?: string }
export interface ParkedCounts { sleeping: number; awaiting_signal: number; awaiting_children: number; repeating: number }

/** Children listed on a run's page (their count is shown in full). */
export const CHILDREN_SHOWN = 100;

export type { FamilyRun, RunFamily, WaitRow } from '../ops/run-family.js';

export function readRunFamily(db: pg.Pool, id: string, status: string): Promise<RunFamily> {
  return readFamily(db, id, status, CHILDREN_SHOWN);
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

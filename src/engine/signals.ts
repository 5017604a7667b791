// Sending signals from TypeScript: the same SQL functions as psql and the CLI, on any connection or
// transaction the caller passes (a signal sent inside a transaction is sent only if it commits).
import type { Queryable } from '../db/queryable.js';
import type { Json } from '../pipeline/types.js';

export type SignalTarget = { run: string } | { pipeline: string; key: string };

/** Sends signal `name` with `payload` to a run, or to a key's current run; returns the signal's id. */
export async function sendSignal(db: Queryable, target: SignalTarget, name: string, payload: Json = null): Promise<number> {
  const body = JSON.stringify(payload);
  const { rows } = 'run' in target
    ? await db.query<{ id: string }>('SELECT walflow.signal($1, $2, $3::jsonb) AS id', [target.run, name, body])
    : await db.query<{ id: string }>('SELECT walflow.signal_key($1, $2, $3, $4::jsonb) AS id', [target.pipeline, target.key, name, body]);
  return Number(rows[0]!.id);
}

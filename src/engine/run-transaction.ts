// A transaction on one run that this worker holds: it begins by locking the run's row (and checking
// the lease), so that what it decides (park, consume a signal, checkpoint) cannot race a signal, a
// cancel or another worker. Used by the waits and by checkpoints that must change more than the
// steps table; plain checkpoints take the group-committed path instead.
import type pg from 'pg';
import { transaction } from '../db/transaction.js';

export type InRun<T> = { owned: true; value: T } | { owned: false };

/**
 * Runs `work` in a transaction holding the run's row lock, if this worker's lease is still valid
 * ('running', lease owner). `work` returns whether to commit and its value (returned either way while
 * the run is owned); an error rolls back and is rethrown.
 */
export async function inRunTransaction<T>(
  pool: pg.Pool, runId: string, owner: string,
  work: (tx: pg.PoolClient) => Promise<{ commit: boolean; value: T }>,
): Promise<InRun<T>> {
  return transaction<InRun<T>>(pool, async (tx) => {
    const { rowCount } = await tx.query(
      `SELECT 1 FROM walflow.runs WHERE id = $1 AND lease_owner = $2 AND status = 'running' FOR NO KEY UPDATE`, [runId, owner]);
    if (!rowCount) return { commit: false, value: { owned: false } };
    const { commit, value } = await work(tx);
    return { commit, value: { owned: true, value } };
  });
}

// A transaction on one run that this worker holds: it begins by locking the run's row (and checking
// the lease), so that what it decides (park, consume a signal, checkpoint) cannot race a signal, a
// cancel or another worker. Used by the waits and by checkpoints that must change more than the
// steps table; plain checkpoints take the group-committed path instead.
import type pg from 'pg';

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
  const tx = await pool.connect();
  let released = false;
  const release = (err?: Error): void => {
    if (!released) tx.release(err);
    released = true;
  };
  try {
    await tx.query('BEGIN');
    const { rowCount } = await tx.query(
      `SELECT 1 FROM walflow.runs WHERE id = $1 AND lease_owner = $2 AND status = 'running' FOR NO KEY UPDATE`, [runId, owner]);
    if (!rowCount) {
      await tx.query('ROLLBACK');
      release();
      return { owned: false };
    }
    const { commit, value } = await work(tx);
    await tx.query(commit ? 'COMMIT' : 'ROLLBACK');
    release();
    return { owned: true, value };
  } catch (err) {
    await tx.query('ROLLBACK').catch(() => undefined);
    release(err as Error);
    throw err;
  }
}

// Running a transaction on a pooled connection: BEGIN, the work, COMMIT or ROLLBACK, the connection
// released — and destroyed after an error, so that a broken connection is not handed out again.
import type pg from 'pg';

/** A checked-out client has no pool listener: a connection that dies must fail its query, not the process. */
function ignoreClientError(): void {
  /* reported by the failing query */
}

/** Runs `work` in a transaction; it says whether to commit, and its value is returned either way. An error rolls back and is rethrown. */
export async function transaction<T>(pool: pg.Pool, work: (c: pg.PoolClient) => Promise<{ commit: boolean; value: T }>): Promise<T> {
  const c = await pool.connect();
  c.on('error', ignoreClientError);
  try {
    await c.query('BEGIN');
    const { commit, value } = await work(c);
    await c.query(commit ? 'COMMIT' : 'ROLLBACK');
    c.removeListener('error', ignoreClientError);
    c.release();
    return value;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    c.removeListener('error', ignoreClientError);
    c.release(err as Error);
    throw err;
  }
}

/** Runs `work` in a transaction that commits when it returns. */
export function inTransaction<T>(pool: pg.Pool, work: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  return transaction(pool, async (c) => ({ commit: true, value: await work(c) }));
}

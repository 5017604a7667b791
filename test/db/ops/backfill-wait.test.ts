// What a backfill waits for before it reads: the transactions open in its own database when it
// starts (one of them may have written the table before it joined the publication, so the stream
// decodes it without the table), and nothing else. A transaction in another database of the same
// server cannot have written the table: it must not hold the backfill up (under a busy shared
// server such transactions delayed live reloads' initial backfills by minutes).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { backfill, waitForRunningTransactions, type BackfillProgress } from '../../../src/ops/backfill.js';
import { definePipeline } from '../../../src/pipeline/define.js';
import { useTestDatabase, withAdmin } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';
import { asRole } from '../chaos/support/roles.js';

const db = useTestDatabase();
/** Another database on the same server, as another application (or test file) would have. */
const other = useTestDatabase();
const items = definePipeline({ name: 'bw-items', source: { table: 'bw_items', backfill: false }, steps: [{ name: 'noop', run: () => null }] });
let engine: Engine;
/** A leader with least privilege is neither superuser nor pg_read_all_stats. */
const PLAIN = `bw_plain_${randomBytes(3).toString('hex')}`;
const PASSWORD = 'bw-password';

beforeAll(async () => {
  await db.pool.query('CREATE TABLE bw_items (id int PRIMARY KEY)');
  await db.pool.query('INSERT INTO bw_items SELECT generate_series(1, 5)');
  await other.pool.query('CREATE TABLE elsewhere (id int)');
  engine = new Engine({ url: db.url, pipelines: [items] });
  await engine.register();
  await withAdmin((a) => a.query(`CREATE ROLE ${PLAIN} LOGIN PASSWORD '${PASSWORD}'`));
});

afterAll(async () => {
  await engine.stop();
  await withAdmin(async (a) => {
    await a.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [PLAIN]);
    await a.query(`DROP ROLE IF EXISTS ${PLAIN}`);
  });
});

/** A transaction that has written (so it holds an xid), left open. */
async function openWriter(url: string, sql: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query('BEGIN');
  await c.query(sql);
  return c;
}

describe('the backfill waits for the open transactions of its own database only', () => {
  it('a transaction open in another database of the server does not hold it up', async () => {
    const elsewhere = await openWriter(other.url, 'INSERT INTO elsewhere VALUES (1)');
    let waited: number | undefined;
    let result: BackfillProgress | undefined;
    const running = backfill(engine, items, { restart: true, pollMs: 50, onWaiting: (n) => (waited = n) }).then((r) => (result = r));
    try {
      await waitFor('the backfill finished while the other database\'s transaction is still open', async () => result, 30_000);
      expect(result).toMatchObject({ done: 5, finished: true });
      expect(waited).toBeUndefined();
    } finally {
      await elsewhere.query('COMMIT');
      await elsewhere.end();
      await running;
    }
  });

  it('a transaction open in this database holds it until it ends, and the backfill sees its rows', async () => {
    const writer = await openWriter(db.url, 'INSERT INTO bw_items VALUES (6)');
    let waited: number | undefined;
    let result: BackfillProgress | undefined;
    const running = backfill(engine, items, { restart: true, pollMs: 50, onWaiting: (n) => (waited = n) }).then((r) => (result = r));
    try {
      await waitFor('the backfill waiting for the open transaction', async () => waited);
      expect(waited).toBe(1);
      expect(result).toBeUndefined();
      await writer.query('COMMIT');
      await running;
    } finally {
      await writer.end();
    }
    expect(result).toMatchObject({ done: 6, finished: true });
    const keys = (await db.pool.query<{ key: string }>(`SELECT DISTINCT key FROM walflow.runs WHERE pipeline = 'bw-items' ORDER BY key`)).rows.map((r) => r.key);
    expect(keys).toEqual(['1', '2', '3', '4', '5', '6']);
  });

  it('a role without privileges on other sessions still sees another role\'s open transaction (pg_locks, pg_stat_activity\'s database)', async () => {
    const writer = await openWriter(db.url, 'INSERT INTO bw_items VALUES (7)');
    try {
      await asRole(db.url, PLAIN, PASSWORD, async (c) => {
        let waited: number | undefined;
        let ended = false;
        const waiting = waitForRunningTransactions(c, undefined, 50, (n) => (waited = n)).then(() => (ended = true));
        await waitFor('the plain role waiting for the open transaction', async () => waited);
        expect(ended).toBe(false);
        await writer.query('COMMIT');
        await waiting;
      });
    } finally {
      await writer.end();
    }
  });
});

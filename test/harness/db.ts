// Per-file databases cloned from the migrated template, and the replication-slot leak check.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, inject } from 'vitest';
import { TEMPLATE_DB } from './names.js';

export interface TestDatabase {
  /** Connection URL of this file's own database. */
  readonly url: string;
  readonly name: string;
  /** A shared pool on this database, closed after the file. */
  readonly pool: pg.Pool;
  /** The server's admin URL (its maintenance database). */
  readonly adminUrl: string;
  /** Where the server comes from: 'embedded' | 'testcontainers' | 'external'. */
  readonly serverKind: string;
}

export function databaseUrl(adminUrl: string, db: string): string {
  const u = new URL(adminUrl);
  u.pathname = `/${db}`;
  return u.toString();
}

export async function withAdmin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: inject('walflowAdminUrl') });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export async function slotsOf(client: pg.Client | pg.Pool, db: string): Promise<string[]> {
  const { rows } = await client.query<{ slot_name: string }>(
    'SELECT slot_name FROM pg_replication_slots WHERE database = $1 ORDER BY slot_name',
    [db],
  );
  return rows.map((r) => r.slot_name);
}

export class SlotLeakError extends Error {
  override name = 'SlotLeakError';
}

/**
 * Drops slots of `db` that are not in `before` and throws if there were any: a leaked slot pins
 * WAL on the server forever, so the test that leaked it fails.
 */
export async function assertNoLeakedSlots(client: pg.Client | pg.Pool, db: string, before: string[] = []): Promise<void> {
  const leaked = (await slotsOf(client, db)).filter((s) => !before.includes(s));
  if (leaked.length === 0) return;
  for (const slot of leaked) {
    // An active slot belongs to a still-running consumer; terminate it so the slot can go.
    await client.query(
      `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`,
      [slot],
    );
    await client.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => undefined);
  }
  throw new SlotLeakError(`test leaked replication slot(s) ${leaked.join(', ')} in ${db}: drop them (or stop the consumer that owns them) before the test ends`);
}

/** Creates a fresh, migrated database for the calling test file; every test is checked for slot leaks. */
export function useTestDatabase(opts: { checkSlots?: boolean } = {}): TestDatabase {
  const adminUrl = inject('walflowAdminUrl');
  const name = `wf_test_${randomBytes(5).toString('hex')}`;
  const url = databaseUrl(adminUrl, name);
  const pool = new pg.Pool({ connectionString: url, max: 8 });
  let slotsBefore: string[] = [];

  beforeAll(async () => {
    await withAdmin((c) => c.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DB}`));
  });
  if (opts.checkSlots !== false) {
    beforeEach(async () => {
      slotsBefore = await slotsOf(pool, name);
    });
    afterEach(async () => {
      await assertNoLeakedSlots(pool, name, slotsBefore);
    });
  }
  afterAll(async () => {
    await pool.end();
    await withAdmin(async (c) => {
      for (const slot of await slotsOf(c, name)) await c.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => undefined);
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    });
  });
  return { url, name, pool, adminUrl, serverKind: inject('walflowServerKind') };
}

// Empty (unmigrated) databases for tests of migrating itself, dropped after the file, and a
// one-connection helper for them.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, inject } from 'vitest';
import { databaseUrl, withAdmin } from './db.js';

/** Returns a factory of empty databases (named `<prefix>_<random>`) that are dropped after the file. */
export function useEmptyDatabases(prefix: string): () => Promise<string> {
  const created: string[] = [];
  afterAll(async () => {
    await withAdmin(async (c) => {
      for (const db of created) await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    });
  });
  return async () => {
    const name = `${prefix}_${randomBytes(4).toString('hex')}`;
    await withAdmin((c) => c.query(`CREATE DATABASE ${name}`));
    created.push(name);
    return databaseUrl(inject('walflowAdminUrl'), name);
  };
}

export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

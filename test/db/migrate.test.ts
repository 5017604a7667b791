import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMigrations, migrate, SchemaTooNewError } from '../../src/db/migrate.js';
import { useEmptyDatabases, withClient } from '../harness/empty-databases.js';

const emptyDatabase = useEmptyDatabases('wf_mig');

describe('migrate', () => {
  it('applies every migration once; a second run is a no-op', async () => {
    const url = await emptyDatabase();
    const first = await withClient(url, (c) => migrate(c));
    expect(first.applied.map((m) => m.version)).toEqual(loadMigrations().map((m) => m.version));
    const second = await withClient(url, (c) => migrate(c));
    expect(second.applied).toEqual([]);
    const { rows } = await withClient(url, (c) => c.query('SELECT count(*)::int AS n FROM walflow.schema_migrations'));
    expect(rows[0].n).toBe(loadMigrations().length);
  });

  it('12 concurrent migrators: exactly one applies each file, the others carry on', async () => {
    const url = await emptyDatabase();
    const results = await Promise.all(Array.from({ length: 12 }, () => withClient(url, (c) => migrate(c))));
    const appliedCounts = results.map((r) => r.applied.length);
    expect(appliedCounts.filter((n) => n > 0)).toHaveLength(1);
    expect(appliedCounts.reduce((a, b) => a + b, 0)).toBe(loadMigrations().length);
    expect(new Set(results.map((r) => r.current))).toEqual(new Set([loadMigrations().length]));
  });

  it('refuses a database whose schema is newer than the code', async () => {
    const url = await emptyDatabase();
    await withClient(url, (c) => migrate(c));
    const future = loadMigrations().length + 1;
    await withClient(url, (c) => c.query(`INSERT INTO walflow.schema_migrations (version, name, checksum) VALUES ($1, 'from_the_future', 'x')`, [future]));
    const err = await withClient(url, (c) => migrate(c)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaTooNewError);
    expect((err as Error).message).toMatch(new RegExp(`version ${future}.*only knows up to ${future - 1}`));
  });

  it('refuses a migration edited after it was applied, and rolls back a failing one whole', async () => {
    const url = await emptyDatabase();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wf-mig-'));
    fs.writeFileSync(path.join(dir, '0001_one.sql'), 'CREATE TABLE walflow.t1 (id int);');
    await withClient(url, (c) => migrate(c, loadMigrations(dir), []));

    fs.writeFileSync(path.join(dir, '0001_one.sql'), 'CREATE TABLE walflow.t1 (id bigint);');
    await expect(withClient(url, (c) => migrate(c, loadMigrations(dir), []))).rejects.toThrow(/changed after it was applied/);

    fs.writeFileSync(path.join(dir, '0001_one.sql'), 'CREATE TABLE walflow.t1 (id int);');
    fs.writeFileSync(path.join(dir, '0002_two.sql'), 'CREATE TABLE walflow.t2 (id int); SELECT 1/0;');
    await expect(withClient(url, (c) => migrate(c, loadMigrations(dir), []))).rejects.toThrow(/migration 2 \(two\) failed: division by zero/);
    const { rows } = await withClient(url, (c) => c.query(`SELECT to_regclass('walflow.t2') AS t2, (SELECT max(version) FROM walflow.schema_migrations) AS v`));
    expect(rows[0]).toEqual({ t2: null, v: 1 });
    fs.rmSync(dir, { recursive: true });
  });
});

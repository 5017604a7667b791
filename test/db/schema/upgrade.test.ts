// The schema layout (sql/migrations + sql/definitions) against databases made before it: a database
// migrated by the 0001–0007 files as they were (kept in test/fixtures/schema-0007, applied the way
// the old migrator did) upgrades cleanly, keeps its runs, and ends up with exactly the schema a new
// database gets; concurrent migrators stay safe; amendments and changed definitions behave.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadDefinitions, loadMigrations, migrate } from '../../../src/db/migrate.js';
import { useEmptyDatabases, withClient } from '../../harness/empty-databases.js';
import { schemaFingerprint } from './support/fingerprint.js';

const LEGACY_DIR = fileURLToPath(new URL('../../fixtures/schema-0007/', import.meta.url));
const emptyDatabase = useEmptyDatabases('wf_upg');

/** What walflow up to sql/0007 did: each file in its own transaction, recorded with its checksum. */
async function migrateLikeLegacy(url: string): Promise<void> {
  await withClient(url, async (c) => {
    await c.query('CREATE SCHEMA walflow');
    await c.query(`CREATE TABLE walflow.schema_migrations (version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    for (const m of loadMigrations(LEGACY_DIR)) {
      await c.query('BEGIN');
      await c.query(m.sql);
      await c.query('INSERT INTO walflow.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
      await c.query('COMMIT');
    }
  });
}

describe('schema layout upgrade', () => {
  it('a database made by the 0001–0007 files upgrades with its runs intact and equals a new one', async () => {
    const old = await emptyDatabase();
    await migrateLikeLegacy(old);
    const before = await withClient(old, async (c) => {
      await c.query(`INSERT INTO walflow.pipelines (name, version, steps) VALUES ('p', 'v1', '{a,b}')`);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await c.query(`SELECT walflow.start('p', $1, $2) AS id`, [{ i }, `k${i}`])).rows[0].id);
      await c.query(`INSERT INTO walflow.steps (run_id, step_index, step, output, attempts, started_at, finished_at) VALUES ($1, 0, 'a', '{"ok":1}', 1, now(), now())`, [ids[0]]);
      await c.query(`UPDATE walflow.runs SET status = 'failed', error = '{"message":"boom"}' WHERE id = $1`, [ids[1]]);
      return (await c.query(`SELECT id, status, input, key FROM walflow.runs ORDER BY seq`)).rows;
    });

    const result = await withClient(old, (c) => migrate(c));
    expect(result.defined).toEqual(loadDefinitions().map((d) => d.name));

    await withClient(old, async (c) => {
      expect((await c.query(`SELECT id, status, input, key FROM walflow.runs ORDER BY seq`)).rows).toEqual(before);
      // The functions work on the old rows: retry the failed one, and start a new run.
      expect((await c.query(`SELECT walflow.retry($1) AS ok`, [before[1].id])).rows[0].ok).toBe(true);
      expect((await c.query(`SELECT walflow.start('p', '{"i":9}') AS id`)).rows[0].id).toMatch(/^[0-9a-f-]{36}$/);
      const { rows } = await c.query(`SELECT checksum FROM walflow.schema_migrations ORDER BY version`);
      expect(rows.map((r) => r.checksum)).toEqual(loadMigrations().map((m) => m.checksum));
    });

    const fresh = await emptyDatabase();
    await withClient(fresh, (c) => migrate(c));
    const [a, b] = await Promise.all([withClient(old, schemaFingerprint), withClient(fresh, schemaFingerprint)]);
    expect(a).toEqual(b);
    // A second run changes nothing.
    expect(await withClient(old, (c) => migrate(c))).toMatchObject({ applied: [], defined: [] });
  });

  it('8 concurrent migrators on an old database: each definition applied once, all succeed', async () => {
    const url = await emptyDatabase();
    await migrateLikeLegacy(url);
    const results = await Promise.all(Array.from({ length: 8 }, () => withClient(url, (c) => migrate(c))));
    const defined = results.flatMap((r) => r.defined);
    expect(defined.sort()).toEqual(loadDefinitions().map((d) => d.name).sort());
    const { rows } = await withClient(url, (c) => c.query(`SELECT count(*)::int AS n FROM walflow.schema_definitions`));
    expect(rows[0].n).toBe(loadDefinitions().length);
  });

  it('an amended migration is accepted only for the text it names, and is not run again', async () => {
    const url = await emptyDatabase();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wf-amend-'));
    fs.writeFileSync(path.join(dir, '0001_one.sql'), '-- a comment that turns out wrong\nCREATE TABLE walflow.t1 (id int);');
    const [original] = loadMigrations(dir);
    await withClient(url, (c) => migrate(c, loadMigrations(dir), []));

    fs.writeFileSync(path.join(dir, '0001_one.sql'), '-- walflow:amends 0000000000000000\n-- a true comment\nCREATE TABLE walflow.t1 (id int);');
    await expect(withClient(url, (c) => migrate(c, loadMigrations(dir), []))).rejects.toThrow(/changed after it was applied/);

    fs.writeFileSync(path.join(dir, '0001_one.sql'), `-- walflow:amends ${original!.checksum}\n-- a true comment\nCREATE TABLE walflow.t1 (id int);`);
    // Run again, CREATE TABLE would fail: the amendment only updates the recorded checksum.
    await withClient(url, (c) => migrate(c, loadMigrations(dir), []));
    const { rows } = await withClient(url, (c) => c.query(`SELECT checksum FROM walflow.schema_migrations WHERE version = 1`));
    expect(rows[0].checksum).toBe(loadMigrations(dir)[0]!.checksum);
    fs.rmSync(dir, { recursive: true });
  });

  it('a changed definition is applied again at the next migrate; unchanged ones are left alone', async () => {
    const url = await emptyDatabase();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wf-defs-'));
    fs.mkdirSync(path.join(dir, 'functions'));
    const write = (name: string, body: string) => fs.writeFileSync(path.join(dir, 'functions', name), body);
    write('one.sql', `CREATE OR REPLACE FUNCTION walflow.one() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;`);
    write('two.sql', `CREATE OR REPLACE FUNCTION walflow.two() RETURNS int LANGUAGE sql AS $$ SELECT 2 $$;`);
    const migrations = loadMigrations();
    expect((await withClient(url, (c) => migrate(c, migrations, loadDefinitions(dir)))).defined).toEqual(['functions/one.sql', 'functions/two.sql']);

    write('two.sql', `CREATE OR REPLACE FUNCTION walflow.two() RETURNS int LANGUAGE sql AS $$ SELECT 22 $$;`);
    expect((await withClient(url, (c) => migrate(c, migrations, loadDefinitions(dir)))).defined).toEqual(['functions/two.sql']);
    const { rows } = await withClient(url, (c) => c.query(`SELECT walflow.one() AS one, walflow.two() AS two`));
    expect(rows[0]).toEqual({ one: 1, two: 22 });

    // A definition that fails rolls back all the definitions of that run, with the file named.
    write('one.sql', `CREATE OR REPLACE FUNCTION walflow.one() RETURNS int LANGUAGE sql AS $$ SELECT 11 $$;`);
    write('two.sql', `CREATE OR REPLACE FUNCTION walflow.two() RETURNS int LANGUAGE sql AS $$ SELECT nope $$;`);
    await expect(withClient(url, (c) => migrate(c, migrations, loadDefinitions(dir)))).rejects.toThrow(/definition functions\/two\.sql failed: column "nope" does not exist/);
    expect((await withClient(url, (c) => c.query(`SELECT walflow.one() AS one`))).rows[0].one).toBe(1);
    fs.rmSync(dir, { recursive: true });
  });
});

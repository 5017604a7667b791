// Forward-only migrations from sql/NNNN_name.sql, each in its own transaction, recorded in
// walflow.schema_migrations. Several processes may migrate at once: a session advisory lock
// serializes them, and whoever comes second finds the work done and carries on.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { UserError } from '../errors.js';

// src/db/migrate.ts (a checkout) and dist/db/migrate.js (the package) sit at the same depth below
// the package root, next to sql/, so one relative path serves both layouts.
export const SQL_DIR = fileURLToPath(new URL('../../sql/', import.meta.url));
/** Arbitrary constant: the advisory lock key all walflow migrators agree on. */
const MIGRATION_LOCK_KEY = 7_414_001;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrateResult {
  applied: Migration[];
  current: number;
}

export function loadMigrations(dir = SQL_DIR): Migration[] {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  const migrations = files.map((file) => {
    const m = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
    if (!m) throw new Error(`migration file ${file} must be named NNNN_snake_case.sql`);
    const sql = fs.readFileSync(path.join(dir, file), 'utf8');
    return { version: Number(m[1]), name: m[2]!, sql, checksum: createHash('sha256').update(sql).digest('hex').slice(0, 16) };
  });
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migrations must be numbered 0001, 0002, … without gaps; found ${m.version} at position ${i + 1}`);
  });
  return migrations;
}

export class SchemaTooNewError extends UserError {
  constructor(dbVersion: number, codeVersion: number) {
    super(`the database schema is at version ${dbVersion} but this walflow only knows up to ${codeVersion}: upgrade walflow (migrations are forward-only; never run an older walflow against a newer schema)`);
  }
}

async function appliedVersions(client: pg.Client): Promise<Map<number, string>> {
  const { rows } = await client.query<{ version: number; checksum: string }>(
    `SELECT version, checksum FROM walflow.schema_migrations ORDER BY version`,
  );
  return new Map(rows.map((r) => [r.version, r.checksum]));
}

/**
 * Whether every migration is applied already, read without DDL or locks: then a process whose role
 * may not create anything (a least-privileged worker) starts as well as the schema's owner.
 */
async function upToDate(client: pg.Client, migrations: Migration[]): Promise<boolean> {
  const { rows } = await client.query<{ present: boolean }>(`SELECT to_regclass('walflow.schema_migrations') IS NOT NULL AS present`);
  if (!rows[0]?.present) return false;
  const applied = await appliedVersions(client);
  const latest = migrations.at(-1)?.version ?? 0;
  const dbMax = Math.max(0, ...applied.keys());
  if (dbMax > latest) throw new SchemaTooNewError(dbMax, latest);
  return migrations.every((m) => applied.get(m.version) === m.checksum);
}

/** Brings the schema up to date. `client` must be a dedicated connection (it holds a session lock). */
export async function migrate(client: pg.Client, migrations = loadMigrations()): Promise<MigrateResult> {
  if (await upToDate(client, migrations)) return { applied: [], current: migrations.at(-1)?.version ?? 0 };
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS walflow`);
    await client.query(`CREATE TABLE IF NOT EXISTS walflow.schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      checksum   text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const applied = await appliedVersions(client);
    const latest = migrations.at(-1)?.version ?? 0;
    const dbMax = Math.max(0, ...applied.keys());
    if (dbMax > latest) throw new SchemaTooNewError(dbMax, latest);
    for (const m of migrations) {
      const sum = applied.get(m.version);
      if (sum !== undefined && sum !== m.checksum) {
        throw new UserError(`migration ${m.version} (${m.name}) was changed after it was applied (checksum ${sum} in the database, ${m.checksum} on disk): migrations are forward-only; add a new one instead`);
      }
    }
    const done: Migration[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query(`INSERT INTO walflow.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`, [m.version, m.name, m.checksum]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${m.version} (${m.name}) failed: ${(err as Error).message}`, { cause: err });
      }
      done.push(m);
    }
    return { applied: done, current: Math.max(dbMax, latest) };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
  }
}

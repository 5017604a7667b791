// Brings schema walflow up to date from two kinds of SQL file (see sql/README.md):
//   - versioned migrations, sql/migrations/NNNN_name.sql: tables, indexes, data. Applied once each,
//     in order, each in its own transaction, recorded in walflow.schema_migrations.
//   - repeatable definitions, sql/definitions/{functions,views,defaults}/*.sql: one function or view
//     per file, its current and only definition (CREATE OR REPLACE, with its grants). Applied after
//     the migrations whenever a file's checksum differs from the one recorded in
//     walflow.schema_definitions, all changed files in one transaction.
// Several processes may migrate at once: a session advisory lock serializes them, and whoever comes
// second finds the work done and carries on.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { UserError } from '../errors.js';

// src/db/migrate.ts (a checkout) and dist/db/migrate.js (the package) sit at the same depth below
// the package root, next to sql/, so one relative path serves both layouts.
export const SQL_DIR = fileURLToPath(new URL('../../sql/', import.meta.url));
export const MIGRATIONS_DIR = path.join(SQL_DIR, 'migrations');
export const DEFINITIONS_DIR = path.join(SQL_DIR, 'definitions');
/** Definitions are applied kind by kind in this order: views may use functions; defaults use both. */
const DEFINITION_KINDS = ['functions', 'views', 'defaults'] as const;

/** Arbitrary constant: the advisory lock key all walflow migrators agree on. */
const MIGRATION_LOCK_KEY = 7_414_001;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
  /**
   * Checksums of earlier texts of this file that it replaces (`-- walflow:amends <checksum>` lines):
   * a migration may be rewritten only to fix its comments or to move a function or view into
   * sql/definitions, never to change the tables it leaves behind (test/db/schema/upgrade.test.ts
   * compares an upgraded database with a new one).
   */
  amends: string[];
}

export interface Definition {
  /** Path below sql/definitions, e.g. "functions/start.sql". */
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrateResult {
  applied: Migration[];
  /** Definitions (re)applied because they were new or changed. */
  defined: string[];
  current: number;
}

const checksumOf = (sql: string) => createHash('sha256').update(sql).digest('hex').slice(0, 16);

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  const migrations = files.map((file) => {
    const m = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
    if (!m) throw new Error(`migration file ${file} must be named NNNN_snake_case.sql`);
    const sql = fs.readFileSync(path.join(dir, file), 'utf8');
    const amends = [...sql.matchAll(/^-- walflow:amends ([0-9a-f]{16})\s*$/gm)].map((a) => a[1]!);
    return { version: Number(m[1]), name: m[2]!, sql, checksum: checksumOf(sql), amends };
  });
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migrations must be numbered 0001, 0002, … without gaps; found ${m.version} at position ${i + 1}`);
  });
  return migrations;
}

export function loadDefinitions(dir = DEFINITIONS_DIR): Definition[] {
  if (!fs.existsSync(dir)) return [];
  return DEFINITION_KINDS.flatMap((kind) => {
    const sub = path.join(dir, kind);
    if (!fs.existsSync(sub)) return [];
    return fs.readdirSync(sub).filter((f) => f.endsWith('.sql')).sort().map((f) => {
      const sql = fs.readFileSync(path.join(sub, f), 'utf8');
      return { name: `${kind}/${f}`, sql, checksum: checksumOf(sql) };
    });
  });
}

export class SchemaTooNewError extends UserError {
  constructor(dbVersion: number, codeVersion: number) {
    super(`the database schema is at version ${dbVersion} but this walflow only knows up to ${codeVersion}: upgrade walflow (migrations are forward-only; never run an older walflow against a newer schema)`);
  }
}

async function appliedVersions(client: pg.Client): Promise<Map<number, string>> {
  const { rows } = await client.query<{ version: number; checksum: string }>(`SELECT version, checksum FROM walflow.schema_migrations ORDER BY version`);
  return new Map(rows.map((r) => [r.version, r.checksum]));
}

async function appliedDefinitions(client: pg.Client): Promise<Map<string, string>> {
  const { rows } = await client.query<{ name: string; checksum: string }>(`SELECT name, checksum FROM walflow.schema_definitions`);
  return new Map(rows.map((r) => [r.name, r.checksum]));
}

function checkNotTooNew(applied: Map<number, string>, migrations: Migration[]): void {
  const latest = migrations.at(-1)?.version ?? 0;
  const dbMax = Math.max(0, ...applied.keys());
  if (dbMax > latest) throw new SchemaTooNewError(dbMax, latest);
}

/**
 * Whether everything is applied already, read without DDL or locks: then a process whose role may
 * not create anything (a least-privileged worker) starts as well as the schema's owner.
 */
async function upToDate(client: pg.Client, migrations: Migration[], definitions: Definition[]): Promise<boolean> {
  const { rows } = await client.query<{ m: boolean; d: boolean }>(
    `SELECT to_regclass('walflow.schema_migrations') IS NOT NULL AS m, to_regclass('walflow.schema_definitions') IS NOT NULL AS d`,
  );
  if (!rows[0]?.m || !rows[0]?.d) return false;
  const applied = await appliedVersions(client);
  checkNotTooNew(applied, migrations);
  if (!migrations.every((m) => applied.get(m.version) === m.checksum)) return false;
  const defined = await appliedDefinitions(client);
  return definitions.every((d) => defined.get(d.name) === d.checksum);
}

/** Brings the schema up to date. `client` must be a dedicated connection (it holds a session lock). */
export async function migrate(client: pg.Client, migrations = loadMigrations(), definitions = loadDefinitions()): Promise<MigrateResult> {
  const current = migrations.at(-1)?.version ?? 0;
  if (await upToDate(client, migrations, definitions)) return { applied: [], defined: [], current };
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS walflow`);
    await client.query(`CREATE TABLE IF NOT EXISTS walflow.schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      checksum   text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    await client.query(`CREATE TABLE IF NOT EXISTS walflow.schema_definitions (
      name       text PRIMARY KEY,
      checksum   text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const applied = await appliedVersions(client);
    checkNotTooNew(applied, migrations);
    await acceptAmendments(client, migrations, applied);
    const done: Migration[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      await inTransaction(client, `migration ${m.version} (${m.name})`, async () => {
        await client.query(m.sql);
        await client.query(`INSERT INTO walflow.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`, [m.version, m.name, m.checksum]);
      });
      done.push(m);
    }
    const defined = await applyDefinitions(client, definitions);
    return { applied: done, defined, current: Math.max(current, ...applied.keys()) };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
  }
}

/** An applied migration whose file now differs is refused, unless the file amends that exact text. */
async function acceptAmendments(client: pg.Client, migrations: Migration[], applied: Map<number, string>): Promise<void> {
  for (const m of migrations) {
    const sum = applied.get(m.version);
    if (sum === undefined || sum === m.checksum) continue;
    if (!m.amends.includes(sum)) {
      throw new UserError(`migration ${m.version} (${m.name}) was changed after it was applied (checksum ${sum} in the database, ${m.checksum} on disk): migrations are forward-only; add a new one instead`);
    }
    await client.query(`UPDATE walflow.schema_migrations SET checksum = $2 WHERE version = $1`, [m.version, m.checksum]);
    applied.set(m.version, m.checksum);
  }
}

async function applyDefinitions(client: pg.Client, definitions: Definition[]): Promise<string[]> {
  const recorded = await appliedDefinitions(client);
  const changed = definitions.filter((d) => recorded.get(d.name) !== d.checksum);
  if (changed.length === 0) return [];
  await inTransaction(client, 'definitions', async () => {
    for (const d of changed) {
      try {
        await client.query(d.sql);
      } catch (err) {
        throw new Error(`definition ${d.name} failed: ${(err as Error).message}`, { cause: err });
      }
      await client.query(
        `INSERT INTO walflow.schema_definitions (name, checksum) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()`,
        [d.name, d.checksum],
      );
    }
  });
  return changed.map((d) => d.name);
}

async function inTransaction(client: pg.Client, what: string, fn: () => Promise<void>): Promise<void> {
  await client.query('BEGIN');
  try {
    await fn();
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    const message = (err as Error).message;
    throw new Error(message.startsWith('definition ') ? message : `${what} failed: ${message}`, { cause: err });
  }
}

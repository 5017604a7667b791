// Startup checks, each failing with one line that says what is wrong and how to fix it: the server
// can do logical replication, the role may, and every source table exists, is not walflow's own,
// and has a key that deletes and updates can be matched by.
import type pg from 'pg';
import { UserError } from '../../errors.js';
import type { Pipeline } from '../../pipeline/define.js';
import type { ChangeOp } from '../../pipeline/types.js';
import { loadSourceTables, parseTableName, qualified, type SourceTable, type TableName } from '../../pipeline/source-tables.js';
import type { Route } from '../types.js';

const ALL_OPS: ChangeOp[] = ['insert', 'update', 'delete', 'truncate'];
const OWN_SCHEMA = 'walflow';

export async function checkServer(db: Pick<pg.ClientBase, 'query'>): Promise<void> {
  const { rows } = await db.query<{ wal_level: string; slots: string; senders: string; role: string; repl: boolean }>(
    `SELECT current_setting('wal_level') AS wal_level, current_setting('max_replication_slots') AS slots,
            current_setting('max_wal_senders') AS senders, current_user::text AS role,
            (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS repl`,
  );
  const s = rows[0]!;
  if (s.wal_level !== 'logical') {
    throw new UserError(`PostgreSQL runs with wal_level=${s.wal_level}; walflow reads changes by logical replication and needs wal_level=logical: run ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL`);
  }
  if (Number(s.slots) < 1 || Number(s.senders) < 1) {
    throw new UserError(`PostgreSQL allows no replication (max_replication_slots=${s.slots}, max_wal_senders=${s.senders}): set both to at least 1 (e.g. ALTER SYSTEM SET max_replication_slots = 10) and restart PostgreSQL`);
  }
  if (!s.repl) {
    throw new UserError(`role "${s.role}" may not use replication: as a superuser run ALTER ROLE "${s.role.replace(/"/g, '""')}" WITH REPLICATION; or connect as a role that has it`);
  }
}

function fail(pipeline: string, message: string): never {
  throw new UserError(`pipeline "${pipeline}": ${message}`);
}

function identityHint(t: string): string {
  return `add a primary key, or run ALTER TABLE ${t} REPLICA IDENTITY FULL (or REPLICA IDENTITY USING INDEX <a unique index on NOT NULL columns>)`;
}

/** The replica identity columns, i.e. what a delete (without REPLICA IDENTITY FULL) carries. */
function identityColumns(t: SourceTable): string[] | 'all' {
  if (t.replicaIdentity === 'f') return 'all';
  if (t.replicaIdentity === 'i') return t.identityIndex;
  if (t.replicaIdentity === 'd') return t.primaryKey;
  return [];
}

function routeFor(p: Pipeline, t: SourceTable): Route {
  const src = p.source!;
  const table = qualified(t);
  if (t.relkind !== 'r') fail(p.name, `source table ${table} is not a plain table (relkind ${t.relkind}); walflow publishes plain tables only`);
  const ident = identityColumns(t);
  if (ident !== 'all' && ident.length === 0) {
    fail(p.name, `source table ${table} has no primary key or replica identity, so its updates and deletes cannot be replicated (PostgreSQL would even reject them once published): ${identityHint(table)}`);
  }
  for (const c of [...(src.key ?? []), ...(src.columns ?? [])]) {
    if (!t.columns.includes(c)) fail(p.name, `source table ${table} has no column "${c}" (named in source.key or source.columns)`);
  }
  const keyColumns = src.key ?? (t.primaryKey.length > 0 ? t.primaryKey : ident === 'all' ? [] : ident);
  if (keyColumns.length === 0) fail(p.name, `source table ${table} has no primary key: declare source.key (the columns that identify a row)`);
  const events = new Set(src.events ?? ALL_OPS);
  if (events.has('delete') && ident !== 'all' && keyColumns.some((c) => !ident.includes(c))) {
    fail(p.name, `source.key (${keyColumns.join(', ')}) is not part of ${table}'s replica identity (${ident.join(', ')}), so deletes would arrive without it: use the primary key, or ALTER TABLE ${table} REPLICA IDENTITY FULL`);
  }
  return { pipeline: p.name, table, events, columns: src.columns, where: src.where as Route['where'], keyColumns };
}

export interface ResolvedSources {
  routes: Route[];
  tables: SourceTable[];
  /** Things that work but not as well as they could (logged at startup). */
  warnings: string[];
}

/** Rejects sources in schema walflow before touching the database: they would loop on walflow's own writes. */
export function sourceTableNames(pipelines: readonly Pipeline[]): Map<Pipeline, TableName> {
  const out = new Map<Pipeline, TableName>();
  for (const p of pipelines) {
    if (!p.source) continue;
    let name: TableName;
    try {
      name = parseTableName(p.source.table);
    } catch (err) {
      fail(p.name, (err as Error).message);
    }
    if (name.schema === OWN_SCHEMA) {
      fail(p.name, `source table ${qualified(name)} is in walflow's own schema; walflow never publishes its own tables (a pipeline fed by them would start runs from its own writes, forever)`);
    }
    out.set(p, name);
  }
  // A source that some loaded pipeline writes to would feed that pipeline's writes back into runs.
  const targets = new Map<string, string>();
  for (const p of pipelines) for (const t of p.targets ?? []) targets.set(qualified(parseTableName(t)), p.name);
  for (const [p, name] of out) {
    const writer = targets.get(qualified(name));
    if (writer) {
      fail(p.name, `source table ${qualified(name)} is a target that pipeline "${writer}" writes to: its writes would start runs from themselves (a loop); read from another table`);
    }
  }
  return out;
}

export async function resolveSources(db: Pick<pg.ClientBase, 'query'>, pipelines: readonly Pipeline[]): Promise<ResolvedSources> {
  const names = sourceTableNames(pipelines);
  const found = await loadSourceTables(db, [...names.values()]);
  const routes: Route[] = [];
  const warnings: string[] = [];
  for (const [p, name] of names) {
    const t = found.get(qualified(name));
    if (!t) fail(p.name, `source table ${qualified(name)} does not exist: create it, or fix source.table`);
    const route = routeFor(p, t);
    if (route.columns && t.replicaIdentity !== 'f') {
      warnings.push(`pipeline "${p.name}": ${route.table} is not REPLICA IDENTITY FULL, so an UPDATE's old values are unknown and source.columns can only skip updates whose watched columns are unchanged TOAST; for an exact filter run ALTER TABLE ${route.table} REPLICA IDENTITY FULL`);
    }
    routes.push(route);
  }
  const tables = [...new Map([...names.values()].map((n) => [qualified(n), found.get(qualified(n))!])).values()];
  return { routes, tables, warnings };
}

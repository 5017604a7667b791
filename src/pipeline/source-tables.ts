// Source table names and what the catalog says about them (key columns, replica identity), which
// validation, routing, TOAST re-reads, the embedding target and backfill all need: it lives in the
// pipeline layer so that replication, steps and ops can all import it without importing each other.
import type pg from 'pg';
import { qualified, type TableName } from './table-name.js';

// Parsed in table-name.ts, which checks a run input's `table` too.
export { parseTableName, qualified, type TableName } from './table-name.js';

export interface SourceTable extends TableName {
  oid: number;
  /** 'r' table, 'p' partitioned table, 'v' view… */
  relkind: string;
  /** pg_class.relreplident: d(efault: the primary key), n(othing), f(ull), i(ndex). */
  replicaIdentity: 'd' | 'n' | 'f' | 'i';
  primaryKey: string[];
  /** Columns of the REPLICA IDENTITY USING INDEX index, when that is the identity. */
  identityIndex: string[];
  columns: string[];
}

const COLS_OF_INDEX = (flag: string) => `ARRAY(
  SELECT a.attname::text FROM pg_index i
  CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
  WHERE i.indrelid = c.oid AND i.${flag} ORDER BY k.ord)`;

/** Looks tables up by exact schema and name; absent ones are missing from the result. */
export async function loadSourceTables(db: Pick<pg.ClientBase, 'query'>, names: readonly TableName[]): Promise<Map<string, SourceTable>> {
  const { rows } = await db.query<Omit<SourceTable, 'replicaIdentity'> & { replicaIdentity: string }>(
    `SELECT c.oid::int AS oid, n.nspname::text AS schema, c.relname::text AS name, c.relkind::text AS relkind,
            c.relreplident::text AS "replicaIdentity",
            ${COLS_OF_INDEX('indisprimary')} AS "primaryKey",
            ${COLS_OF_INDEX('indisreplident')} AS "identityIndex",
            ARRAY(SELECT a.attname::text FROM pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS columns
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE (n.nspname::text, c.relname::text) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [names.map((t) => t.schema), names.map((t) => t.name)],
  );
  return new Map(rows.map((r) => [qualified(r), { ...r, replicaIdentity: r.replicaIdentity as SourceTable['replicaIdentity'] }]));
}

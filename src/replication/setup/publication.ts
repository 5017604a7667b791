// Keeps the publication equal to the source tables of the loaded pipelines: created when missing,
// tables added and removed as pipelines change, never FOR ALL TABLES (that would publish walflow's
// own writes). Identifiers are always quoted by escapeIdentifier, never spliced in raw.
import pg from 'pg';
import type { Queryable as Db } from '../../db/queryable.js';
import { UserError } from '../../errors.js';
import { qualified, type TableName } from '../../pipeline/source-tables.js';


function ident(t: TableName): string {
  return `${pg.escapeIdentifier(t.schema)}.${pg.escapeIdentifier(t.name)}`;
}

export interface PublicationChange {
  created: boolean;
  added: string[];
  removed: string[];
}

export async function publishedTables(db: Db, publication: string): Promise<TableName[]> {
  const { rows } = await db.query<TableName>(
    `SELECT schemaname::text AS schema, tablename::text AS name FROM pg_publication_tables WHERE pubname = $1`,
    [publication],
  );
  return rows;
}

export async function syncPublication(db: Db, publication: string, tables: readonly TableName[]): Promise<PublicationChange> {
  const pub = pg.escapeIdentifier(publication);
  const { rows } = await db.query<{ puballtables: boolean; ops: boolean }>(
    `SELECT puballtables, (pubinsert AND pubupdate AND pubdelete AND pubtruncate) AS ops FROM pg_publication WHERE pubname = $1`,
    [publication],
  );
  const existing = rows[0];
  if (!existing) {
    const list = tables.length > 0 ? ` FOR TABLE ${tables.map(ident).join(', ')}` : '';
    try {
      await db.query(`CREATE PUBLICATION ${pub}${list} WITH (publish = 'insert, update, delete, truncate')`);
      return { created: true, added: tables.map(qualified), removed: [] };
    } catch (err) {
      // Another walflow process created it first: fall through and reconcile its table list.
      if ((err as { code?: string }).code !== '42710') throw err;
    }
  } else if (existing.puballtables) {
    throw new UserError(`publication "${publication}" is FOR ALL TABLES, which would publish walflow's own tables: drop it (DROP PUBLICATION ${pub}) or choose another publication name`);
  } else if (!existing.ops) {
    await db.query(`ALTER PUBLICATION ${pub} SET (publish = 'insert, update, delete, truncate')`);
  }
  const want = new Map(tables.map((t) => [qualified(t), t]));
  const have = new Map((await publishedTables(db, publication)).map((t) => [qualified(t), t]));
  const add = [...want].filter(([k]) => !have.has(k)).map(([, t]) => t);
  const drop = [...have].filter(([k]) => !want.has(k)).map(([, t]) => t);
  if (add.length > 0) await db.query(`ALTER PUBLICATION ${pub} ADD TABLE ${add.map(ident).join(', ')}`);
  if (drop.length > 0) await db.query(`ALTER PUBLICATION ${pub} DROP TABLE ${drop.map(ident).join(', ')}`);
  return { created: false, added: add.map(qualified), removed: drop.map(qualified) };
}

export async function dropPublication(db: Db, publication: string): Promise<void> {
  await db.query(`DROP PUBLICATION IF EXISTS ${pg.escapeIdentifier(publication)}`);
}

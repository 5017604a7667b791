// Re-reads rows whose UPDATE carried unchanged TOAST columns (`u`: the value did not change, so
// the WAL does not repeat it). Only those columns are filled in, from the current row; if the row
// is gone, a later change of it (its delete) is still ahead in the WAL.
import pg from 'pg';
import type { RawChange, Row } from '../types.js';

const CHUNK = 500;

function plain(v: unknown): unknown {
  return v instanceof Uint8Array ? `\\x${Buffer.from(v).toString('hex')}` : v;
}

function keyText(cols: readonly string[], row: Row): string {
  return JSON.stringify(cols.map((c) => plain(row[c])));
}

async function fillTable(pool: pg.Pool, changes: RawChange[]): Promise<void> {
  const first = changes[0]!;
  const cols = first.identityColumns;
  const table = `${pg.escapeIdentifier(first.schema)}.${pg.escapeIdentifier(first.name)}`;
  const colList = cols.map((c) => pg.escapeIdentifier(c)).join(', ');
  for (let i = 0; i < changes.length; i += CHUNK) {
    const chunk = changes.slice(i, i + CHUNK);
    const params: unknown[] = [];
    const tuples = chunk.map((c) => `(${cols.map((k) => (params.push(c.row?.[k]), `$${params.length}`)).join(', ')})`);
    const { rows } = await pool.query<Row>(`SELECT * FROM ${table} WHERE (${colList}) IN (${tuples.join(', ')})`, params);
    const byKey = new Map(rows.map((r) => [keyText(cols, r), r]));
    for (const c of chunk) {
      const fresh = c.row ? byKey.get(keyText(cols, c.row)) : undefined;
      if (!fresh || !c.row) {
        c.toast = 'gone';
        continue;
      }
      for (const col of c.unchangedToast) c.row[col] = plain(fresh[col]);
      c.toast = 'filled';
    }
  }
}

/** The `fill` function of fillUnchangedToast, reading through `pool`. */
export function toastFiller(pool: pg.Pool): (changes: RawChange[]) => Promise<void> {
  return async (changes) => {
    const byTable = new Map<string, RawChange[]>();
    for (const c of changes) {
      const list = byTable.get(c.table);
      if (list) list.push(c);
      else byTable.set(c.table, [c]);
    }
    for (const list of byTable.values()) await fillTable(pool, list);
  };
}

// A run's identity from its source row: its run key (the table key: one column → its text, several
// → a JSON array) and its dedupe id (commit LSN + position in the transaction). The WAL stream and
// backfill both start runs, and must agree on both, so the rule lives here, below them.
type Row = Record<string, unknown>;

export function dedupeIdOf(lsn: string, index: number): string {
  // Zero-padded so ids of one transaction sort by position; the LSN keeps them unique across them.
  return `${lsn}/${String(index).padStart(10, '0')}`;
}

function keyText(v: unknown): string {
  return v instanceof Date ? v.toISOString() : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
}

export function runKeyOf(key: Row | null, columns: readonly string[]): string | null {
  if (key === null) return null;
  if (columns.length === 1) return keyText(key[columns[0]!]);
  return JSON.stringify(columns.map((c) => {
    const v = key[c];
    return v instanceof Date ? v.toISOString() : v;
  }));
}

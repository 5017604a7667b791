// Turns a routed change into the run to start: its input (the ChangeEvent), its run key (the table
// key: one column → its text, several → a JSON array) and its dedupe id (commit LSN + position in
// the transaction), which makes a replay after a crash start nothing twice.
import { Observable, type OperatorFunction } from 'rxjs';
import type { ChangeEvent } from '../../pipeline/types.js';
import { routedChangeError, type Boundary, type ErrorItem, type RoutedChange, type Row, type StartItem } from '../types.js';

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

function keyError(item: RoutedChange, missing: string[]): ErrorItem {
  const { change, route } = item;
  return routedChangeError(item, 'key_missing', `${change.op} on ${change.table} lacks key column(s) ${missing.join(', ')} of pipeline "${route.pipeline}": use the primary key as source.key, or ALTER TABLE ${change.table} REPLICA IDENTITY FULL`);
}

export function toStartItem(item: RoutedChange): StartItem | ErrorItem {
  const { change, route } = item;
  let key: Row | null = null;
  if (change.op !== 'truncate') {
    const from = change.op === 'delete' ? change.old : change.row;
    key = {};
    const missing: string[] = [];
    for (const c of route.keyColumns) {
      const v = from?.[c];
      if (v === undefined || v === null) missing.push(c);
      key[c] = v;
    }
    if (missing.length > 0) return keyError(item, missing);
  }
  const event: ChangeEvent = { op: change.op, table: change.table, key, row: change.row, old: change.old, lsn: change.lsn, index: change.index };
  return { kind: 'start', pipeline: route.pipeline, event, runKey: runKeyOf(key, route.keyColumns), dedupeId: dedupeIdOf(change.lsn, change.index) };
}

export function extractKeys(): OperatorFunction<RoutedChange | ErrorItem | Boundary, StartItem | ErrorItem | Boundary> {
  return (source) =>
    new Observable((sub) =>
      source.subscribe({
        next: (item) => sub.next(item.kind === 'routed' ? toStartItem(item) : item),
        error: (e: unknown) => sub.error(e),
        complete: () => sub.complete(),
      }),
    );
}

// Turns a routed change into the run to start: its input (the ChangeEvent), its run key (the table
// key: one column → its text, several → a JSON array) and its dedupe id (commit LSN + position in
// the transaction), which makes a replay after a crash start nothing twice. Key and id follow the
// rules in pipeline/run-identity.ts, which backfill shares.
import { Observable, type OperatorFunction } from 'rxjs';
import { dedupeIdOf, runKeyOf } from '../../pipeline/run-identity.js';
import { routedChangeError, type Boundary, type ErrorItem, type RoutedChange, type Row, type StartItem, type WalChangeEvent } from '../types.js';

function keyError(item: RoutedChange, missing: string[]): ErrorItem {
  const { change, route } = item;
  return routedChangeError(item, 'key_missing', `${change.op} on ${change.table} lacks key column(s) ${missing.join(', ')} of pipeline "${route.pipeline}": use the primary key as source.key, or ALTER TABLE ${change.table} REPLICA IDENTITY FULL`);
}

/** The run input of a change: the SourceRunInput variant of its op (see docs: "Run input"). */
function eventOf(change: RoutedChange['change'], key: Row): WalChangeEvent {
  const { table, lsn, index } = change;
  switch (change.op) {
    case 'insert': return { op: 'insert', table, key, row: change.row ?? {}, old: null, lsn, index };
    case 'update': return { op: 'update', table, key, row: change.row ?? {}, old: change.old, lsn, index };
    // Without REPLICA IDENTITY FULL the old row is its identity columns; the key is always there.
    case 'delete': return { op: 'delete', table, key, row: null, old: change.old ?? { ...key }, lsn, index };
    case 'truncate': return { op: 'truncate', table, key: null, row: null, old: null, lsn, index };
  }
}

export function toStartItem(item: RoutedChange): StartItem | ErrorItem {
  const { change, route } = item;
  if (change.op === 'truncate') {
    const event: WalChangeEvent = { op: 'truncate', table: change.table, key: null, row: null, old: null, lsn: change.lsn, index: change.index };
    return { kind: 'start', pipeline: route.pipeline, event, runKey: null, dedupeId: dedupeIdOf(change.lsn, change.index) };
  }
  const from = change.op === 'delete' ? change.old : change.row;
  const key: Row = {};
  const missing: string[] = [];
  for (const c of route.keyColumns) {
    const v = from?.[c];
    if (v === undefined || v === null) missing.push(c);
    key[c] = v;
  }
  if (missing.length > 0) return keyError(item, missing);
  const event = eventOf(change, key);
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

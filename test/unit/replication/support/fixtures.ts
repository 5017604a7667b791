// Small builders for replication unit tests.
import type { Boundary, RawChange, Route, RoutedChange } from '../../../../src/replication/types.js';
import type { ChangeOp } from '../../../../src/pipeline/types.js';

export function change(op: ChangeOp, row: Record<string, unknown> | null, extra: Partial<RawChange> = {}): RawChange {
  return {
    kind: 'change', op, table: 'public.t', schema: 'public', name: 't', identityColumns: ['id'], oldIsFull: false,
    row, old: op === 'insert' ? null : { id: row?.id ?? 1 }, unchangedToast: [], toast: 'none', lsn: '0/10', index: 0, ...extra,
  };
}

export function route(pipeline: string, extra: Partial<Route> = {}): Route {
  return { pipeline, table: 'public.t', events: new Set<ChangeOp>(['insert', 'update', 'delete', 'truncate']), columns: undefined, where: undefined, keyColumns: ['id'], ...extra };
}

export function routed(c: RawChange, r: Route): RoutedChange {
  return { kind: 'routed', change: c, route: r };
}

export const commit = (endLsn: string): Boundary => ({ kind: 'boundary', endLsn, source: 'commit' });

// Fans each row change out to the pipelines whose source is its table, in WAL order; positions
// (commit, heartbeat) pass through so the writer knows what it may acknowledge.
import { Observable, type OperatorFunction } from 'rxjs';
import type { Boundary, RawChange, Route, RoutedChange } from '../types.js';

export function routeToPipelines(
  routesByTable: ReadonlyMap<string, readonly Route[]>,
  onUnrouted: (change: RawChange) => void = () => undefined,
): OperatorFunction<RawChange | Boundary, RoutedChange | Boundary> {
  return (source) =>
    new Observable((sub) =>
      source.subscribe({
        next(item) {
          if (item.kind !== 'change') return sub.next(item);
          const routes = routesByTable.get(item.table);
          if (!routes || routes.length === 0) return onUnrouted(item);
          for (const route of routes) sub.next({ kind: 'routed', change: item, route });
        },
        error: (e: unknown) => sub.error(e),
        complete: () => sub.complete(),
      }),
    );
}

// Drops changes a pipeline did not ask for: events it does not react to, and UPDATEs that changed
// none of its declared columns. Dropped changes are reported (counted), never silently lost.
import { Observable, type OperatorFunction } from 'rxjs';
import type { Boundary, RoutedChange } from '../types.js';

export type FilterReason = 'event' | 'columns' | 'where' | 'row-gone';

/**
 * Whether an UPDATE touched one of `columns`. With the full old row (REPLICA IDENTITY FULL) this is
 * exact. Without it PostgreSQL does not say which columns changed; the only certain "unchanged"
 * signal is an unchanged-TOAST column, so the update passes unless every watched column is one.
 */
export function updateTouches(change: RoutedChange['change'], columns: readonly string[]): boolean {
  if (change.oldIsFull && change.old && change.row) {
    const { old, row } = change;
    return columns.some((c) => !sameValue(old[c], row[c]));
  }
  return columns.some((c) => !change.unchangedToast.includes(c));
}

export function filterByDeclaration(
  onFiltered: (item: RoutedChange, reason: FilterReason) => void,
): OperatorFunction<RoutedChange | Boundary, RoutedChange | Boundary> {
  return (source) =>
    new Observable((sub) =>
      source.subscribe({
        next(item) {
          if (item.kind !== 'routed') return sub.next(item);
          const { change, route } = item;
          if (!route.events.has(change.op)) return onFiltered(item, 'event');
          if (change.op === 'update' && route.columns && !updateTouches(change, route.columns)) return onFiltered(item, 'columns');
          sub.next(item);
        },
        error: (e: unknown) => sub.error(e),
        complete: () => sub.complete(),
      }),
    );
}

// Equality of decoded column values (numbers, strings, Dates, arrays, JSON objects), used to tell
// whether an UPDATE changed a column when the full old row is known.
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined) return false;
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (typeof a === 'object' && typeof b === 'object') return JSON.stringify(a) === JSON.stringify(b);
  return false;
}

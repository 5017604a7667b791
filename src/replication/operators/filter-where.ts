// Applies a pipeline's row predicate (`source.where`) to complete rows. A predicate that throws
// turns the change into a recorded error instead of dropping it.
import { Observable, type OperatorFunction } from 'rxjs';
import { routedChangeError, type Boundary, type ErrorItem, type RoutedChange, type Row } from '../types.js';
import type { FilterReason } from './filter-declaration.js';

/** The row a predicate judges: the new row, or a delete's full old row; undefined: not judged. */
function judgedRow(item: RoutedChange): Row | undefined {
  const { change } = item;
  if (change.op === 'insert' || change.op === 'update') return change.row ?? undefined;
  // A delete without REPLICA IDENTITY FULL carries only the key: it cannot be judged, and it must
  // still reach the pipeline (its earlier runs may have derived rows to remove).
  if (change.op === 'delete' && change.oldIsFull) return change.old ?? undefined;
  return undefined;
}

function predicateError(item: RoutedChange, err: unknown): ErrorItem {
  return routedChangeError(item, 'predicate_failed', `source.where of pipeline "${item.route.pipeline}" threw: ${err instanceof Error ? err.message : String(err)}`);
}

export function filterByPredicate(
  onFiltered: (item: RoutedChange, reason: FilterReason) => void,
): OperatorFunction<RoutedChange | Boundary, RoutedChange | ErrorItem | Boundary> {
  return (source) =>
    new Observable((sub) =>
      source.subscribe({
        next(item) {
          if (item.kind !== 'routed') return sub.next(item);
          // The row was deleted before its unchanged TOAST could be re-read: a later change of this
          // row (its delete) is still ahead in the WAL and will start that pipeline's run.
          if (item.change.toast === 'gone') return onFiltered(item, 'row-gone');
          const where = item.route.where;
          const row = where ? judgedRow(item) : undefined;
          if (!where || !row) return sub.next(item);
          let keep: boolean;
          try {
            keep = Boolean(where(row));
          } catch (err) {
            return sub.next(predicateError(item, err));
          }
          if (keep) sub.next(item);
          else onFiltered(item, 'where');
        },
        error: (e: unknown) => sub.error(e),
        complete: () => sub.complete(),
      }),
    );
}

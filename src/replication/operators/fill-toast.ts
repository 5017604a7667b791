// Completes UPDATEs whose unchanged TOAST columns did not travel in the WAL (they arrive as `u`),
// so that no step ever sees them as missing. Order is kept: while a re-read is in flight, later
// items wait behind it; every change pending at that moment is re-read in the same round trip.
import { Observable, type OperatorFunction } from 'rxjs';
import type { RawChange } from '../types.js';

type Item = { kind: string; change?: RawChange };

function pendingChange(item: Item): RawChange | undefined {
  return item.kind === 'routed' && item.change?.toast === 'pending' ? item.change : undefined;
}

/**
 * `fill` must resolve with every given change's `toast` set to 'filled' or 'gone'. `onQueued`
 * reports how many items wait (its deltas), so the stream can stop reading while they pile up.
 */
export function fillUnchangedToast<T extends Item>(
  fill: (changes: RawChange[]) => Promise<void>,
  onQueued: (delta: number) => void = () => undefined,
): OperatorFunction<T, T> {
  return (source) =>
    new Observable<T>((sub) => {
      let queue: T[] = [];
      let busy = false;
      let done = false;

      const pump = (): void => {
        if (busy || sub.closed) return;
        let i = 0;
        while (i < queue.length && !pendingChange(queue[i]!)) sub.next(queue[i++]!);
        queue = queue.slice(i);
        onQueued(-i);
        if (queue.length === 0) {
          if (done) sub.complete();
          return;
        }
        const changes = [...new Set(queue.map(pendingChange).filter((c): c is RawChange => c !== undefined))];
        busy = true;
        fill(changes).then(
          () => {
            busy = false;
            for (const c of changes) if (c.toast === 'pending') c.toast = 'gone';
            pump();
          },
          (err: unknown) => sub.error(err),
        );
      };

      const inner = source.subscribe({
        next(item) {
          if (!busy && queue.length === 0 && !pendingChange(item)) return sub.next(item);
          queue.push(item);
          onQueued(1);
          pump();
        },
        error: (e: unknown) => sub.error(e),
        complete() {
          done = true;
          pump();
        },
      });
      return () => {
        inner.unsubscribe();
        onQueued(-queue.length);
        queue = [];
      };
    });
}

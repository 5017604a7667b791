// Writes batches one at a time, in order; batches that arrive while a write is in flight are
// merged (up to `maxItems`) into the next write. An idle writer thus writes at once (low latency)
// and a busy one writes fewer, larger transactions (group commit: higher throughput).
import { Observable, type OperatorFunction } from 'rxjs';

export function writeCoalesced<T, R>(maxItems: number, write: (items: T[]) => Promise<R>): OperatorFunction<T[], R> {
  return (source) =>
    new Observable<R>((sub) => {
      const queue: T[][] = [];
      let busy = false;
      let done = false;

      const pump = (): void => {
        if (busy || sub.closed) return;
        if (queue.length === 0) {
          if (done) sub.complete();
          return;
        }
        let items = queue.shift()!;
        while (queue.length > 0 && items.length + queue[0]!.length <= maxItems) items = items.concat(queue.shift()!);
        busy = true;
        write(items).then(
          (r) => {
            busy = false;
            sub.next(r);
            pump();
          },
          (err: unknown) => sub.error(err),
        );
      };

      const inner = source.subscribe({
        next(batch) {
          queue.push(batch);
          pump();
        },
        error: (e: unknown) => sub.error(e),
        complete() {
          done = true;
          pump();
        },
      });
      return () => inner.unsubscribe();
    });
}

// Groups items into batches: a batch closes when it holds `maxItems` (by weight) or `maxWaitMs`
// after its first item arrived, whichever comes first, and on completion. One batch becomes one
// transaction, so the count bounds transaction size and the time bounds added latency.
import { asyncScheduler, Observable, type OperatorFunction, type SchedulerLike, type Subscription } from 'rxjs';

export function batchByCountAndTime<T>(
  maxItems: number,
  maxWaitMs: number,
  weight: (item: T) => number = () => 1,
  scheduler: SchedulerLike = asyncScheduler,
): OperatorFunction<T, T[]> {
  return (source) =>
    new Observable<T[]>((sub) => {
      let buf: T[] = [];
      let size = 0;
      let timer: Subscription | undefined;

      const flush = (): void => {
        timer?.unsubscribe();
        timer = undefined;
        if (buf.length === 0) return;
        const out = buf;
        buf = [];
        size = 0;
        sub.next(out);
      };

      const inner = source.subscribe({
        next(item) {
          buf.push(item);
          size += weight(item);
          if (size >= maxItems) return flush();
          timer ??= scheduler.schedule(flush, maxWaitMs);
        },
        error: (e: unknown) => sub.error(e),
        complete() {
          flush();
          sub.complete();
        },
      });
      return () => {
        inner.unsubscribe();
        timer?.unsubscribe();
      };
    });
}

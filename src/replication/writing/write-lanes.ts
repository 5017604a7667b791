// Writes batches through several writers ("lanes") at once, and emits each batch, in order, once
// every part of it and of every earlier batch has committed. One writer connection tops out near
// one core of PostgreSQL; lanes let the run starts of a burst use the others.
//
// A change goes to the lane of its key, so the changes of one row are always written in WAL order
// by one writer (start order decides which version of a row wins). Within a lane, parts that
// queue up while a write is in flight are merged into its next write (group commit), as with a
// single writer. Boundaries are not written by lanes: the caller records the durable position
// after this operator says the batch holding it, and everything before it, is committed.
import { Observable, type OperatorFunction } from 'rxjs';
import type { WriteItem } from '../types.js';
import { compareLsn } from '../stream/lsn.js';

export interface CommittedBatch {
  /** The last boundary in the batch (a position safe to acknowledge now), or null. */
  boundary: string | null;
  /** Items in the batch, boundaries included (for flow control). */
  size: number;
}

interface Batch extends CommittedBatch {
  pending: number;
}

interface Part {
  batch: Batch;
  items: WriteItem[];
}

/** FNV-1a: a fast, stable string hash, enough to spread keys over a handful of lanes. */
export function laneOf(key: string, lanes: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % lanes;
}

function laneKey(item: WriteItem): string {
  if (item.kind === 'start') return `${item.pipeline}\u0000${item.runKey ?? item.dedupeId}`;
  if (item.kind === 'error') return `${item.pipeline ?? ''}\u0000${item.key ?? `${item.lsn}:${item.index}`}`;
  return '';
}

export function writeInLanes(lanes: number, maxItemsPerWrite: number, write: (items: WriteItem[]) => Promise<void>): OperatorFunction<WriteItem[], CommittedBatch> {
  return (source) =>
    new Observable<CommittedBatch>((sub) => {
      const order: Batch[] = []; // batches not yet emitted, in arrival order
      const queues: Part[][] = Array.from({ length: lanes }, () => []);
      const busy: boolean[] = new Array<boolean>(lanes).fill(false);
      let done = false;

      const emitReady = (): void => {
        while (order.length > 0 && order[0]!.pending === 0) {
          const b = order.shift()!;
          sub.next({ boundary: b.boundary, size: b.size });
        }
        if (done && order.length === 0 && busy.every((x) => !x)) sub.complete();
      };

      const pump = (lane: number): void => {
        const queue = queues[lane]!;
        if (busy[lane] || sub.closed || queue.length === 0) return;
        const parts = [queue.shift()!];
        let count = parts[0]!.items.length;
        while (queue.length > 0 && count + queue[0]!.items.length <= maxItemsPerWrite) {
          count += queue[0]!.items.length;
          parts.push(queue.shift()!);
        }
        busy[lane] = true;
        write(parts.length === 1 ? parts[0]!.items : parts.flatMap((p) => p.items)).then(
          () => {
            busy[lane] = false;
            for (const p of parts) p.batch.pending--;
            emitReady();
            pump(lane);
          },
          (err: unknown) => sub.error(err),
        );
      };

      const inner = source.subscribe({
        next(items) {
          const split: WriteItem[][] = Array.from({ length: lanes }, () => []);
          let boundary: string | null = null;
          for (const item of items) {
            if (item.kind === 'boundary') {
              if (boundary === null || compareLsn(item.endLsn, boundary) > 0) boundary = item.endLsn;
            } else {
              split[lanes === 1 ? 0 : laneOf(laneKey(item), lanes)]!.push(item);
            }
          }
          const batch: Batch = { boundary, size: items.length, pending: 0 };
          order.push(batch);
          split.forEach((part, lane) => {
            if (part.length === 0) return;
            batch.pending++;
            queues[lane]!.push({ batch, items: part });
          });
          if (batch.pending === 0) emitReady();
          else for (let lane = 0; lane < lanes; lane++) pump(lane);
        },
        error: (e: unknown) => sub.error(e),
        complete() {
          done = true;
          emitReady();
        },
      });
      return () => inner.unsubscribe();
    });
}

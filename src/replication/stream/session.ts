// One streaming session of the leader: WAL → route → filter → complete TOAST → predicate → keys →
// batches → one transaction per batch → acknowledge. It ends (rejects) on any stream or write
// error; the caller reconnects and resumes from the durable position, and idempotent starts make
// the replay harmless.
import type pg from 'pg';
import type { Logger } from 'pino';
import { BehaviorSubject, Subscription, tap } from 'rxjs';
import { FlowGate } from './flow-gate.js';
import { maxLsn } from './lsn.js';
import { batchByCountAndTime } from '../operators/batch.js';
import { extractKeys } from '../operators/extract-keys.js';
import { filterByDeclaration } from '../operators/filter-declaration.js';
import { filterByPredicate } from '../operators/filter-where.js';
import { fillUnchangedToast } from '../operators/fill-toast.js';
import { routeToPipelines } from '../operators/route.js';
import { writeInLanes } from '../writing/write-lanes.js';
import { DurableRecorder } from '../writing/durable-recorder.js';
import { RunWriter } from '../writing/run-writer.js';
import { toastFiller } from '../operators/toast-reader.js';
import type { ReplicationCounters, Route, WriteItem } from '../types.js';
import { walStream } from './wal-stream.js';
import { WatermarkMonitor, type WatermarkOptions } from './watermark.js';

export interface SessionConfig {
  url: string;
  slotName: string;
  publicationName: string;
  routesByTable: ReadonlyMap<string, readonly Route[]>;
  batch: { maxItems: number; maxWaitMs: number };
  /** Writer connections that start runs in parallel (changes of one key always share one). */
  writers: number;
  watermark: WatermarkOptions;
  counters: ReplicationCounters;
  log: Logger;
  /** Told every new durable position, after it committed. */
  onDurable?: (lsn: string) => void;
}

export class StreamSession {
  private durable: string;
  readonly gate: FlowGate;

  constructor(
    private readonly cfg: SessionConfig,
    private readonly pool: pg.Pool,
    startLsn: string,
  ) {
    this.durable = startLsn;
    // Enough waiting items for the next (coalesced) write while one is in flight, no more.
    this.gate = new FlowGate(4 * cfg.batch.maxItems);
  }

  get durableLsn(): string {
    return this.durable;
  }

  /** Streams until `signal` aborts (resolves) or something fails (rejects). */
  run(signal: AbortSignal): Promise<void> {
    const { cfg, gate } = this;
    const startLsn = this.durable;
    const durable$ = new BehaviorSubject(startLsn);
    const writer = new RunWriter(this.pool, cfg.slotName, cfg.counters, cfg.log);
    const watermark = new WatermarkMonitor(this.pool, gate, cfg.watermark, cfg.log);
    const counters = cfg.counters;
    const inflight = new Set<Promise<unknown>>();
    let fail: (err: unknown) => void = () => undefined;
    const recorder = new DurableRecorder(this.pool, cfg.slotName, (lsn) => {
      this.durable = maxLsn(this.durable, lsn);
      durable$.next(this.durable); // acknowledged only now, after the position committed
      cfg.onDurable?.(this.durable);
    }, (err) => fail(err));

    const writeRuns = (items: WriteItem[]): Promise<void> => {
      const p = writer.write(items).then(() => undefined);
      inflight.add(p);
      void p.catch(() => undefined).finally(() => inflight.delete(p));
      return p;
    };

    return new Promise<void>((resolve, reject) => {
      let finished = false;
      const subscription = new Subscription();
      const finish = (err?: unknown): void => {
        if (finished) return;
        finished = true;
        signal.removeEventListener('abort', onAbort);
        subscription.unsubscribe();
        watermark.stop();
        gate.reset();
        // A batch already sent commits or rolls back on its own; wait so that stop() is clean.
        void Promise.all([...inflight].map((p) => p.catch(() => undefined))).then(() => recorder.idle()).then(() => {
          durable$.complete();
          if (err === undefined) resolve();
          else reject(err instanceof Error ? err : new Error(String(err)));
        });
      };
      const onAbort = (): void => finish();
      fail = finish;

      const stream = walStream({
        url: cfg.url,
        slotName: cfg.slotName,
        publicationName: cfg.publicationName,
        startLsn,
        durable$,
        gate: () => gate.wait(),
        onChange: () => counters.received++,
        log: cfg.log,
      })
        .pipe(
          routeToPipelines(cfg.routesByTable, () => counters.filtered++),
          filterByDeclaration(() => counters.filtered++),
          fillUnchangedToast(toastFiller(this.pool), (d) => gate.add(d)),
          filterByPredicate(() => counters.filtered++),
          extractKeys(),
          batchByCountAndTime(cfg.batch.maxItems, cfg.batch.maxWaitMs, (i) => (i.kind === 'boundary' ? 0 : 1)),
          tap((batch) => gate.add(batch.length)),
          writeInLanes(cfg.writers, cfg.batch.maxItems * 4, writeRuns),
        )
        .subscribe({
          next: (committed) => {
            gate.add(-committed.size);
            if (committed.boundary) recorder.advance(committed.boundary);
            watermark.afterBatch();
          },
          error: finish,
          complete: () => finish(new Error('replication stream completed')),
        });
      subscription.add(stream); // after finish() already ran, this unsubscribes it at once
      if (signal.aborted) finish();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

// Group commit: callers submit one item each and await its outcome; items that arrive while a
// write is in flight are written together in the next statement. Under load this turns thousands
// of per-run checkpoints into a handful of statements per second, with no added latency when idle.

export interface GroupWriterOptions<T> {
  /** Writes a batch; says which item ids took effect, and which failed because of themselves. */
  write: (items: T[]) => Promise<{ has(id: string): boolean; errorOf?(id: string): Error | undefined }>;
  idOf: (item: T) => string;
  maxBatch: number;
  /** Statements in flight at once (each uses its own connection). */
  parallel: number;
  /**
   * Send each batch in id order: for statements that update several runs' rows, so that they lock
   * them in the order lease renewals do (by primary key) and cannot deadlock with them.
   */
  ordered?: boolean;
}

interface Pending<T> {
  item: T;
  resolve: (applied: boolean) => void;
  reject: (err: unknown) => void;
}

export class GroupWriter<T> {
  private queue: Pending<T>[] = [];
  private inFlight = 0;

  constructor(private readonly opts: GroupWriterOptions<T>) {}

  /** Resolves true when the item was written, false when the write was fenced off; rejects when the item itself could not be written, or the whole write failed. */
  submit(item: T): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  private pump(): void {
    while (this.queue.length > 0 && this.inFlight < this.opts.parallel) {
      const batch = this.queue.splice(0, this.opts.maxBatch);
      if (this.opts.ordered) batch.sort((x, y) => compare(this.opts.idOf(x.item), this.opts.idOf(y.item)));
      this.inFlight++;
      void this.flush(batch);
    }
  }

  private async flush(batch: Pending<T>[]): Promise<void> {
    try {
      const applied = await this.opts.write(batch.map((p) => p.item));
      for (const p of batch) {
        const id = this.opts.idOf(p.item);
        const error = applied.errorOf?.(id);
        if (error) p.reject(error);
        else p.resolve(applied.has(id));
      }
    } catch (err) {
      for (const p of batch) p.reject(err);
    } finally {
      this.inFlight--;
      this.pump();
    }
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

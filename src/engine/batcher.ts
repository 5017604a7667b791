// Collects the inputs of many runs for a batched step and calls it once per batch: when maxItems
// are waiting, or maxWaitMs after the first item arrived, whichever comes first. One batcher per
// batched step, shared by every worker loop of the process (StepBatchers).
import type { BatchItem, BatchStep, StepDefinition } from '../pipeline/types.js';
import { StepTimeoutError } from './retry.js';
import type { StepSlots } from './step-slots.js';

interface Waiting {
  item: BatchItem<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export class StepBatcher {
  private waiting: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly step: BatchStep,
    /** Runs one call of the step with its timeout applied; rejects when the whole call fails. */
    private readonly call: (items: BatchItem<unknown>[]) => Promise<unknown[]>,
  ) {}

  /** Resolves with this item's output, or rejects with its own error or the call's. */
  submit(item: BatchItem<unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (this.waiting.length >= this.step.batch.maxItems) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.step.batch.maxWaitMs);
    });
  }

  /** Sends whatever is waiting now (used at shutdown). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.step.batch.maxItems);
      void this.send(batch);
    }
  }

  private async send(batch: Waiting[]): Promise<void> {
    // Items whose run was aborted while waiting are not sent.
    const live = batch.filter((w) => {
      if (!w.item.ctx.signal.aborted) return true;
      w.reject(w.item.ctx.signal.reason);
      return false;
    });
    if (live.length === 0) return;
    try {
      const results = await this.call(live.map((w) => w.item));
      if (!Array.isArray(results) || results.length !== live.length) {
        throw new Error(`batched step "${this.step.name}" returned ${Array.isArray(results) ? results.length : typeof results} results for ${live.length} items`);
      }
      live.forEach((w, i) => {
        const r = results[i];
        if (r instanceof Error) w.reject(r);
        else w.resolve(r);
      });
    } catch (err) {
      for (const w of live) w.reject(err);
    }
  }
}

/** The batchers of a process, made on first use; each call of a batched step holds one of its slots. */
export class StepBatchers {
  private readonly batchers = new Map<string, StepBatcher>();

  constructor(private readonly slots: StepSlots) {}

  /** The batcher of a batched step; undefined for a step that is not batched. */
  for(pipeline: string, step: StepDefinition): StepBatcher | undefined {
    if (!step.batch) return undefined;
    const k = `${pipeline}\u0000${step.name}`;
    let b = this.batchers.get(k);
    if (!b) {
      const batchStep = step as BatchStep;
      b = new StepBatcher(batchStep, async (items: BatchItem<unknown>[]) => {
        const signal = batchStep.timeoutMs ? AbortSignal.timeout(batchStep.timeoutMs) : new AbortController().signal;
        const release = await this.slots.acquire(pipeline, step, signal);
        try {
          const call = batchStep.run(items, signal);
          if (!batchStep.timeoutMs) return await call;
          return await Promise.race([call, new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new StepTimeoutError(`batched step "${step.name}" timed out after ${batchStep.timeoutMs} ms`)), { once: true }))]);
        } finally {
          release();
        }
      });
      this.batchers.set(k, b);
    }
    return b;
  }

  /** Sends every waiting batch now (shutdown). */
  flushAll(): void {
    for (const b of this.batchers.values()) b.flush();
  }
}

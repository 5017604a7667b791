// Step concurrency limits across every worker and process, through leased rows in
// walflow.step_slots (statements: sql/lease.ts). Steps without a limit never touch the database here.
import type pg from 'pg';
import type { StepDefinition } from '../pipeline/types.js';
import type { RunControl } from './run-control.js';
import { releaseSlot, renewSlots, takeSlot } from './sql/lease.js';

export class StepSlots {
  /** Slots this process holds, keyed "pipeline\u0000step" → slot numbers, renewed with run leases. */
  private readonly held = new Map<string, Set<number>>();
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly owner: string,
    private readonly leaseMs: number,
  ) {}

  /** Waits for a free slot of this step; resolves with its release function. */
  async acquire(pipeline: string, step: StepDefinition, signal: Pick<RunControl, 'throwIfAborted'>): Promise<() => void> {
    if (!step.concurrency) return () => undefined;
    let delay = 10;
    while (true) {
      signal.throwIfAborted();
      const slot = await takeSlot(this.pool, pipeline, step.name, this.owner, this.leaseMs);
      if (slot !== undefined) {
        const k = `${pipeline}\u0000${step.name}`;
        if (!this.held.has(k)) this.held.set(k, new Set());
        this.held.get(k)!.add(slot);
        let released = false;
        return () => {
          if (released) return;
          released = true;
          this.held.get(k)?.delete(slot);
          void releaseSlot(this.pool, pipeline, step.name, slot, this.owner)
            .catch(() => undefined) // an unreleased slot frees itself when its lease expires
            .finally(() => this.wakeWaiters());
        };
      }
      // All taken: wait for a local release or a short, growing delay (slots held elsewhere).
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          this.waiters.delete(done);
          resolve();
        };
        const t = setTimeout(done, delay);
        this.waiters.add(done);
      });
      delay = Math.min(delay * 2, 250);
    }
  }

  private wakeWaiters(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Extends the leases of held slots (called with the run lease renewal). */
  async renew(): Promise<void> {
    if (this.held.size === 0) return;
    await renewSlots(this.pool, this.owner, this.leaseMs);
  }
}

// Step concurrency limits across every worker and process, through leased rows in
// walflow.step_slots. Steps without a limit never touch the database here.
import type pg from 'pg';
import type { StepDefinition } from '../pipeline/types.js';
import type { RunControl } from './run-control.js';

export async function syncSlots(pool: pg.Pool, pipeline: string, steps: StepDefinition[]): Promise<void> {
  const limits = steps.map((s) => ({ step: s.name, n: s.concurrency ?? 0 }));
  await pool.query(
    `WITH l AS (SELECT * FROM jsonb_to_recordset($2::jsonb) AS x(step text, n int)),
     del AS (DELETE FROM walflow.step_slots s WHERE s.pipeline = $1
               AND NOT EXISTS (SELECT 1 FROM l WHERE l.step = s.step AND s.slot < l.n))
     INSERT INTO walflow.step_slots (pipeline, step, slot)
     SELECT $1, l.step, g FROM l, generate_series(0, l.n - 1) g
     ON CONFLICT DO NOTHING`,
    [pipeline, JSON.stringify(limits)],
  );
}

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
      const { rows } = await this.pool.query<{ slot: number }>(
        `UPDATE walflow.step_slots s SET owner = $3, expires_at = now() + $4 * interval '1 millisecond'
          WHERE (s.pipeline, s.step, s.slot) = (
            SELECT pipeline, step, slot FROM walflow.step_slots
             WHERE pipeline = $1 AND step = $2 AND (owner IS NULL OR expires_at < now())
             LIMIT 1 FOR UPDATE SKIP LOCKED)
          RETURNING s.slot`,
        [pipeline, step.name, this.owner, this.leaseMs],
      );
      const slot = rows[0]?.slot;
      if (slot !== undefined) {
        const k = `${pipeline}\u0000${step.name}`;
        if (!this.held.has(k)) this.held.set(k, new Set());
        this.held.get(k)!.add(slot);
        let released = false;
        return () => {
          if (released) return;
          released = true;
          this.held.get(k)?.delete(slot);
          void this.pool
            .query(`UPDATE walflow.step_slots SET owner = NULL, expires_at = NULL WHERE pipeline = $1 AND step = $2 AND slot = $3 AND owner = $4`, [pipeline, step.name, slot, this.owner])
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
    await this.pool.query(`UPDATE walflow.step_slots SET expires_at = now() + $2 * interval '1 millisecond' WHERE owner = $1`, [this.owner, this.leaseMs]);
  }
}

// The scheduler of one process: fires due schedules (walflow.schedules) of the pipelines it loads.
// Every process runs one; no leader is needed: a schedule is fired in one short transaction that
// locks its row (FOR UPDATE SKIP LOCKED), starts its runs with dedupe ids `schedule:<name>:<tick>`
// and moves next_tick on, so whoever crashes, each tick starts exactly one run. It sleeps until
// the nearest next tick; NOTIFY walflow_schedules (a schedule created, changed or dropped) wakes it,
// and it never sleeps longer than the poll backstop.
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Queryable } from '../db/queryable.js';
import { nextTick } from '../pipeline/schedule.js';
import { ticksToFire } from './schedule-ticks.js';
import { claimDue, claimUncomputed, msUntilNextTick, setError, setTicks, type ScheduleRow } from './sql/schedules.js';

export interface SchedulerOptions {
  pool: pg.Pool;
  log: Logger;
  /** The pipelines this process loads now (only their schedules are fired here). */
  pipelines: () => string[];
  /** Starts runs inside the firing transaction (the engine's start path). */
  start: (pipeline: string, items: { input: unknown; dedupeId: string }[], db: Queryable) => Promise<unknown>;
  /** Longest sleep (a missed NOTIFY costs at most this). */
  pollMs: number;
}

/** Shortest sleep: a schedule another process holds locked is due again at once. */
const MIN_SLEEP_MS = 20;
const RETRY_MS = 1_000;

export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private busy: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly o: SchedulerOptions) {}

  start(): void {
    this.wake();
  }

  /** Looks at the schedules now (a change was notified, the pipelines changed). */
  wake(): void {
    if (this.stopped) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.busy = this.cycle().finally(() => {
      this.busy = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.busy;
  }

  private async cycle(): Promise<void> {
    let sleep: number;
    try {
      await this.computeNew();
      while (!this.stopped && (await this.fireOne())) { /* next due schedule */ }
      const ms = await msUntilNextTick(this.o.pool, this.o.pipelines());
      sleep = ms === null ? this.o.pollMs : Math.min(this.o.pollMs, Math.max(MIN_SLEEP_MS, Math.ceil(ms)));
    } catch (err) {
      this.o.log.warn({ err }, 'scheduler: could not fire schedules; will retry');
      sleep = RETRY_MS;
    }
    if (!this.stopped) this.timer = setTimeout(() => this.wake(), sleep);
  }

  /** New or changed schedules get their first tick (after now); a timing croner cannot read gets its error. */
  private async computeNew(): Promise<void> {
    await this.inTransaction(async (c) => {
      const now = (await c.query<{ now: Date }>('SELECT now()')).rows[0]!.now;
      for (const s of await claimUncomputed(c, 100)) {
        try {
          await setTicks(c, s.name, nextTick(s, now), null);
        } catch (err) {
          this.o.log.warn({ schedule: s.name, err: (err as Error).message }, 'schedule cannot be read; recorded in walflow.schedule_status');
          await setError(c, s.name, (err as Error).message);
        }
      }
    });
  }

  /** Fires one due schedule in one transaction; false when none is due (or all are held by others). */
  private async fireOne(): Promise<boolean> {
    const pipelines = this.o.pipelines();
    if (pipelines.length === 0) return false;
    return this.inTransaction(async (c) => {
      const { rows, now } = await claimDue(c, pipelines, 1);
      const s = rows[0];
      if (!s) return false;
      await this.fire(c, s, now);
      return true;
    });
  }

  private async fire(c: Queryable, s: ScheduleRow, now: Date): Promise<void> {
    const f = ticksToFire(s, s.catch_up, s.next_tick!, now);
    if (f.fire.length > 0) {
      await this.o.start(s.pipeline, f.fire.map((tick) => ({
        input: { ...s.input, tick: tick.toISOString(), schedule: s.name },
        dedupeId: `schedule:${s.name}:${tick.toISOString()}`,
      })), c);
    }
    if (f.skipped > 0) this.o.log.info({ schedule: s.name, skipped: f.skipped, catchUp: s.catch_up }, 'schedule: missed ticks skipped by its catch-up policy');
    await setTicks(c, s.name, f.next, f.fire.at(-1) ?? null);
  }

  private async inTransaction<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.o.pool.connect();
    try {
      await c.query('BEGIN');
      const r = await fn(c);
      await c.query('COMMIT');
      return r;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }
}

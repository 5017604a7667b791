// A worker loop: claims runnable runs in batches, executes them concurrently (up to `maxInFlight`),
// renews their leases while they run, and hands them back on shutdown. (Named so as not to be taken
// for Node's worker threads, which the local embedding model uses.)
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Pipeline } from '../pipeline/define.js';
import type { StepBatchers } from './batcher.js';
import type { GroupWriter } from './group-writer.js';
import { RunControl } from './run-control.js';
import { executeRun, type ExecutorDeps, type RunEnd } from './run-executor.js';
import type { CheckpointItem } from './sql/checkpoint.js';
import { claimRuns } from './sql/claim.js';
import { nextWake, type SleepPark } from './sql/waits.js';
import type { FailureItem } from './sql/fail.js';
import { releaseRuns, renewLeases } from './sql/lease.js';
import type { StepSlots } from './step-slots.js';
import { sleep } from '../util/sleep.js';
import { Wakeup } from './wakeup.js';

/** What every worker loop of a process shares: connections, identity, group commits, batchers, slots. */
export interface WorkerLoopShared {
  pool: pg.Pool;
  /** The loaded pipelines, read at each claim round (a live reload changes them). */
  pipelines: Map<string, Pipeline>;
  owner: string;
  leaseMs: number;
  pollIntervalMs: number;
  log: Logger;
  checkpoints: GroupWriter<CheckpointItem>;
  failures: GroupWriter<FailureItem>;
  /** Sleeps parked and ended in bulk (see sql/waits.ts writeSleepParks, sql/checkpoint.ts writeWakeCheckpoints). */
  sleepParks?: GroupWriter<SleepPark>;
  wakes?: GroupWriter<CheckpointItem>;
  batchers: StepBatchers;
  slots: StepSlots;
  onRunEnd?: (pipeline: string, end: RunEnd) => void;
  onStepDone?: (pipeline: string, step: string, ok: boolean, ms: number) => void;
}

export interface WorkerLoopOptions extends WorkerLoopShared {
  /** Runs executing at once in this loop (a claim takes at most the free part). */
  maxInFlight: number;
}

interface InFlight {
  control: RunControl;
  done: Promise<void>;
}

export class WorkerLoop {
  private readonly inflight = new Map<string, InFlight>();
  private readonly wakeup = new Wakeup();
  private stopping = false;
  private loop: Promise<void> | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private readonly deps: ExecutorDeps;

  constructor(private readonly o: WorkerLoopOptions) {
    this.deps = {
      pool: o.pool, owner: o.owner, leaseMs: o.leaseMs, log: o.log, checkpoints: o.checkpoints, failures: o.failures,
      ...(o.sleepParks && o.wakes ? { sleeps: { parks: o.sleepParks, wakes: o.wakes } } : {}),
      batcherFor: (pipeline, step) => o.batchers.for(pipeline, step),
      acquireSlot: (pipeline, step, control) => o.slots.acquire(pipeline, step, control),
      onRetryScheduled: (at) => this.wakeAt(at),
      ...(o.onStepDone ? { onStepDone: o.onStepDone } : {}),
    };
  }

  get inFlight(): number {
    return this.inflight.size;
  }

  start(): void {
    this.loop = this.claimLoop();
    this.renewTimer = setInterval(() => void this.renew(), Math.max(250, Math.floor(this.o.leaseMs / 3)));
  }

  /** Something may be runnable now (a start in this process, a NOTIFY, a freed key). */
  wake(): void {
    this.wakeup.fire();
  }

  /** Aborts a run's current attempt if this worker runs it (cancelled elsewhere). */
  abortRun(runId: string, reason: Error): void {
    this.inflight.get(runId)?.control.abort(reason);
  }

  /** Wakes at `at` (a scheduled retry). */
  wakeAt(at: Date): void {
    this.wakeup.fireAt(at);
  }

  private async claimLoop(): Promise<void> {
    const capacity = this.o.maxInFlight;
    let next = 0; // round-robin start, so that every pipeline gets its turn at a scarce capacity
    while (!this.stopping) {
      const free = capacity - this.inflight.size;
      // Claim in batches: wait until a quarter of the capacity is free, unless nothing is running.
      let filled = false;
      // Read each round: a live reload adds and removes pipelines while the loop runs.
      const pipelines = [...this.o.pipelines.keys()];
      if (pipelines.length > 0 && free > 0 && (free >= Math.ceil(capacity / 4) || this.inflight.size === 0)) {
        try {
          let want = free;
          for (let i = 0; i < pipelines.length && want > 0; i++) {
            const pipeline = pipelines[(next + i) % pipelines.length]!;
            const claimed = await claimRuns(this.o.pool, pipeline, want, this.o.owner, this.o.leaseMs);
            for (const run of claimed) this.launch(run);
            want -= claimed.length;
          }
          next = (next + 1) % pipelines.length;
          filled = want === 0; // probably more where these came from
        } catch (err) {
          this.o.log.error({ err }, 'claim failed; retrying');
          await this.wakeup.wait(1000);
          continue;
        }
      }
      if (!filled) {
        await this.armTimer(pipelines);
        await this.wakeup.wait(this.o.pollIntervalMs);
      }
    }
  }

  /**
   * Runs parked by any process (sleeps, retries, repeats) wake on time: before going idle, the loop
   * sets its timer for the earliest wake time (one index probe per pipeline), and the poll stays a
   * backstop.
   */
  private async armTimer(pipelines: string[]): Promise<void> {
    if (pipelines.length === 0) return;
    try {
      const at = await nextWake(this.o.pool, pipelines);
      if (at) this.wakeup.fireAt(at);
    } catch (err) {
      this.o.log.warn({ err }, 'could not read the next wake time; the poll is the backstop');
    }
  }

  private launch(run: Awaited<ReturnType<typeof claimRuns>>[number]): void {
    const pipeline = this.o.pipelines.get(run.pipeline);
    if (!pipeline) {
      // Removed by a live reload while it was being claimed: hand it back, queued.
      releaseRuns(this.o.pool, [run.id], this.o.owner).catch((err: unknown) => this.o.log.warn({ err, run: run.id }, 'could not release a run of a removed pipeline; it resumes after its lease expires'));
      return;
    }
    const control = new RunControl();
    const entry: InFlight = { control, done: Promise.resolve() };
    entry.done = executeRun(run, pipeline, control, this.deps)
      .then((end) => this.o.onRunEnd?.(run.pipeline, end))
      .catch((err: unknown) => {
        // Bookkeeping failed (database unreachable): the lease will expire and the run be retried.
        this.o.log.error({ err, run: run.id }, 'run bookkeeping failed; the run will be resumed after its lease expires');
      })
      .finally(() => {
        // The same run may have been claimed again meanwhile (this attempt lost its lease without
        // noticing): only this attempt's entry is removed.
        if (this.inflight.get(run.id) === entry) this.inflight.delete(run.id);
        // A finished run may unblock the next run of its key, and frees capacity.
        this.wakeup.fire();
      });
    this.inflight.set(run.id, entry);
  }

  private async renew(): Promise<void> {
    const snapshot = [...this.inflight];
    if (snapshot.length === 0) return;
    try {
      const owned = await renewLeases(this.o.pool, snapshot.map(([id]) => id), this.o.owner, this.o.leaseMs);
      for (const [id, f] of snapshot) {
        // Not owned: cancelled, taken over, or finished between the snapshot and the renewal. Only
        // the attempt the renewal was about is aborted: the same run may have failed, waited and
        // been claimed again meanwhile, and that new attempt is not this renewal's business.
        if (!owned.has(id) && this.inflight.get(id) === f) f.control.abort(new Error('run was cancelled or its lease was taken over'));
      }
    } catch (err) {
      this.o.log.warn({ err }, 'lease renewal failed; will retry');
    }
  }

  /**
   * Stops claiming, lets running steps finish until the deadline, then aborts what remains and
   * releases it so that another worker picks it up at once.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    this.wakeup.fire();
    await this.loop;
    const all = Promise.all([...this.inflight.values()].map((f) => f.done));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    const remaining = [...this.inflight.keys()];
    for (const f of this.inflight.values()) f.control.abort(new Error('worker shutting down'));
    if (remaining.length > 0) {
      await releaseRuns(this.o.pool, remaining, this.o.owner).catch((err: unknown) => this.o.log.error({ err }, 'could not release runs; they resume after their leases expire'));
      this.o.log.info({ released: remaining.length }, 'released unfinished runs');
    }
    await Promise.race([all, sleep(1000)]);
    clearInterval(this.renewTimer);
    this.wakeup.close();
  }
}

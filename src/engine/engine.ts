// The durable engine of one process: registers its pipelines, starts runs, and runs workers with
// their wake-ups (in-process, LISTEN/NOTIFY hint, polling backstop), lease reaping and pruning.
import pg from 'pg';
import type { Logger } from 'pino';
import { DEFAULTS } from '../config/defaults.js';
import type { Queryable } from '../db/queryable.js';
import { UserError } from '../errors.js';
import { silentLogger } from '../log.js';
import type { Pipeline } from '../pipeline/define.js';
import type { Json, PipelineHookContext } from '../pipeline/types.js';
import { newProcessId } from '../util/process-id.js';
import { repeatWithoutOverlap, type Repeating } from '../util/repeat.js';
import { StepBatchers } from './batcher.js';
import { GroupWriter } from './group-writer.js';
import { writeSleepParks, type SleepPark } from './sql/waits.js';
import { NotifyListener } from './notify-listener.js';
import type { RunEnd } from './run-executor.js';
import { writeCheckpoints, writeWakeCheckpoints, type CheckpointItem } from './sql/checkpoint.js';
import { writeFailures, type FailureItem } from './sql/fail.js';
import { reapExpiredLeases } from './sql/lease.js';
import { removeFileSchedules, syncFileSchedules } from './sql/schedules.js';
import { Scheduler } from './scheduler.js';
import { pruneDeadWorkers, pruneFinished, recordHeartbeat, removeWorker } from './sql/maintenance.js';
import { registerPipelines, startRuns, syncSlots, type StartRequest, type StartResult } from './sql/start.js';
import { StepSlots } from './step-slots.js';
import { WorkerLoop } from './worker-loop.js';

export interface EngineOptions {
  url: string;
  pipelines: Pipeline[];
  log?: Logger;
  /** Worker loops in this process (default 1: see DEFAULTS.engineWorkers). */
  workers?: number;
  /** Runs executing at once per worker loop; a claim takes at most the free part (default DEFAULTS.maxInFlight). */
  maxInFlight?: number;
  /** @deprecated the old name of maxInFlight. */
  capacity?: number;
  leaseMs?: number;
  pollIntervalMs?: number;
  /** Finished runs older than this are pruned; 0 disables pruning. */
  retentionMs?: number;
  shutdownTimeoutMs?: number;
  /** Database connections of this process. */
  poolSize?: number;
  /** Observes every run end (metrics, tests). */
  onRunEnd?: (pipeline: string, end: RunEnd) => void;
  onStepDone?: (pipeline: string, step: string, ok: boolean, ms: number) => void;
}

export interface StartOptions {
  key?: string | null;
  dedupeId?: string | null;
}

export class Engine {
  readonly owner = newProcessId();
  readonly pool: pg.Pool;
  private readonly log: Logger;
  private readonly pipelines = new Map<string, Pipeline>();
  private readonly workers: WorkerLoop[] = [];
  private readonly slots: StepSlots;
  private readonly batchers: StepBatchers;
  private listener: NotifyListener | undefined;
  private scheduler: Scheduler | undefined;
  private chores: Repeating[] = [];
  private readonly leaseMs: number;

  constructor(private readonly o: EngineOptions) {
    this.log = (o.log ?? silentLogger).child({ component: 'engine' });
    if (o.capacity !== undefined) this.log.warn('Engine option `capacity` is deprecated: use `maxInFlight` (same meaning: runs in flight per worker loop)');
    this.leaseMs = o.leaseMs ?? DEFAULTS.leaseMs;
    this.pool = new pg.Pool({ connectionString: o.url, max: o.poolSize ?? DEFAULTS.enginePoolSize, idleTimeoutMillis: 30_000 });
    this.pool.on('error', (err) => this.log.warn({ err }, 'idle database connection failed'));
    for (const p of o.pipelines) {
      if (this.pipelines.has(p.name)) throw new UserError(`two pipelines are named "${p.name}"`);
      this.pipelines.set(p.name, p);
    }
    this.slots = new StepSlots(this.pool, this.owner, this.leaseMs);
    this.batchers = new StepBatchers(this.slots);
  }

  /** Records the loaded pipelines (walflow.start() accepts only registered names) and their limits. */
  async register(): Promise<void> {
    await this.registerSome([...this.pipelines.values()]);
  }

  private async registerSome(pipelines: Pipeline[]): Promise<void> {
    const defs = pipelines.map((p) => ({
      name: p.name, version: p.version, steps: p.stepNames,
      source: p.source ? (JSON.parse(JSON.stringify({ ...p.source, where: p.source.where ? String(p.source.where) : undefined })) as Json) : null,
      start_roles: p.startRoles ?? null,
    }));
    await registerPipelines(this.pool, defs);
    await syncFileSchedules(this.pool, pipelines);
    for (const p of pipelines) {
      await syncSlots(this.pool, p.name, p.steps);
      await p.setup?.(this.hookContext(p.name));
    }
  }

  /**
   * Replaces the loaded pipelines (a live reload): added and changed ones are registered and set up
   * first, then swapped in. Runs in flight finish on the definition object they started with (the
   * worker holds it); runs claimed from now on use the new one. A removed pipeline's queued runs
   * stay queued: no worker of this process claims them any more.
   */
  async setPipelines(next: readonly Pipeline[]): Promise<void> {
    const names = new Set<string>();
    for (const p of next) {
      if (names.has(p.name)) throw new UserError(`two pipelines are named "${p.name}"`);
      names.add(p.name);
    }
    const changed = next.filter((p) => this.pipelines.get(p.name) !== p);
    await this.registerSome(changed);
    const removed = [...this.pipelines.values()].filter((p) => !names.has(p.name));
    for (const p of removed) this.pipelines.delete(p.name);
    // This process stopped loading them: their file schedules go (another process that still loads
    // such a pipeline writes them again when it next loads it; see "Schedules" in the README).
    await removeFileSchedules(this.pool, removed.map((p) => p.name));
    for (const p of next) this.pipelines.set(p.name, p);
    if (this.workers.length > 0) {
      for (const p of [...removed, ...changed]) this.scheduleMaintenance(p.name, this.pipelines.get(p.name));
      for (const w of this.workers) w.wake();
      this.scheduler?.wake();
    }
    for (const p of removed) await p.close?.().catch((err: unknown) => this.log.warn({ err, pipeline: p.name }, 'pipeline close failed'));
  }

  private readonly maintenance = new Map<string, Repeating>();

  /** (Re)schedules a pipeline's maintenance hook; undefined stops it. */
  private scheduleMaintenance(name: string, p: Pipeline | undefined): void {
    this.maintenance.get(name)?.stop();
    this.maintenance.delete(name);
    const m = p?.maintenance;
    if (!m) return;
    this.maintenance.set(name, repeatWithoutOverlap(m.everyMs, () => m.run(this.hookContext(name)), (err) => this.log.warn({ err, pipeline: name }, 'maintenance failed; will retry')));
  }

  private readonly hooksAbort = new AbortController();

  private hookContext(pipeline: string): PipelineHookContext {
    return { db: this.pool, url: this.o.url, log: this.log.child({ pipeline }), signal: this.hooksAbort.signal };
  }

  pipeline(name: string): Pipeline {
    const p = this.pipelines.get(name);
    if (!p) throw new UserError(`unknown pipeline "${name}" (loaded: ${[...this.pipelines.keys()].join(', ') || 'none'})`);
    return p;
  }

  /** Starts one run; returns its id (the existing run's id when dedupeId was seen before). */
  async start(pipeline: string, input: unknown, opts: StartOptions = {}): Promise<string> {
    const [r] = await this.startMany(pipeline, [{ input, ...opts }]);
    return r!.run_id;
  }

  /** Starts runs in one statement. Pass `db` to start them inside your own transaction. */
  async startMany(pipeline: string, items: (StartOptions & { input: unknown })[], db: Queryable = this.pool): Promise<StartResult[]> {
    const p = this.pipeline(pipeline);
    const rows: StartRequest[] = items.map((it) => ({
      input: it.input,
      key: it.key !== undefined ? it.key : (p.key?.(it.input) ?? null),
      dedupe_id: it.dedupeId ?? null,
    }));
    const results = await startRuns(db, pipeline, rows);
    if (db === this.pool) for (const w of this.workers) w.wake();
    return results;
  }

  /** Starts the worker loops and the background chores. */
  async runWorkers(): Promise<void> {
    if (this.workers.length > 0) return;
    const checkpoints = new GroupWriter<CheckpointItem>({
      write: (items) => writeCheckpoints(this.pool, items), idOf: (i) => i.run_id, maxBatch: 2000, parallel: 2,
    });
    const failures = new GroupWriter<FailureItem>({
      write: (items) => writeFailures(this.pool, items, this.owner), idOf: (i) => i.run_id, maxBatch: 1000, parallel: 1, ordered: true,
    });
    // Sleeps park and wake in bulk (100,000 runs waking at one instant): group-committed too.
    const sleepParks = new GroupWriter<SleepPark>({
      write: async (items) => {
        const parked = await writeSleepParks(this.pool, items, this.owner);
        return { has: (id: string) => parked.has(id) };
      }, idOf: (i) => i.run_id, maxBatch: 1000, parallel: 1, ordered: true,
    });
    const wakes = new GroupWriter<CheckpointItem>({
      write: (items) => writeWakeCheckpoints(this.pool, items), idOf: (i) => i.run_id, maxBatch: 1000, parallel: 1,
    });
    const { onRunEnd, onStepDone } = this.o;
    const shared = {
      pool: this.pool, pipelines: this.pipelines, owner: this.owner, leaseMs: this.leaseMs, log: this.log,
      pollIntervalMs: this.o.pollIntervalMs ?? DEFAULTS.pollIntervalMs,
      checkpoints, failures, sleepParks, wakes, batchers: this.batchers, slots: this.slots,
      ...(onRunEnd ? { onRunEnd } : {}), ...(onStepDone ? { onStepDone } : {}),
    };
    const maxInFlight = this.o.maxInFlight ?? this.o.capacity ?? DEFAULTS.maxInFlight;
    const n = this.o.workers ?? DEFAULTS.engineWorkers;
    for (let i = 0; i < n; i++) {
      const worker = new WorkerLoop({ ...shared, maxInFlight });
      this.workers.push(worker);
      worker.start();
    }
    this.listener = new NotifyListener(this.o.url, {
      walflow_runs: () => this.workers.forEach((w) => w.wake()),
      walflow_schedules: () => this.scheduler?.wake(),
      // A run cancelled mid-step stops now rather than at its next lease renewal (a missed notice
      // only delays that: the renewal still finds it cancelled).
      walflow_cancel: (runId) => {
        if (runId) for (const w of this.workers) w.abortRun(runId, new Error('run was cancelled'));
      },
    }, this.log);
    await this.listener.start();
    this.scheduler = new Scheduler({
      pool: this.pool, log: this.log.child({ component: 'scheduler' }), pipelines: () => [...this.pipelines.keys()],
      start: (pipeline, items, db) => this.startMany(pipeline, items, db), pollMs: DEFAULTS.schedulePollMs,
    });
    this.scheduler.start();
    this.every(Math.max(500, Math.floor(this.leaseMs / 2)), async () => {
      await reapExpiredLeases(this.pool);
      await this.slots.renew();
    });
    await this.heartbeat();
    this.every(10_000, () => this.heartbeat());
    for (const p of this.pipelines.values()) this.scheduleMaintenance(p.name, p);
    const retention = this.o.retentionMs ?? DEFAULTS.retentionHours * 3600_000;
    if (retention > 0) this.every(60_000, async () => { while ((await pruneFinished(this.pool, retention)) > 0) { /* next batch */ } });
  }

  /** Tells operators (walflow.worker_health) that this process is alive and what it holds. */
  private async heartbeat(): Promise<void> {
    await recordHeartbeat(this.pool, this.owner, [...this.pipelines.keys()], this.inFlight);
    // Maintenance: processes silent for an hour (SIGKILLed, their host gone) leave walflow status.
    await pruneDeadWorkers(this.pool);
  }

  private every(ms: number, chore: () => Promise<void>): void {
    this.chores.push(repeatWithoutOverlap(ms, chore, (err) => this.log.warn({ err }, 'background chore failed; will retry')));
  }

  /** Runs executing in this process now (a parked run is not one of them). */
  get inFlight(): number {
    return this.workers.reduce((n, w) => n + w.inFlight, 0);
  }

  /** Graceful stop: no new claims, running steps get until the deadline, the rest is released. */
  async stop(): Promise<void> {
    this.hooksAbort.abort();
    for (const c of this.chores) c.stop();
    this.chores = [];
    for (const m of this.maintenance.values()) m.stop();
    this.maintenance.clear();
    this.batchers.flushAll();
    await this.scheduler?.stop();
    await Promise.all(this.workers.map((w) => w.stop(this.o.shutdownTimeoutMs ?? DEFAULTS.shutdownTimeoutMs)));
    this.workers.length = 0;
    await this.listener?.stop();
    await removeWorker(this.pool, this.owner).catch(() => undefined);
    await this.pool.end();
    for (const p of this.pipelines.values()) await p.close?.().catch((err: unknown) => this.log.warn({ err, pipeline: p.name }, 'pipeline close failed'));
  }
}

// ReplicationSource: WAL in → RxJS → committed run starts → slot acknowledged. start() validates
// the server and the pipelines' sources (failing with one clear line), then competes for the slot:
// the leader streams, standbys poll for the lock and take over within `standbyPollMs` of its loss.
import pg from 'pg';
import type { Logger } from 'pino';
import { BehaviorSubject, filter, firstValueFrom, timeout, type Observable } from 'rxjs';
import { UserError } from '../errors.js';
import type { Pipeline } from '../pipeline/define.js';
import { DEFAULTS, defaultLowWatermark, RECONNECT_BACKOFF } from '../config/defaults.js';
import { backoffMs } from '../util/backoff.js';
import { newProcessId } from '../util/process-id.js';
import { sleep } from '../util/sleep.js';
import { LeaderLock } from './leadership/leader-lock.js';
import { Leadership } from './leadership/leader-duties.js';
import type { SourceTable } from '../pipeline/source-tables.js';
import { newCounters, type ReplicationCounters, type Route } from './types.js';
import { checkServer, resolveSources, sourceTableNames, type ResolvedSources } from './setup/validate.js';

export interface ReplicationSourceOptions {
  url: string;
  pipelines: readonly Pipeline[];
  slotName: string;
  publicationName: string;
  logger: Logger;
  /** Run starts per transaction, and the longest a change waits for its batch to fill. */
  batch?: { maxItems: number; maxWaitMs: number };
  /**
   * Writer connections starting runs in parallel (default 2); the changes of one key always go
   * through the same one, in WAL order.
   */
  writers?: number;
  /** Queued runs above which WAL reading pauses, and below which it resumes. */
  highWatermark?: number;
  lowWatermark?: number;
  heartbeatMs?: number;
  /** How often a standby tries to take the lead. */
  standbyPollMs?: number;
  /** Identifies this process in walflow.replication_state. */
  instanceId?: string;
  /**
   * The pipelines' sources, already resolved by a caller that checked the server too (the runner
   * validates once at startup); unset: start() checks the server and resolves them itself.
   */
  resolved?: ResolvedSources;
  /** Called by the leader after each publication sync (see LeadershipConfig.onPublished). */
  onPublished?: (signal: AbortSignal) => Promise<void>;
}

/** `failed`: replication stopped for good (missing privileges, an invalidated slot); see lastError. */
export type ReplicationRole = 'idle' | 'standby' | 'leader' | 'stopped' | 'failed';

export interface ReplicationStatus {
  role: ReplicationRole;
  /** Last position whose run starts committed (and that the slot may be acknowledged to). */
  durableLsn: string | null;
  /** pg_current_wal_lsn() − the slot's confirmed_flush_lsn, as of the last heartbeat. */
  lagBytes: number | null;
  /** Reading paused because the run queue is above the high watermark. */
  paused: boolean;
  lastError: string | null;
}

export class ReplicationSource {
  readonly counters: ReplicationCounters = newCounters();
  private readonly status$ = new BehaviorSubject<ReplicationStatus>({ role: 'idle', durableLsn: null, lagBytes: null, paused: false, lastError: null });
  private readonly stopper = new AbortController();
  private readonly pool: pg.Pool;
  private readonly lock: LeaderLock;
  private readonly log: Logger;
  private readonly instanceId: string;
  private loop: Promise<void> | undefined;
  /** Set when leading is impossible (missing privileges): ready() rejects with it. */
  private fatal: string | undefined;
  /** Standing by because another process holds the lead (not because leading just failed). */
  private anotherLeads = false;
  /** Shared with the stream's routing operator and mutated in place by setPipelines(). */
  private readonly routesByTable = new Map<string, Route[]>();
  private tables: SourceTable[] = [];
  private pipelines: readonly Pipeline[];
  private leadership: Leadership | undefined;

  constructor(private readonly opts: ReplicationSourceOptions) {
    this.log = opts.logger.child({ component: 'replication', slot: opts.slotName });
    this.instanceId = opts.instanceId ?? newProcessId();
    this.pool = new pg.Pool({ connectionString: opts.url, max: 4 + Math.max(1, opts.writers ?? DEFAULTS.replicationWriters), application_name: 'walflow-replication', keepAlive: true });
    // An idle pooled connection that dies (server restart) must not crash the process.
    this.pool.on('error', (err) => this.log.warn({ err: err.message }, 'replication: pooled connection lost'));
    this.lock = new LeaderLock(opts.url, opts.slotName, this.log);
    // Checked before anything connects: a source in schema walflow is a definition error.
    if (!opts.resolved) sourceTableNames(opts.pipelines);
    this.pipelines = opts.pipelines;
  }

  /** The source pipelines routed now. */
  get loaded(): readonly Pipeline[] {
    return this.pipelines;
  }

  private useRoutes(routes: readonly Route[], tables: SourceTable[]): void {
    // Synchronously, so that no change is routed by half of the old and half of the new set.
    this.routesByTable.clear();
    for (const r of routes) this.routesByTable.set(r.table, [...(this.routesByTable.get(r.table) ?? []), r]);
    this.tables = tables;
  }

  /**
   * A live reload: routes the new set of source pipelines, then (when leading) makes the publication
   * match it, adding tables only now that their changes have a route, and starts initial backfills.
   * Rejects (changing nothing) when a source is invalid. `resolved`: the caller resolved them already.
   */
  async setPipelines(pipelines: readonly Pipeline[], resolved?: ResolvedSources): Promise<void> {
    resolved ??= await resolveSources(this.pool, pipelines);
    for (const w of resolved.warnings) this.log.warn(w);
    this.pipelines = pipelines;
    this.useRoutes(resolved.routes, resolved.tables);
    await this.leadership?.publish();
  }

  get status(): Observable<ReplicationStatus> {
    return this.status$.asObservable();
  }

  get currentStatus(): ReplicationStatus {
    return this.status$.value;
  }

  /** Validates, then starts competing for the slot in the background. Rejects on a setup problem. */
  async start(): Promise<void> {
    if (this.loop) throw new Error('ReplicationSource already started');
    if (this.opts.resolved) {
      for (const w of this.opts.resolved.warnings) this.log.warn(w);
      this.useRoutes(this.opts.resolved.routes, this.opts.resolved.tables);
      this.loop = this.compete();
      return;
    }
    const client = await this.pool.connect();
    const onError = (): void => undefined; // reported by the failing query instead
    client.on('error', onError);
    try {
      await checkServer(client);
      const resolved = await resolveSources(client, this.opts.pipelines);
      for (const w of resolved.warnings) this.log.warn(w);
      this.useRoutes(resolved.routes, resolved.tables);
    } finally {
      client.removeListener('error', onError);
      client.release();
    }
    this.loop = this.compete();
  }

  /**
   * Resolves once this process stands by, or leads with its slot in place: from then on every
   * committed change to a source table becomes a run (changes committed before the slot existed
   * need a backfill). Rejects after `timeoutMs` with the last error.
   */
  async ready(timeoutMs = 30_000): Promise<ReplicationStatus> {
    const ready$ = this.status$.pipe(filter((s) => this.fatal !== undefined || (s.role === 'standby' && this.anotherLeads) || (s.role === 'leader' && s.durableLsn !== null)));
    let status: ReplicationStatus;
    try {
      status = await firstValueFrom(ready$.pipe(timeout(timeoutMs)));
    } catch {
      throw new Error(`replication did not become ready within ${timeoutMs} ms${this.currentStatus.lastError ? `: ${this.currentStatus.lastError}` : ''}`);
    }
    if (this.fatal !== undefined) throw new UserError(this.fatal);
    return status;
  }

  /** Stops streaming (the batch in flight finishes), releases the lock and closes connections. */
  async stop(): Promise<void> {
    this.stopper.abort();
    await this.loop;
    await this.lock.release();
    await this.pool.end().catch(() => undefined);
    this.update({ role: 'stopped' });
    this.status$.complete();
  }

  private update(patch: Partial<ReplicationStatus>): void {
    if (!this.status$.closed) this.status$.next({ ...this.status$.value, ...patch });
  }

  private async compete(): Promise<void> {
    const signal = this.stopper.signal;
    const pollMs = this.opts.standbyPollMs ?? DEFAULTS.standbyPollMs;
    for (let attempt = 0; !signal.aborted; ) {
      try {
        if (!(await this.lock.tryAcquire())) {
          attempt = 0;
          if (this.currentStatus.role !== 'standby') this.log.info({ instance: this.instanceId }, 'replication: standing by (another process leads)');
          this.anotherLeads = true;
          this.update({ role: 'standby' });
          await sleep(pollMs, signal);
          continue;
        }
        this.anotherLeads = false;
        this.log.info({ instance: this.instanceId }, 'replication: leading');
        this.update({ role: 'leader' });
        await this.lead(signal);
        attempt = 0;
      } catch (err) {
        if (signal.aborted) break;
        if ((err as { code?: string }).code === '42501' || err instanceof UserError) {
          // Missing privileges or a conflicting setup (a slot of that name for another database)
          // do not heal by retrying: say what to do, and stop competing.
          this.fatal = err instanceof UserError ? err.message : `replication cannot lead with this role: ${(err as Error).message}. The leader creates the publication ${this.opts.publicationName} (needs CREATE on the database and ownership of the source tables) unless it exists: as a superuser, CREATE PUBLICATION ${this.opts.publicationName} FOR TABLE <source tables>, or GRANT CREATE ON DATABASE and ALTER TABLE … OWNER TO this role`;
          this.log.error({ err }, this.fatal);
          this.update({ role: 'failed', lastError: this.fatal });
          await this.lock.release();
          break;
        }
        this.log.warn({ err, attempt }, 'replication: lost or could not take the lead; retrying');
        this.update({ lastError: (err as Error).message });
        await this.lock.release();
        await sleep(backoffMs(attempt++, RECONNECT_BACKOFF), signal);
      }
    }
  }

  /** Leads until stop() or until the lock's connection is lost (then competes again). */
  private async lead(stopSignal: AbortSignal): Promise<void> {
    const leading = new AbortController();
    const onStop = (): void => leading.abort();
    stopSignal.addEventListener('abort', onStop, { once: true });
    void this.lock.lost().then((err) => {
      if (!leading.signal.aborted) leading.abort(err);
    });
    const o = this.opts;
    const leadership = new Leadership(
      {
        url: o.url, slotName: o.slotName, publicationName: o.publicationName, routesByTable: this.routesByTable, tables: () => this.tables,
        ...(o.onPublished ? { onPublished: o.onPublished } : {}),
        batch: o.batch ?? DEFAULTS.replicationBatch, writers: Math.max(1, o.writers ?? DEFAULTS.replicationWriters),
        watermark: { high: o.highWatermark ?? DEFAULTS.highWatermark, low: o.lowWatermark ?? defaultLowWatermark(o.highWatermark ?? DEFAULTS.highWatermark) },
        counters: this.counters, log: this.log, leaderId: this.instanceId, heartbeatMs: o.heartbeatMs ?? DEFAULTS.replicationHeartbeatMs,
        onStatus: (s) => this.update(s),
      },
      this.pool,
    );
    this.leadership = leadership;
    try {
      await leadership.run(leading.signal);
    } finally {
      this.leadership = undefined;
      stopSignal.removeEventListener('abort', onStop);
      if (!stopSignal.aborted) {
        // Lost the lock (or setup failed): drop the connection so the next attempt starts clean.
        this.update({ role: 'standby' });
        await this.lock.release();
      }
    }
    if (leading.signal.reason instanceof Error) throw leading.signal.reason;
  }
}

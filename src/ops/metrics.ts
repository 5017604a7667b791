// Prometheus metrics. Counters and histograms are this process's; queue gauges are read from the
// database at scrape time, so every process reports the same cluster-wide queue.
import client from 'prom-client';
import type pg from 'pg';
import type { RunEnd } from '../engine/run-executor.js';
import type { ReplicationSource } from '../replication/index.js';
import type { Pipeline } from '../pipeline/define.js';
import { isEmbeddingPipeline, type EmbeddingPipeline, type EmbeddingStats } from '../steps/embedding/pipeline.js';

export class WalflowMetrics {
  readonly registry = new client.Registry();
  private db: Pick<pg.Pool, 'query'> | undefined;
  private replication: ReplicationSource | undefined;
  private embeddingPipelines: EmbeddingPipeline[] = [];

  private readonly loadErrors = new client.Gauge({ name: 'walflow_pipeline_load_errors', help: 'Pipeline files this process could not (re)load; their previous version keeps running (walflow status lists them)', registers: [this.registry] });
  private readonly runEnds = new client.Counter({ name: 'walflow_run_ends_total', help: 'Runs this process finished executing, by outcome (completed, failed, waiting = will retry, lost = cancelled or taken over)', labelNames: ['pipeline', 'outcome'], registers: [this.registry] });
  private readonly stepSeconds = new client.Histogram({ name: 'walflow_step_duration_seconds', help: 'Step attempt durations', labelNames: ['pipeline', 'step', 'outcome'], buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10, 60], registers: [this.registry] });

  constructor() {
    // The standard process_* and nodejs_* metrics, under their usual names (dashboards expect them).
    client.collectDefaultMetrics({ register: this.registry });
    // prom-client calls collect() with the metric as `this`; the metrics object is needed too.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    new client.Gauge({
      name: 'walflow_runs', help: 'Runs by pipeline and status (completed: last hour; waiting: for a retry; parked runs by what they wait for: sleeping, awaiting_signal, awaiting_children, repeating)', labelNames: ['pipeline', 'status'], registers: [this.registry],
      async collect() {
        if (!self.db) return;
        this.reset();
        const statuses = ['queued', 'running', 'waiting', 'failed', 'sleeping', 'awaiting_signal', 'awaiting_children', 'repeating'] as const;
        const { rows } = await self.db.query<Record<(typeof statuses)[number] | 'pipeline' | 'completed_1h', string>>(
          `SELECT pipeline, ${statuses.join(', ')}, completed_1h FROM walflow.status`);
        for (const r of rows) {
          for (const s of statuses) this.set({ pipeline: r.pipeline, status: s }, Number(r[s]));
          this.set({ pipeline: r.pipeline, status: 'completed_1h' }, Number(r.completed_1h));
        }
      },
    });
    new client.Gauge({
      name: 'walflow_oldest_queued_seconds', help: 'Age of the oldest queued run', labelNames: ['pipeline'], registers: [this.registry],
      async collect() {
        if (!self.db) return;
        this.reset();
        const { rows } = await self.db.query<{ pipeline: string; age: number | null }>('SELECT pipeline, extract(epoch FROM oldest_queued_age)::float8 AS age FROM walflow.status');
        for (const r of rows) this.set({ pipeline: r.pipeline }, r.age ?? 0);
      },
    });
    const counter = (name: string, help: string, pick: (r: ReplicationSource) => number) =>
      new client.Counter({ name, help, registers: [this.registry], collect() { if (self.replication) { this.reset(); this.inc(pick(self.replication)); } } });
    counter('walflow_changes_received_total', 'Row changes decoded from WAL by this process', (r) => r.counters.received);
    counter('walflow_changes_filtered_total', "Changes filtered by a pipeline's declared source rules", (r) => r.counters.filtered);
    counter('walflow_changes_errors_total', 'Changes recorded in walflow.replication_errors', (r) => r.counters.errors);
    counter('walflow_runs_started_total', 'Runs started from WAL by this process', (r) => r.counters.started);
    counter('walflow_changes_replayed_total', 'Changes received again after a restart whose run already existed (not started twice)', (r) => r.counters.replayed);
    new client.Gauge({
      name: 'walflow_replication_lag_bytes', help: "WAL between the server's current position and what the slot confirmed (walflow.replication_status)", labelNames: ['slot'], registers: [this.registry],
      async collect() {
        if (!self.db) return;
        this.reset();
        const { rows } = await self.db.query<{ slot_name: string; lag_bytes: string | null }>('SELECT slot_name, lag_bytes FROM walflow.replication_status');
        for (const r of rows) if (r.lag_bytes !== null) this.set({ slot: r.slot_name }, Number(r.lag_bytes));
      },
    });
    new client.Gauge({
      name: 'walflow_replication_slot_lost', help: "1 when the server invalidated the slot (wal_status lost): replication stopped, recover with a new slot and a re-backfill", labelNames: ['slot'], registers: [this.registry],
      async collect() {
        if (!self.db) return;
        this.reset();
        const { rows } = await self.db.query<{ slot_name: string; wal_status: string | null }>('SELECT slot_name, wal_status FROM walflow.replication_status');
        for (const r of rows) this.set({ slot: r.slot_name }, r.wal_status === 'lost' ? 1 : 0);
      },
    });
    new client.Gauge({
      name: 'walflow_replication_lag_seconds', help: "The walsender's flush lag of the slot: how old the WAL last confirmed is (absent while idle or not streaming)", labelNames: ['slot'], registers: [this.registry],
      async collect() {
        if (!self.db) return;
        this.reset();
        const { rows } = await self.db.query<{ slot_name: string; lag_seconds: number | null }>('SELECT slot_name, lag_seconds FROM walflow.replication_status');
        for (const r of rows) if (r.lag_seconds !== null) this.set({ slot: r.slot_name }, r.lag_seconds);
      },
    });
    const embedding = (name: string, help: string, pick: (s: EmbeddingStats) => number) =>
      new client.Counter({
        name, help, labelNames: ['pipeline'], registers: [this.registry],
        collect() {
          this.reset();
          for (const p of self.embeddingPipelines) this.inc({ pipeline: p.name }, pick(p.stats()));
        },
      });
    embedding('walflow_embedding_calls_total', 'Embedding provider calls', (s) => s.calls);
    embedding('walflow_embedding_items_total', 'Chunk texts sent to the embedding model', (s) => s.items);
    embedding('walflow_embedding_tokens_total', "Tokens of the texts sent (the model's own count)", (s) => s.tokens);
    embedding('walflow_embedding_reused_total', 'Chunks whose stored vector was reused instead of re-embedded', (s) => s.reused);
    new client.Counter({
      name: 'walflow_embedding_errors_total', help: "Failed embedding calls (after the provider's own retries) by HTTP status (or timeout, network…)", labelNames: ['pipeline', 'status'], registers: [this.registry],
      collect() {
        this.reset();
        for (const p of self.embeddingPipelines) for (const [status, n] of Object.entries(p.stats().errorsByStatus)) this.inc({ pipeline: p.name, status }, n);
      },
    });
    new client.Counter({
      name: 'walflow_embedding_faults_total', help: 'Failed embedding provider attempts, retried inside the provider or not, by reason (HTTP status, timeout, network, invalid_json, invalid_response)', labelNames: ['pipeline', 'reason'], registers: [this.registry],
      collect() {
        this.reset();
        for (const p of self.embeddingPipelines) for (const [reason, n] of Object.entries(p.stats().faultsByReason)) this.inc({ pipeline: p.name, reason }, n);
      },
    });
    new client.Gauge({
      name: 'walflow_replication_leader', help: '1 when this process consumes the slot', registers: [this.registry],
      collect() { this.set(self.replication?.currentStatus.role === 'leader' ? 1 : 0); },
    });
  }

  /** Hooks for the engine. */
  readonly hooks = {
    onRunEnd: (pipeline: string, end: RunEnd) => this.runEnds.inc({ pipeline, outcome: end }),
    onStepDone: (pipeline: string, step: string, ok: boolean, ms: number) => this.stepSeconds.observe({ pipeline, step, outcome: ok ? 'ok' : 'error' }, ms / 1000),
  };

  setPipelineLoadErrors(n: number): void {
    this.loadErrors.set(n);
  }

  attach(db: Pick<pg.Pool, 'query'>, replication?: ReplicationSource, pipelines: readonly Pipeline[] = []): void {
    this.db = db;
    this.replication = replication;
    this.embeddingPipelines = pipelines.filter(isEmbeddingPipeline);
  }
}

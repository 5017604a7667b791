// Starts a walflow process: migrations, the engine's workers, and (unless disabled) the
// replication source; stops them in the right order.
import type { Logger } from 'pino';
import type { WalflowConfig } from '../config/config.js';
import { connectClient } from '../db/connection.js';
import { migrate } from '../db/migrate.js';
import { Engine } from '../engine/engine.js';
import type { Pipeline } from '../pipeline/define.js';
import { checkServer, ReplicationSource, resolveSources, type ResolvedSources } from '../replication/index.js';
import { AutoBackfiller } from './auto-backfill.js';
import { WalflowMetrics } from './metrics.js';

export interface Walflow {
  engine: Engine;
  metrics: WalflowMetrics;
  replication: ReplicationSource | undefined;
  /** The pipelines loaded now. */
  readonly pipelines: readonly Pipeline[];
  /**
   * A live reload: registers the new set with the engine, then routes and publishes its sources
   * (starting replication if this is the first source pipeline). Rejects when a source is invalid.
   */
  apply(pipelines: readonly Pipeline[]): Promise<void>;
  stop(): Promise<void>;
}

export interface RunnerOptions {
  url: string;
  config: WalflowConfig;
  pipelines: Pipeline[];
  log: Logger;
  /** Start worker loops (false: replication only). */
  workers?: boolean;
  /** Metrics to record into (a metrics server may already be serving them); default: new ones. */
  metrics?: WalflowMetrics;
}

export async function startWalflow(o: RunnerOptions): Promise<Walflow> {
  const c = o.config;
  const withSource = o.pipelines.filter((p) => p.source);
  let resolved: ResolvedSources | undefined;
  const client = await connectClient(o.url);
  try {
    await migrate(client);
    // Before any pipeline's setup runs: the server can replicate, and every source table exists
    // and has a usable key, each reported in one line naming the pipeline. The one validation:
    // the replication source is handed its result.
    if (c.replication && withSource.length > 0) await checkServer(client);
    if (withSource.length > 0) resolved = await resolveSources(client, withSource);
  } finally {
    await client.end();
  }
  const metrics = o.metrics ?? new WalflowMetrics();
  const engine = new Engine({
    ...metrics.hooks,
    url: o.url, pipelines: o.pipelines, log: o.log, workers: c.workers, maxInFlight: c.maxInFlight,
    leaseMs: c.leaseMs, pollIntervalMs: c.pollIntervalMs, retentionMs: c.retentionHours * 3600_000,
    shutdownTimeoutMs: c.shutdownTimeoutMs,
  });
  let replication: ReplicationSource | undefined;
  let current: readonly Pipeline[] = o.pipelines;
  const backfiller = new AutoBackfiller(engine, () => replication?.loaded ?? [], o.log.child({ component: 'backfill' }));
  const startReplication = async (sources: readonly Pipeline[], checked: ResolvedSources): Promise<void> => {
    const r = new ReplicationSource({
      url: o.url, pipelines: sources, resolved: checked, slotName: c.slotName, publicationName: c.publicationName, logger: o.log,
      highWatermark: c.highWatermark, lowWatermark: c.lowWatermark, writers: c.replicationWriters,
      onPublished: (signal) => backfiller.onPublished(signal),
    });
    replication = r;
    try {
      await r.start();
      await r.ready();
    } catch (err) {
      replication = undefined;
      await r.stop().catch(() => undefined);
      throw err;
    }
  };
  try {
    await engine.register();
    if (c.replication && resolved) await startReplication(withSource, resolved);
    metrics.attach(engine.pool, replication, o.pipelines);
    if (o.workers !== false && c.workers > 0) await engine.runWorkers();
  } catch (err) {
    // Nothing may keep running (or keep the process alive) after a failed start.
    await replication?.stop().catch(() => undefined);
    await engine.stop().catch(() => undefined);
    throw err;
  }
  o.log.info({ pipelines: o.pipelines.map((p) => p.name), workers: c.workers, replication: !!replication }, 'walflow running');
  return {
    engine,
    metrics,
    get replication() {
      return replication;
    },
    get pipelines() {
      return current;
    },
    apply: async (next) => {
      const sources = next.filter((p) => p.source);
      let checked: ResolvedSources | undefined;
      if (c.replication && sources.length > 0) {
        // Checked before the engine registers anything: a bad source changes nothing.
        const client = await connectClient(o.url);
        try {
          if (!replication) await checkServer(client);
          checked = await resolveSources(client, sources);
        } finally {
          await client.end();
        }
      }
      await engine.setPipelines(next);
      current = next;
      if (replication) await replication.setPipelines(sources, checked);
      else if (checked) await startReplication(sources, checked);
      metrics.attach(engine.pool, replication, next);
    },
    // Stop reading WAL first, so that nothing new is started while the workers drain.
    stop: async () => {
      await replication?.stop();
      await backfiller.stopped();
      await engine.stop();
    },
  };
}

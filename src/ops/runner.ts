// Starts a walflow process: migrations, the engine's workers, and (unless disabled) the
// replication source; stops them in the right order.
import type { Logger } from 'pino';
import type { WalflowConfig } from '../config/config.js';
import { connectClient } from '../db/connection.js';
import { migrate } from '../db/migrate.js';
import { Engine } from '../engine/engine.js';
import type { Pipeline } from '../pipeline/define.js';
import { ReplicationSource } from '../replication/index.js';
import { checkServer, resolveSources } from '../replication/validate.js';
import { WalflowMetrics } from './metrics.js';

export interface Walflow {
  engine: Engine;
  metrics: WalflowMetrics;
  replication: ReplicationSource | undefined;
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
  const client = await connectClient(o.url);
  try {
    await migrate(client);
    // Before any pipeline's setup runs: the server can replicate, and every source table exists
    // and has a usable key, each reported in one line naming the pipeline.
    if (c.replication && withSource.length > 0) await checkServer(client);
    if (withSource.length > 0) await resolveSources(client, withSource);
  } finally {
    await client.end();
  }
  const metrics = o.metrics ?? new WalflowMetrics();
  const engine = new Engine({
    ...metrics.hooks,
    url: o.url, pipelines: o.pipelines, log: o.log, workers: c.workers, capacity: c.claimBatchSize,
    leaseMs: c.leaseMs, pollIntervalMs: c.pollIntervalMs, retentionMs: c.retentionHours * 3600_000,
    shutdownTimeoutMs: c.shutdownTimeoutMs,
  });
  let replication: ReplicationSource | undefined;
  try {
    await engine.register();
    if (c.replication && withSource.length > 0) {
      replication = new ReplicationSource({
        url: o.url, pipelines: withSource, slotName: c.slotName, publicationName: c.publicationName, logger: o.log,
        highWatermark: c.highWatermark, lowWatermark: c.lowWatermark, writers: c.replicationWriters,
      });
      await replication.start();
      await replication.ready();
    }
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
    replication,
    // Stop reading WAL first, so that nothing new is started while the workers drain.
    stop: async () => {
      await replication?.stop();
      await engine.stop();
    },
  };
}

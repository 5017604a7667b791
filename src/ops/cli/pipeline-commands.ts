// walflow run | pipelines | backfill | search.
import type { Command } from 'commander';
import { loadConfig, stderrIsTty, type ConfigInput } from '../../config/config.js';
import { resolveDatabaseUrl } from '../../db/connection.js';
import { Engine } from '../../engine/engine.js';
import { UserError } from '../../errors.js';
import { createLogger } from '../../log.js';
import { loadPipelines } from '../../pipeline/load.js';
import { isEmbeddingPipeline } from '../../steps/embedding/pipeline.js';
import { backfill } from '../backfill.js';
import { createProgress } from '../progress.js';
import { startWalflow } from '../runner.js';
import { emit, formatTable, withClient } from './output.js';

interface CommonOpts { pipelines?: string; json?: boolean }

function configFrom(opts: CommonOpts & Partial<ConfigInput>) {
  return loadConfig({ ...(opts.pipelines ? { pipelinesDir: opts.pipelines } : {}), ...opts, pipelines: undefined } as Partial<ConfigInput>);
}

export function registerPipelineCommands(program: Command): void {
  program
    .command('run')
    .description('run walflow: the replication leader (or standby) and workers; graceful on SIGTERM/SIGINT')
    .option('--pipelines <dir>', 'directory of pipeline definitions')
    .option('--only <names>', 'comma-separated pipeline names to load')
    .option('--workers <n>', 'worker loops in this process (0: replication only)')
    .option('--no-replication', 'do not consume WAL here (worker-only node)')
    .option('--metrics-port <port>', 'serve /metrics, /healthz, /readyz on this port')
    .action(async (opts: CommonOpts & { only?: string; workers?: string; replication: boolean; metricsPort?: string }) => {
      const config = loadConfig({
        ...(opts.pipelines ? { pipelinesDir: opts.pipelines } : {}),
        ...(opts.workers !== undefined ? { workers: opts.workers as unknown as number } : {}),
        ...(opts.replication === false ? { replication: false } : {}),
        ...(opts.metricsPort !== undefined ? { metricsPort: opts.metricsPort as unknown as number } : {}),
      });
      const log = createLogger({ level: config.logLevel, pretty: config.logPretty ?? stderrIsTty() });
      const pipelines = await loadPipelines(config.pipelinesDir, opts.only?.split(',').map((s) => s.trim()).filter(Boolean));
      if (pipelines.length === 0) throw new UserError(`no pipelines found in ${config.pipelinesDir}`);
      const url = await resolveDatabaseUrl(config);
      const wf = await startWalflow({ url, config, pipelines, log });
      let metrics: { close(): Promise<void> } | undefined;
      if (config.metricsPort > 0) {
        const { serveMetrics } = await import('../metrics-server.js');
        metrics = await serveMetrics(config.metricsPort, wf, log);
      }
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) {
            log.warn('second signal: exiting now; unfinished runs resume after their leases expire');
            process.exit(130);
          }
          stopping = true;
          log.info({ signal }, 'stopping: finishing running steps');
          void wf.stop().then(() => metrics?.close()).finally(resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
      log.info('stopped');
    });

  program
    .command('pipelines')
    .description('the pipelines found in the pipelines directory: source, steps, version')
    .option('--pipelines <dir>', 'directory of pipeline definitions')
    .option('--json', 'machine-readable output')
    .action(async (opts: CommonOpts) => {
      const config = configFrom(opts);
      const pipelines = await loadPipelines(config.pipelinesDir);
      const rows = pipelines.map((p) => ({ name: p.name, version: p.version, source: p.source?.table ?? '', events: p.source?.events?.join(',') ?? (p.source ? 'all' : ''), steps: p.stepNames.join(' → ') }));
      emit(opts.json, { pipelines: rows }, () => formatTable(rows));
    });

  program
    .command('backfill <pipeline>')
    .description("start a run for every existing row of the pipeline's source table (resumable)")
    .option('--pipelines <dir>', 'directory of pipeline definitions')
    .option('--batch-size <n>', 'rows per batch', '1000')
    .option('--restart', 'start over instead of resuming an unfinished backfill')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: CommonOpts & { batchSize: string; restart?: boolean }) => {
      const config = configFrom(opts);
      const batchSize = Number(opts.batchSize);
      if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000) throw new UserError('--batch-size must be a whole number from 1 to 100000');
      const [pipeline] = await loadPipelines(config.pipelinesDir, [name]);
      const engine = new Engine({ url: await resolveDatabaseUrl(config), pipelines: [pipeline!] });
      const progress = opts.json ? undefined : createProgress(`backfill ${name}`, stderrIsTty());
      try {
        await engine.register();
        const result = await backfill(engine, pipeline!, { batchSize, ...(opts.restart ? { restart: true } : {}), onProgress: (p) => progress?.update(p.done, p.total) });
        progress?.stop();
        emit(opts.json, result, () => `backfill ${result.id} of ${name}: started ${result.done} run(s); watch them with: walflow status`);
      } finally {
        await engine.stop();
      }
    });

  program
    .command('search <pipeline> <query>')
    .description("embed the query with the pipeline's model and print the nearest chunks")
    .option('--pipelines <dir>', 'directory of pipeline definitions')
    .option('-k, --k <n>', 'how many hits', '5')
    .option('--json', 'machine-readable output')
    .action(async (name: string, query: string, opts: CommonOpts & { k: string }) => {
      const config = configFrom(opts);
      const [pipeline] = await loadPipelines(config.pipelinesDir, [name]);
      if (!isEmbeddingPipeline(pipeline!)) throw new UserError(`pipeline "${name}" is not an embedding pipeline`);
      try {
        await withClient(async (c) => {
          // Let an HNSW scan keep going until k rows of the current version are found.
          await c.query(`SET hnsw.iterative_scan = relaxed_order`).catch(() => undefined);
          const hits = await pipeline.search(c, query, Number(opts.k));
          emit(opts.json, { hits }, () => formatTable(hits.map((h) => ({ distance: h.distance.toFixed(4), key: h.source_key, chunk: h.chunk_index, text: h.chunk_text.replace(/\s+/g, ' ') })), ['distance', 'key', 'chunk', 'text']));
        });
      } finally {
        await pipeline!.close?.();
      }
    });
}

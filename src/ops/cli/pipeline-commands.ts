// walflow run | pipelines | backfill | search. The engine, replication, metrics and embedding
// modules are imported by the commands that use them, so that every other command starts fast.
import type { Command } from 'commander';
import { loadConfig, stderrIsTty, type ConfigInput, type WalflowConfig } from '../../config/config.js';
import { resolveDatabaseUrl } from '../../db/connection.js';
import { UserError } from '../../errors.js';
import type { Pipeline } from '../../pipeline/define.js';
import { loadPipelineDir, loadPipelines, mergeFiles } from '../../pipeline/load.js';
import type { EmbeddingPipeline } from '../../steps/embedding/pipeline.js';
import type { ConsoleServer } from '../../console/server.js';
import type { MetricsServer } from '../metrics-server.js';
import { emit, formatTable, withClient } from '../output.js';

/** Same test as steps/embedding's isEmbeddingPipeline, without loading the embedding modules. */
function isEmbeddingPipeline(p: Pipeline): p is EmbeddingPipeline {
  return typeof (p as Partial<EmbeddingPipeline>).search === 'function';
}

interface CommonOpts { pipelines?: string; json?: boolean }

function configFrom(opts: CommonOpts, extra: Partial<ConfigInput> = {}): WalflowConfig {
  return loadConfig({ ...(opts.pipelines ? { pipelinesDir: opts.pipelines } : {}), ...extra });
}

/** The pipelines named in the pipelines directory, in that order; exit 3 when one is missing. */
async function pickPipelines(config: WalflowConfig, names: string[]): Promise<Pipeline[]> {
  const all = await loadPipelines(config.pipelinesDir);
  // A name no file defines may be a pipeline defined from SQL.
  if (names.some((n) => !all.some((p) => p.name === n))) {
    const sql = await sqlPipelines(config);
    all.push(...sql.pipelines.filter((p) => names.includes(p.name)));
    const broken = sql.broken.find((b) => names.includes(b.name) && !all.some((p) => p.name === b.name));
    if (broken) throw new UserError(`pipeline "${broken.name}" is defined in SQL but cannot be built: ${broken.error} (fix it with walflow.alter_pipeline)`, 3);
  }
  const missing = names.filter((n) => !all.some((p) => p.name === n));
  if (missing.length > 0) {
    throw new UserError(`no pipeline named ${missing.map((m) => `"${m}"`).join(', ')} in ${config.pipelinesDir} (found: ${all.map((p) => p.name).join(', ') || 'none'})`, 3);
  }
  return names.map((n) => all.find((p) => p.name === n)!);
}

async function pickPipeline(config: WalflowConfig, name: string): Promise<Pipeline> {
  return (await pickPipelines(config, [name]))[0]!;
}

/** A pipeline defined in SQL that this process cannot build (as `walflow run` would not: its load error). */
interface BrokenSqlPipeline { name: string; version: string; source: string | null; embedding: boolean; error: string }

/** The pipelines defined from SQL, built as `walflow run` builds them; none when the database has no such table. */
async function sqlPipelines(config: WalflowConfig): Promise<{ pipelines: Pipeline[]; broken: BrokenSqlPipeline[] }> {
  const [{ buildSqlPipeline, readSqlPipelines }, { httpHostPolicyFromConfig }] = await Promise.all([import('../sql-pipelines/build.js'), import('../../steps/http/config-policy.js')]);
  const rows = await withClient((c) => readSqlPipelines(c).catch((err: { code?: string }) => {
    if (err.code === '42P01' || err.code === '3F000') return [];
    throw err;
  }), { pipelinesDir: config.pipelinesDir });
  const pipelines: Pipeline[] = [];
  const broken: BrokenSqlPipeline[] = [];
  for (const row of rows) {
    try {
      pipelines.push(buildSqlPipeline(row, { hostPolicy: httpHostPolicyFromConfig(config) }));
    } catch (err) {
      const d = row.definition as { source?: { table?: string }; source_table?: string };
      broken.push({ name: row.name, version: `sql-v${row.version}`, source: d.source?.table ?? d.source_table ?? null, embedding: row.kind === 'embedding', error: (err as Error).message });
    }
  }
  return { pipelines, broken };
}

/** Names of the pipelines defined from SQL (none before the migration that adds them ran). */
async function sqlPipelineNames(url: string): Promise<Set<string>> {
  const { connectClient } = await import('../../db/connection.js');
  const c = await connectClient(url);
  try {
    const { rows } = await c.query<{ name: string }>(`SELECT name FROM walflow.sql_pipelines`).catch((err: { code?: string }) => {
      if (err.code === '42P01' || err.code === '3F000') return { rows: [] as { name: string }[] };
      throw err;
    });
    return new Set(rows.map((r) => r.name));
  } finally {
    await c.end();
  }
}

function wholeNumber(flag: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\s*\d+\s*$/.test(v) || !Number.isInteger(n) || n < min || n > max) throw new UserError(`${flag} must be a whole number from ${min} to ${max} (got "${v}")`);
    return n;
  };
}

export function registerPipelineCommands(program: Command): void {
  program
    .command('run')
    .description('run walflow: the replication leader (or standby) and workers; reloads changed pipeline files (and on SIGHUP); graceful on SIGTERM/SIGINT')
    .option('--pipelines <dir>', 'directory of pipeline definitions')
    .option('--only <names>', 'comma-separated pipeline names to load')
    .option('--workers <n>', 'worker loops in this process (0: replication only)')
    .option('--no-replication', 'do not consume WAL here (worker-only node)')
    .option('--metrics-port <port>', 'serve /metrics, /healthz, /readyz on this port')
    .option('--ui-port <port>', 'serve the web console on this port (127.0.0.1 unless WALFLOW_UI_HOST says otherwise)')
    .action(async (opts: CommonOpts & { only?: string; workers?: string; replication: boolean; metricsPort?: string; uiPort?: string }) => {
      const config = loadConfig({
        ...(opts.pipelines ? { pipelinesDir: opts.pipelines } : {}),
        ...(opts.workers !== undefined ? { workers: opts.workers as unknown as number } : {}),
        ...(opts.replication === false ? { replication: false } : {}),
        ...(opts.metricsPort !== undefined ? { metricsPort: opts.metricsPort as unknown as number } : {}),
        ...(opts.uiPort !== undefined ? { uiPort: opts.uiPort as unknown as number } : {}),
      });
      const [{ createLogger }, { WalflowMetrics }, { startWalflow }] = await Promise.all([import('../../log.js'), import('../metrics.js'), import('../runner.js')]);
      const log = createLogger({ level: config.logLevel, pretty: config.logPretty ?? stderrIsTty() });
      const only = opts.only?.split(',').map((s) => s.trim()).filter(Boolean);
      const files = await loadPipelineDir(config.pipelinesDir);
      const url = await resolveDatabaseUrl(config, { startEmbedded: true });
      // Pipelines defined from SQL join once walflow runs (the reloader); a file pipeline with one's
      // name is not started even briefly (the reloader reports it as that file's load error).
      const sqlNames = await sqlPipelineNames(url);
      const fromFiles = only?.length ? await pickPipelines(config, [...new Set(only)].filter((n) => !sqlNames.has(n))) : mergeFiles(files);
      const pipelines = fromFiles.filter((p) => !sqlNames.has(p.name));
      if (fromFiles.length === 0 && sqlNames.size === 0) log.warn({ dir: config.pipelinesDir }, 'no pipelines yet: add a file to the pipelines directory, or define one in SQL (walflow.create_pipeline)');

      // A signal during startup stops as soon as startup is done (or failed).
      let stopRequested: string | undefined;
      let stop: ((signal: string) => void) | undefined;
      const onSignal = (signal: string) => {
        if (stop) return stop(signal);
        if (stopRequested) process.exit(130);
        stopRequested = signal;
        log.info({ signal }, 'stopping once startup is done');
      };
      let reloader: import('../pipeline-reloader.js').PipelineReloader | undefined;
      let sqlWatcher: import('../sql-pipelines/watcher.js').SqlPipelineWatcher | undefined;
      const onHup = () => {
        log.info({ signal: 'SIGHUP' }, 'reloading pipelines');
        void reloader?.reload();
      };
      const onTerm = () => onSignal('SIGTERM');
      const onInt = () => onSignal('SIGINT');
      process.on('SIGTERM', onTerm);
      process.on('SIGINT', onInt);
      // Installed at once: SIGHUP's default action would end the process.
      process.on('SIGHUP', onHup);

      const metrics = new WalflowMetrics();
      let server: MetricsServer | undefined;
      let ui: ConsoleServer | undefined;
      try {
        if (config.metricsPort > 0) {
          const { serveMetrics } = await import('../metrics-server.js');
          server = await serveMetrics(config.metricsPort, metrics, log);
        }
        const running = await startWalflow({ url, config, pipelines, log, metrics });
        server?.attach(running);
        const { PipelineReloader } = await import('../pipeline-reloader.js');
        const { SqlPipelineWatcher } = await import('../sql-pipelines/watcher.js');
        const { httpHostPolicyFromConfig } = await import('../../steps/http/config-policy.js');
        sqlWatcher = new SqlPipelineWatcher({ url, log, onChange: () => void reloader?.reload(), build: { hostPolicy: httpHostPolicyFromConfig(config) } });
        reloader = new PipelineReloader({ dir: config.pipelinesDir, ...(only?.length ? { only } : {}), walflow: running, metrics, log, initial: files, sql: sqlWatcher });
        reloader.start();
        sqlWatcher.start(running.engine.pool);
        // The console reads the database only while a page is open; it starts once migrations ran.
        if (config.uiPort > 0) {
          const { startConsole } = await import('../../console/start.js');
          ui = await startConsole(url, config, config.uiPort, log, () => running.pipelines).catch(async (err: unknown) => {
            await sqlWatcher?.stop();
            await reloader?.stop();
            await running.stop();
            throw err;
          });
        }
        await new Promise<void>((resolve) => {
          let stopping = false;
          stop = (signal: string) => {
            if (stopping) {
              log.warn('second signal: exiting now; unfinished runs resume after their leases expire');
              process.exit(130);
            }
            stopping = true;
            server?.stopping();
            log.info({ signal }, 'stopping: finishing running steps');
            (sqlWatcher?.stop() ?? Promise.resolve()).then(() => reloader?.stop()).then(() => running.stop()).then(resolve, (err: unknown) => {
              log.error({ err }, 'stopping failed');
              process.exitCode = 1;
              resolve();
            });
          };
          if (stopRequested) stop(stopRequested);
        });
        log.info('stopped');
      } finally {
        await ui?.close();
        await server?.close();
        process.off('SIGHUP', onHup);
        process.off('SIGTERM', onTerm);
        process.off('SIGINT', onInt);
      }
    });

  program
    .command('pipelines')
    .description('the pipelines: from the pipelines directory and (with a database) defined in SQL; origin, source, events, steps, version')
    .option('--pipelines <dir>', 'directory of pipeline definitions')
    .option('--json', 'machine-readable output')
    .action(async (opts: CommonOpts) => {
      const config = configFrom(opts);
      const files = await loadPipelines(config.pipelinesDir);
      // With a database: the pipelines defined from SQL too (without one: the files alone).
      const sql = await sqlPipelines(config).catch(() => ({ pipelines: [] as Pipeline[], broken: [] as BrokenSqlPipeline[] }));
      const sqlNames = new Set([...sql.pipelines, ...sql.broken].map((p) => p.name));
      const pipelines = [...sql.pipelines, ...files.filter((p) => !sqlNames.has(p.name))];
      // A SQL pipeline this process cannot build is listed with its error, never left out (running
      // processes report the same error in `walflow status`' pipeline_errors as "sql:<name>").
      const rows = [...pipelines.map((p) => ({
        name: p.name,
        origin: sqlNames.has(p.name) ? 'sql' : 'file',
        version: p.version,
        source: p.source?.table ?? null,
        events: p.source ? (p.source.events ?? ['insert', 'update', 'delete', 'truncate']) : null,
        steps: p.stepNames,
        embedding: isEmbeddingPipeline(p),
        error: null as string | null,
      })), ...sql.broken.map((b) => ({ name: b.name, origin: 'sql', version: b.version, source: b.source, events: null, steps: [] as readonly string[], embedding: b.embedding, error: b.error }))]
        // SQL pipelines first, by name (as readSqlPipelines reads them), then the files in their order.
        .sort((a, b) => (a.origin === 'sql' && b.origin === 'sql' ? a.name.localeCompare(b.name) : Number(a.origin === 'file') - Number(b.origin === 'file')));
      emit(opts.json, { pipelines: rows }, () =>
        formatTable(rows.map((r) => ({ ...r, source: r.source ?? '(started from SQL or code)', events: r.events?.join(',') ?? '', steps: r.steps.join(' → '), error: r.error ?? '' })),
          ['name', 'origin', 'version', 'source', 'events', 'steps', ...(rows.some((r) => r.error) ? ['error'] : [])]));
    });

  program
    .command('backfill <pipeline>')
    .description("start a run for every existing row of the pipeline's source table (resumable)")
    .option('--pipelines <dir>', 'directory of pipeline definitions')
    .option('--batch-size <n>', 'rows per batch (1 to 100000)', wholeNumber('--batch-size', 1, 100_000), 1000)
    .option('--restart', 'start over instead of resuming an unfinished backfill')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: CommonOpts & { batchSize: number; restart?: boolean }) => {
      const config = configFrom(opts);
      const pipeline = await pickPipeline(config, name);
      if (!pipeline.source) throw new UserError(`pipeline "${name}" has no source table to backfill from`);
      const [{ Engine }, { backfill }, { createProgress }, { resolveSources }] = await Promise.all([
        import('../../engine/engine.js'), import('../backfill.js'), import('../progress.js'), import('../../replication/index.js'),
      ]);
      const url = await resolveDatabaseUrl(config);
      // The source table exists and has a key, before the pipeline's setup runs against it.
      await withClient(async (c) => void (await resolveSources(c, [pipeline])), { pipelinesDir: config.pipelinesDir });
      const engine = new Engine({ url, pipelines: [pipeline] });
      const progress = opts.json ? undefined : createProgress(`backfill ${name}`, stderrIsTty());
      try {
        await engine.register();
        const result = await backfill(engine, pipeline, { batchSize: opts.batchSize, ...(opts.restart ? { restart: true } : {}), onProgress: (p) => progress?.update(p.done, p.total) });
        progress?.stop();
        emit(opts.json, { pipeline: name, ...result }, () => `backfill ${result.id} of ${name}: started ${result.done} run(s); watch them with: walflow status`);
      } finally {
        await engine.stop();
      }
    });

  program
    .command('search <pipeline> <query>')
    .description("embed the query with the pipeline's model and print the nearest chunks")
    .option('--pipelines <dir>', 'directory of pipeline definitions')
    .option('-k, --k <n>', 'how many hits (1 to 1000)', wholeNumber('-k', 1, 1000), 5)
    .option('--json', 'machine-readable output')
    .action(async (name: string, query: string, opts: CommonOpts & { k: number }) => {
      if (query.trim() === '') throw new UserError('the search query is empty');
      const config = configFrom(opts);
      const pipeline = await pickPipeline(config, name);
      if (!isEmbeddingPipeline(pipeline)) throw new UserError(`pipeline "${name}" is not an embedding pipeline`);
      try {
        await withClient(async (c) => {
          // Let an HNSW scan keep going until k rows of the current version are found.
          await c.query(`SET hnsw.iterative_scan = relaxed_order`).catch(() => undefined);
          const hits = await pipeline.search(c, query, opts.k).catch((err: { code?: string; name?: string; message?: string }) => {
            // The provider said no (a bad key, an unknown model, a server down): one line, not a stack.
            if (err.name === 'EmbeddingProviderError') throw new UserError(`search failed: ${err.message}`);
            if (err.code === '42P01') throw new UserError(`no embeddings yet: ${pipeline.target.schema}.${pipeline.target.name} does not exist (run \`walflow run\` or \`walflow backfill ${name}\` first)`, 3);
            throw err;
          });
          emit(opts.json, { pipeline: name, query, hits }, () => formatTable(hits.map((h) => ({ distance: h.distance.toFixed(4), key: h.source_key, chunk: h.chunk_index, text: h.chunk_text.replace(/\s+/g, ' ') })), ['distance', 'key', 'chunk', 'text']));
        }, { pipelinesDir: config.pipelinesDir });
      } finally {
        await pipeline.close?.();
      }
    });
}

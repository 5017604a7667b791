// walflow ui: the web console alone against DATABASE_URL (a read-mostly process an operator can run
// on another host than the workers). Serves until SIGTERM/SIGINT.
import type { Command } from 'commander';
import { loadConfig, stderrIsTty } from '../../config/config.js';
import { connectClient, resolveDatabaseUrl } from '../../db/connection.js';

/** `walflow ui` without --port or WALFLOW_UI_PORT. */
export const DEFAULT_UI_PORT = 8321;

export function registerUiCommand(program: Command): void {
  program
    .command('ui')
    .description('serve the web console (overview, runs, failures; retry and cancel with WALFLOW_UI_TOKEN)')
    .option('--port <port>', `port (default: WALFLOW_UI_PORT, else ${DEFAULT_UI_PORT}; 0: any free port)`)
    .option('--host <address>', 'address to bind (default 127.0.0.1; serving others needs WALFLOW_UI_VIEW_TOKEN or a trusted network)')
    .action(async (opts: { port?: string; host?: string }) => {
      const config = loadConfig({
        ...(opts.port !== undefined ? { uiPort: opts.port as unknown as number } : {}),
        ...(opts.host !== undefined ? { uiHost: opts.host } : {}),
      });
      const port = opts.port !== undefined || config.uiPort > 0 ? config.uiPort : DEFAULT_UI_PORT;
      const { createLogger } = await import('../../log.js');
      const log = createLogger({ level: config.logLevel, pretty: config.logPretty ?? stderrIsTty() });
      const url = await resolveDatabaseUrl(config);
      // Fail now, with the CLI's usual message, if the database does not answer or has no schema.
      const probe = await connectClient(url);
      try {
        await probe.query('SELECT 1 FROM walflow.schema_migrations LIMIT 1');
      } finally {
        await probe.end();
      }
      if (!/^(127\.|localhost$|::1$)/.test(config.uiHost) && !config.uiViewToken) {
        log.warn({ host: config.uiHost }, 'console: serving a non-loopback address without WALFLOW_UI_VIEW_TOKEN: anyone who reaches it can view runs and their inputs');
      }
      // Embedding pipelines of the pipelines directory make the Search page work (their models load
      // on the first query); without the directory the rest of the console works as well.
      const { loadPipelines } = await import('../../pipeline/load.js');
      const pipelines = await loadPipelines(config.pipelinesDir).catch((err: unknown) => {
        log.info({ dir: config.pipelinesDir, err: (err as Error).message }, 'console: no pipelines loaded; search is off');
        return [];
      });
      const { startConsole } = await import('../../console/start.js');
      const ui = await startConsole(url, config, port, log, pipelines);
      process.stdout.write(`walflow console on ${ui.url}\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', () => resolve());
        process.once('SIGINT', () => resolve());
      });
      await ui.close();
      for (const p of pipelines) await (p as { close?: () => Promise<void> }).close?.();
    });
}

// `walflow db start|stop|status|url` and `walflow migrate`.
import type { Command } from 'commander';
import { loadConfig } from '../../config/config.js';
import { UserError } from '../../errors.js';
import { connectClient, resolveDatabaseUrl } from '../../db/connection.js';
import { EmbeddedCluster } from '../../db/embedded-cluster.js';
import { migrate } from '../../db/migrate.js';

function print(json: boolean, value: unknown, text: string): void {
  process.stdout.write(json ? JSON.stringify(value) + '\n' : text + '\n');
}

function embedded(): EmbeddedCluster {
  const config = loadConfig();
  if (config.databaseUrl) {
    throw new UserError('DATABASE_URL is set, so walflow uses that server and manages no local cluster: unset it to use `walflow db`');
  }
  return new EmbeddedCluster({ dataDir: config.dataDir });
}

export function registerDbCommands(program: Command): void {
  const db = program.command('db').description('manage the embedded local PostgreSQL (used when DATABASE_URL is not set)');

  db.command('start')
    .description('create (first time) and start the local cluster; prints its URL')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const cluster = embedded();
      const url = await cluster.start();
      const socketUrl = cluster.socketUrlFor(cluster.readState()!);
      print(!!opts.json, { url, socketUrl, dataDir: cluster.dataDir }, url);
    });

  db.command('stop')
    .description('stop the local cluster')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const cluster = embedded();
      const stopped = await cluster.stop();
      print(!!opts.json, { stopped, dataDir: cluster.dataDir }, stopped ? `stopped (${cluster.dataDir})` : `not running (${cluster.dataDir})`);
    });

  db.command('status')
    .description('is the local cluster initialized and running? (exit 3 when it is not running)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const status = await embedded().status();
      const text = !status.initialized ? `not initialized (${status.dataDir}); run: walflow db start` : `${status.running ? 'running' : 'stopped'}  ${status.url ?? ''}  (${status.dataDir})`;
      print(!!opts.json, status, text);
      if (!status.running) process.exitCode = 3;
    });

  db.command('url')
    .description('print the connection URL of the local cluster (whether or not it is running)')
    .option('--json', 'machine-readable output')
    .action((opts: { json?: boolean }) => {
      const cluster = embedded();
      const state = cluster.isInitialized() ? cluster.readState() : undefined;
      if (!state) throw new UserError(`no local cluster in ${cluster.dataDir}: run \`walflow db start\``, 3);
      const url = cluster.urlFor(state);
      print(!!opts.json, { url, socketUrl: cluster.socketUrlFor(state), dataDir: cluster.dataDir }, url);
    });

  program
    .command('migrate')
    .description('apply walflow schema migrations (also done at startup); safe to run concurrently')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const url = await resolveDatabaseUrl(loadConfig());
      const client = await connectClient(url);
      try {
        const result = await migrate(client);
        const names = result.applied.map((m) => `${String(m.version).padStart(4, '0')}_${m.name}`);
        const text = [
          names.length ? `applied ${names.join(', ')}; schema at version ${result.current}` : `schema up to date (version ${result.current})`,
          ...(result.defined.length ? [`defined ${result.defined.join(', ')}`] : []),
        ].join('\n');
        print(!!opts.json, { applied: names, defined: result.defined, version: result.current }, text);
      } finally {
        await client.end();
      }
    });
}

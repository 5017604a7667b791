// Turns configuration into a database URL (starting the embedded cluster when none is given) and
// turns connection failures into one actionable line.
import pg from 'pg';
import { UserError, redactSecrets } from '../errors.js';
import type { WalflowConfig } from '../config/config.js';
import { EmbeddedCluster } from './embedded-cluster.js';

/** Checks DATABASE_URL's shape before connecting: a typo fails with one line that never echoes the password. */
export function validateDatabaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UserError(`DATABASE_URL is not a valid URL ("${redactSecrets(url)}"): expected postgres://user:password@host:5432/database`);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new UserError(`DATABASE_URL must start with postgres:// or postgresql:// (got "${parsed.protocol}//")`);
  }
  if (!parsed.hostname && !parsed.searchParams.get('host')) {
    throw new UserError('DATABASE_URL has no host: expected postgres://user:password@host:5432/database');
  }
  return url;
}

/**
 * The URL to use: DATABASE_URL when given, else the embedded cluster's. Only the commands that
 * bring walflow up (`walflow run`; `db start` and the demo start the cluster themselves) pass
 * `startEmbedded`; every other command finds a stopped cluster stopped and says so (exit 3)
 * rather than starting a server behind the operator's back.
 */
export async function resolveDatabaseUrl(config: WalflowConfig, opts: { startEmbedded?: boolean } = {}): Promise<string> {
  if (config.databaseUrl) return validateDatabaseUrl(config.databaseUrl);
  const cluster = new EmbeddedCluster({ dataDir: config.dataDir });
  if (opts.startEmbedded) return cluster.start();
  const state = cluster.isInitialized() ? cluster.readState() : undefined;
  if (!state) throw new UserError(`there is no embedded cluster in ${cluster.dataDir} (and DATABASE_URL is not set): walflow db start`, 3);
  if (!(await cluster.isRunning())) throw new UserError('the embedded cluster is not running: walflow db start', 3);
  return cluster.urlFor(state);
}

const friendly: Record<string, string> = {
  ECONNREFUSED: 'connection refused: is PostgreSQL running there? (`walflow db start` runs the embedded one)',
  // A Unix socket that is not there: the server is not running (or listens on another port).
  ENOENT: 'no server socket there: is PostgreSQL running? (`walflow db start` runs the embedded one)',
  ENOTFOUND: 'host not found: check the host name in DATABASE_URL',
  ETIMEDOUT: 'connection timed out: check host, port and firewall',
  '28P01': 'password authentication failed: check the user and password in DATABASE_URL',
  '28000': 'the server rejected this role or host (pg_hba.conf): check the user in DATABASE_URL',
  '3D000': 'database does not exist: create it or fix the database name in DATABASE_URL',
};

/** Converts an error from connecting into a UserError with one clear line; other errors pass through. */
export function explainConnectError(err: unknown, url: string): unknown {
  const e = err as { code?: string; message?: string };
  const hint = e.code ? friendly[e.code] : undefined;
  if (!hint) return err;
  let where = redactSecrets(url);
  try {
    const u = new URL(url);
    where = `${decodeURIComponent(u.hostname)}:${u.port || 5432}${u.pathname}`; // a socket directory arrives %-encoded
  } catch {
    /* keep the redacted URL */
  }
  return new UserError(`cannot connect to ${where}: ${hint}`);
}

export async function connectClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
  } catch (err) {
    throw explainConnectError(err, url);
  }
  return client;
}

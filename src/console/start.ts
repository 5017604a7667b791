// Starts the console on its own small pool, for `walflow run --ui-port` and `walflow ui`.
import type { Logger } from 'pino';
import type { WalflowConfig } from '../config/config.js';
import pg from 'pg';
import type { Pipeline } from '../pipeline/define.js';
import type { ConsoleSearch } from './pages/search.js';
import { serveConsole, type ConsoleServer } from './server.js';

/** Pages run a handful of short reads each; a few connections serve many viewers. */
const POOL_SIZE = 4;

/**
 * The console's pool. JIT off: the console's statements are short look-ups, but walflow.status's
 * per-pipeline subplans are costed high enough that PostgreSQL compiles them (measured: 1.8 s of
 * JIT for a 2 ms query with 20,000 recent runs).
 */
export function createConsolePool(url: string, max = POOL_SIZE): pg.Pool {
  return new pg.Pool({ connectionString: url, max, idleTimeoutMillis: 30_000, options: '-c jit=off' });
}

type Searchable = Pipeline & { search(db: pg.Pool, query: string, k: number): Promise<{ source_key: string; chunk_index: number; chunk_text: string; distance: number }[]> };

/**
 * Search over the embedding pipelines among `pipelines` (those with a `search` method), on the
 * console's pool. Read at each request: beside `walflow run`, pipelines come and go by live reload.
 */
function searchOf(pipelines: () => readonly Pipeline[], db: pg.Pool): ConsoleSearch {
  const embedding = () => pipelines().filter((p): p is Searchable => typeof (p as Partial<Searchable>).search === 'function');
  return {
    get pipelines() {
      return embedding().map((p) => p.name);
    },
    search: async (name, query, k) => {
      const pipeline = embedding().find((p) => p.name === name);
      if (!pipeline) throw new Error(`no embedding pipeline named "${name}" is loaded`);
      return pipeline.search(db, query, k);
    },
  };
}

export async function startConsole(url: string, config: WalflowConfig, port: number, log: Logger, pipelines: readonly Pipeline[] | (() => readonly Pipeline[]) = []): Promise<ConsoleServer> {
  const db = createConsolePool(url);
  // An idle connection dropped by the server must not crash the process; the next page reconnects.
  db.on('error', (err) => log.warn({ err }, 'console: idle database connection lost'));
  try {
    const server = await serveConsole({ db, port, host: config.uiHost, log, actionToken: config.uiToken, viewToken: config.uiViewToken, search: searchOf(typeof pipelines === 'function' ? pipelines : () => pipelines, db) });
    return {
      ...server,
      close: async () => {
        await server.close();
        await db.end();
      },
    };
  } catch (err) {
    await db.end();
    throw err;
  }
}

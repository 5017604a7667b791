// Starts the console on its own small pool, for `walflow run --ui-port` and `walflow ui`.
import type { Logger } from 'pino';
import type { WalflowConfig } from '../config/config.js';
import { createPool } from '../db/connection.js';
import { serveConsole, type ConsoleServer } from './server.js';

/** Pages run a handful of short reads each; a few connections serve many viewers. */
const POOL_SIZE = 4;

export async function startConsole(url: string, config: WalflowConfig, port: number, log: Logger): Promise<ConsoleServer> {
  const db = createPool(url, POOL_SIZE);
  // An idle connection dropped by the server must not crash the process; the next page reconnects.
  db.on('error', (err) => log.warn({ err }, 'console: idle database connection lost'));
  try {
    const server = await serveConsole({ db, port, host: config.uiHost, log, actionToken: config.uiToken, viewToken: config.uiViewToken });
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

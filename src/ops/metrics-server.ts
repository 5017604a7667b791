// /metrics (Prometheus), /healthz (the process answers) and /readyz (connected and migrated; leader
// or standby when replicating). Served from the start of `walflow run`: /readyz answers 503 until
// walflow is running, and again once it is stopping.
import http from 'node:http';
import type { Logger } from 'pino';
import { UserError } from '../errors.js';
import type { WalflowMetrics } from './metrics.js';
import type { Walflow } from './runner.js';

export interface MetricsServer {
  readonly port: number;
  /** Walflow is running: /readyz may answer 200. */
  attach(wf: Walflow): void;
  /** Walflow is shutting down: /readyz answers 503 from now on. */
  stopping(): void;
  close(): Promise<void>;
}

export async function serveMetrics(port: number, metrics: WalflowMetrics, log: Logger): Promise<MetricsServer> {
  let wf: Walflow | undefined;
  let state: 'starting' | 'running' | 'stopping' = 'starting';
  const server = http.createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0];
      try {
        if (path === '/healthz') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        } else if (path === '/readyz') {
          const role = wf?.replication?.currentStatus.role;
          if (wf && state === 'running') await wf.engine.pool.query('SELECT 1 FROM walflow.schema_migrations LIMIT 1');
          const ready = !!wf && state === 'running' && (!wf.replication || role === 'leader' || role === 'standby');
          res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ ready, state, replication: role ?? 'off' }) + '\n');
        } else if (path === '/metrics') {
          const body = await metrics.registry.metrics();
          res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body);
        } else {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /healthz or /readyz\n');
        }
      } catch (err) {
        res.writeHead(503, { 'content-type': 'text/plain' }).end(`not ready: ${(err as Error).message}\n`);
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' || err.code === 'EACCES'
        ? new UserError(`cannot serve metrics on port ${port}: ${err.code === 'EADDRINUSE' ? 'the port is in use' : 'permission denied'} (set --metrics-port or WALFLOW_METRICS_PORT to another port)`)
        : err));
    server.listen(port, () => resolve());
  });
  const addr = server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  log.info({ port: actual }, 'metrics on /metrics, health on /healthz and /readyz');
  return {
    port: actual,
    attach(w) {
      wf = w;
      state = 'running';
    },
    stopping() {
      state = 'stopping';
    },
    close: () => new Promise((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

// /metrics (Prometheus), /healthz (the process answers) and /readyz (connected and migrated; leader
// or standby when replicating).
import http from 'node:http';
import type { Logger } from 'pino';
import type { Walflow } from './runner.js';

export async function serveMetrics(port: number, wf: Walflow, log: Logger): Promise<{ close(): Promise<void>; port: number }> {
  const server = http.createServer((req, res) => {
    void (async () => {
      try {
        if (req.url === '/healthz') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        } else if (req.url === '/readyz') {
          await wf.engine.pool.query('SELECT 1 FROM walflow.schema_migrations LIMIT 1');
          const role = wf.replication?.currentStatus.role;
          const ready = !wf.replication || role === 'leader' || role === 'standby';
          res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ ready, replication: role ?? 'off' }) + '\n');
        } else if (req.url === '/metrics') {
          res.writeHead(200, { 'content-type': wf.metrics.registry.contentType }).end(await wf.metrics.registry.metrics());
        } else {
          res.writeHead(404).end();
        }
      } catch (err) {
        res.writeHead(503, { 'content-type': 'text/plain' }).end(`not ready: ${(err as Error).message}\n`);
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve());
  });
  const addr = server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  log.info({ port: actual }, 'metrics on /metrics, health on /healthz and /readyz');
  return { port: actual, close: () => new Promise((r) => server.close(() => r())) };
}

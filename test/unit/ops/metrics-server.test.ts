// The metrics server's states (a real walflow run is scraped in test/db/ops/run.test.ts).
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { WalflowMetrics } from '../../../src/ops/metrics.js';
import { serveMetrics, type MetricsServer } from '../../../src/ops/metrics-server.js';
import type { Walflow } from '../../../src/ops/runner.js';

let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function fakeWalflow(metrics: WalflowMetrics, role: string | undefined, dbUp = true): Walflow {
  return {
    metrics,
    engine: { pool: { query: async () => { if (!dbUp) throw new Error('connection terminated'); return { rows: [] }; } } },
    replication: role === undefined ? undefined : { currentStatus: { role } },
    stop: async () => undefined,
  } as unknown as Walflow;
}

describe('metrics server', () => {
  it('healthz at once; readyz 503 while starting, 200 once attached (leader or standby), 503 when stopping', async () => {
    const metrics = new WalflowMetrics();
    server = await serveMetrics(0, metrics, silentLogger);
    const get = async (path: string) => {
      const res = await fetch(`http://127.0.0.1:${server!.port}${path}`);
      return { status: res.status, body: await res.text() };
    };
    expect(await get('/healthz')).toEqual({ status: 200, body: 'ok\n' });
    expect(await get('/readyz')).toEqual({ status: 503, body: '{"ready":false,"state":"starting","replication":"off"}\n' });
    // Metrics are served while starting too (process metrics; queue gauges once a database is attached).
    const m = await get('/metrics?x=1');
    expect(m.status).toBe(200);
    expect(m.body).toContain('# TYPE walflow_run_ends_total counter');

    server.attach(fakeWalflow(metrics, 'idle'));
    expect((await get('/readyz')).status).toBe(503);
    server.attach(fakeWalflow(metrics, 'standby'));
    expect(await get('/readyz')).toEqual({ status: 200, body: '{"ready":true,"state":"running","replication":"standby"}\n' });
    server.attach(fakeWalflow(metrics, undefined));
    expect(await get('/readyz')).toEqual({ status: 200, body: '{"ready":true,"state":"running","replication":"off"}\n' });
    server.attach(fakeWalflow(metrics, 'leader', false));
    expect(await get('/readyz')).toEqual({ status: 503, body: 'not ready: connection terminated\n' });
    server.attach(fakeWalflow(metrics, 'leader'));
    server.stopping();
    expect(await get('/readyz')).toEqual({ status: 503, body: '{"ready":false,"state":"stopping","replication":"leader"}\n' });
    expect((await get('/other')).status).toBe(404);
  });

  it('a port in use is a user error naming it', async () => {
    const busy = http.createServer();
    await new Promise<void>((r) => busy.listen(0, r));
    const port = (busy.address() as { port: number }).port;
    try {
      const err = await serveMetrics(port, new WalflowMetrics(), silentLogger).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toBe(`cannot serve metrics on port ${port}: the port is in use (set --metrics-port or WALFLOW_METRICS_PORT to another port)`);
    } finally {
      await new Promise((r) => busy.close(r));
    }
  });

  it('counts run ends and step durations by pipeline', async () => {
    const metrics = new WalflowMetrics();
    metrics.hooks.onRunEnd('p', 'completed');
    metrics.hooks.onRunEnd('p', 'completed');
    metrics.hooks.onRunEnd('p', 'waiting');
    metrics.hooks.onStepDone('p', 's', true, 12);
    metrics.hooks.onStepDone('p', 's', false, 3);
    const text = await metrics.registry.metrics();
    expect(text).toContain('walflow_run_ends_total{pipeline="p",outcome="completed"} 2');
    expect(text).toContain('walflow_run_ends_total{pipeline="p",outcome="waiting"} 1');
    expect(text).toContain('walflow_step_duration_seconds_count{pipeline="p",step="s",outcome="ok"} 1');
    expect(text).toContain('walflow_step_duration_seconds_count{pipeline="p",step="s",outcome="error"} 1');
  });
});

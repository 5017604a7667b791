// `walflow run` as a real process: readiness, /healthz and /readyz, a /metrics scrape after a small
// pipeline run whose counters must add up with the database, `walflow status` showing the
// replication leader and the worker process, and a clean exit on SIGTERM.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';
import { failure, FIXTURE_PIPELINES, freePort, metric, parseMetrics, startWalflowRun, walflow, walflowJson, type RunningWalflow } from './support/cli.js';

const db = useTestDatabase();
const slot = `wf_ops_run_${randomBytes(4).toString('hex')}`;
let env: Record<string, string>;
let port: number;
let wf: RunningWalflow | undefined;

const get = (path: string) => fetch(`http://127.0.0.1:${port}${path}`);
const count = async (sql: string, params: unknown[] = []) => Number((await db.pool.query(sql, params)).rows[0].n);

beforeAll(async () => {
  port = await freePort();
  env = {
    DATABASE_URL: db.url, WALFLOW_PIPELINES_DIR: FIXTURE_PIPELINES, WALFLOW_SLOT_NAME: slot, WALFLOW_PUBLICATION_NAME: slot,
    WALFLOW_POLL_INTERVAL_MS: '100', WALFLOW_LOG_LEVEL: 'debug',
  };
  await db.pool.query('CREATE TABLE ops_items (id int PRIMARY KEY, n int NOT NULL)');
  // A pipeline no process here loads: its runs stay queued, for the queue gauges.
  await db.pool.query(`INSERT INTO walflow.pipelines (name, version, steps) VALUES ('ops-elsewhere', 'v1', '{noop}')`);
  for (let i = 0; i < 3; i++) await db.pool.query(`SELECT walflow.start('ops-elsewhere', $1)`, [{ i }]);
  wf = await startWalflowRun(['--only', 'ops-items,ops-inserts', '--metrics-port', String(port)], env);
}, 120_000);

afterAll(async () => {
  if (wf && wf.child.exitCode === null && wf.child.signalCode === null) await wf.stop('SIGKILL');
});

describe('walflow run', () => {
  it('answers /healthz, and /readyz once it leads the slot', async () => {
    const health = await get('/healthz');
    expect(health.status).toBe(200);
    expect(await health.text()).toBe('ok\n');
    const ready = await get('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true, state: 'running', replication: 'leader' });
    expect((await get('/nothing-here')).status).toBe(404);
  });

  it('/metrics after a small run: the counters add up with the changes made and the database', async () => {
    await db.pool.query('INSERT INTO ops_items SELECT g, g FROM generate_series(1, 20) g'); // 20 changes
    await db.pool.query('UPDATE ops_items SET n = n + 100 WHERE id <= 5'); // 5
    await db.pool.query('DELETE FROM ops_items WHERE id > 18'); // 2
    // ops-items takes all 27 changes; ops-inserts only the 20 inserts (7 filtered by its declaration).
    await waitFor('runs of every change, all finished', async () => {
      const started = await count(`SELECT count(*) AS n FROM walflow.runs WHERE pipeline IN ('ops-items', 'ops-inserts')`);
      const open = await count(`SELECT count(*) AS n FROM walflow.runs WHERE pipeline IN ('ops-items', 'ops-inserts') AND status IN ('queued', 'running', 'waiting')`);
      return started === 47 && open === 0;
    }, 30_000);

    const res = await get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parseMetrics(await res.text());

    expect(metric(m, 'walflow_changes_received_total')).toBe(27);
    expect(metric(m, 'walflow_changes_filtered_total')).toBe(7);
    expect(metric(m, 'walflow_runs_started_total')).toBe(47);
    expect(metric(m, 'walflow_changes_errors_total')).toBe(0);
    expect(metric(m, 'walflow_changes_replayed_total')).toBe(0);

    const byStatus = async (pipeline: string) =>
      Object.fromEntries((await db.pool.query(`SELECT status, count(*)::int AS n FROM walflow.runs WHERE pipeline = $1 GROUP BY 1`, [pipeline])).rows.map((r) => [r.status, r.n]));
    const items = await byStatus('ops-items');
    // Queued changes of a key that had not started yet were superseded by the newer change.
    expect((items.completed ?? 0) + (items.superseded ?? 0)).toBe(27);
    expect(metric(m, 'walflow_run_ends_total', { pipeline: 'ops-items', outcome: 'completed' })).toBe(items.completed);
    expect(metric(m, 'walflow_run_ends_total', { pipeline: 'ops-inserts', outcome: 'completed' })).toBe(20);
    expect(metric(m, 'walflow_run_ends_total', { pipeline: 'ops-items', outcome: 'failed' })).toBe(0);
    // Each executed run ran both steps once.
    for (const step of ['double', 'record']) {
      expect(metric(m, 'walflow_step_duration_seconds_count', { pipeline: 'ops-items', step, outcome: 'ok' })).toBe(items.completed);
    }
    expect(metric(m, 'walflow_step_duration_seconds_count', { pipeline: 'ops-inserts', step: 'noop', outcome: 'ok' })).toBe(20);

    // Queue gauges are read from the database at scrape time.
    expect(metric(m, 'walflow_runs', { pipeline: 'ops-elsewhere', status: 'queued' })).toBe(3);
    expect(metric(m, 'walflow_runs', { pipeline: 'ops-items', status: 'queued' })).toBe(0);
    // Parked runs (durable waits) have their own statuses, apart from retries (waiting).
    for (const status of ['sleeping', 'awaiting_signal', 'awaiting_children', 'repeating']) expect(metric(m, 'walflow_runs', { pipeline: 'ops-items', status })).toBe(0);
    expect(metric(m, 'walflow_runs', { pipeline: 'ops-items', status: 'completed_1h' })).toBe(items.completed);
    expect(metric(m, 'walflow_runs', { pipeline: 'ops-inserts', status: 'completed_1h' })).toBe(20);
    expect(metric(m, 'walflow_oldest_queued_seconds', { pipeline: 'ops-elsewhere' })).toBeGreaterThan(0);

    expect(metric(m, 'walflow_replication_leader')).toBe(1);
    expect(m.has(`walflow_replication_lag_bytes{slot="${slot}"}`)).toBe(true);
    // The standard process metrics, under their usual names.
    expect(m.has('process_cpu_user_seconds_total')).toBe(true);
    expect(m.has('nodejs_eventloop_lag_seconds')).toBe(true);
  });

  it('walflow status shows the slot, its lag, the leader and the worker process', async () => {
    const { json } = await walflowJson<{
      pipelines: { pipeline: string; queued: number }[];
      replication: Record<string, unknown>[];
      workers: Record<string, unknown>[];
    }>(['status'], env);
    expect(json.pipelines.find((p) => p.pipeline === 'ops-elsewhere')).toMatchObject({ queued: 3 });
    expect(json.replication).toHaveLength(1);
    expect(json.replication[0]).toMatchObject({ slot, publication: slot, active: true, leader_health: 'alive' });
    expect(json.replication[0]!.wal_status).toMatch(/^(reserved|extended)$/);
    expect(json.replication[0]!.leader).toMatch(new RegExp(`:${wf!.child.pid}:`));
    expect(typeof json.replication[0]!.lag_bytes).toBe('number');
    expect(json.workers).toHaveLength(1);
    expect(json.workers[0]).toMatchObject({ pid: wf!.child.pid, health: 'alive', in_flight: 0 });
    expect([...(json.workers[0]!.pipelines as string[])].sort()).toEqual(['ops-inserts', 'ops-items']);

    const human = await walflow(['status'], env);
    expect(human.stdout).toMatch(new RegExp(`replication\\nSLOT\\s+ACTIVE\\s+LAG\\s+LAG_AGE\\s+LEADER\\s+LEADER_HEALTH\\s+HEARTBEAT\\s+WAL_STATUS\\n${slot}\\s+true\\s+\\d`));
    expect(human.stdout).toMatch(new RegExp(`workers\\nOWNER\\s+PID\\s+HEALTH\\s+IN_FLIGHT\\s+PIPELINES\\s+HEARTBEAT\\n\\S+\\s+${wf!.child.pid}\\s+alive\\s+0\\s+`));
  });

  it('a second `walflow run` on a busy metrics port fails in one line, without starting anything', async () => {
    const r = failure(await walflow(['run', '--only', 'ops-items', '--metrics-port', String(port)], env));
    expect(r).toMatchObject({ code: 2, lines: 1, stack: false, stdout: '' });
    expect(r.line).toBe(`walflow: cannot serve metrics on port ${port}: the port is in use (set --metrics-port or WALFLOW_METRICS_PORT to another port)`);
  });

  it('stops cleanly on SIGTERM: exit 0, its worker row gone, the slot released', async () => {
    const exit = await wf!.stop('SIGTERM', 30_000);
    expect(exit).toEqual({ code: 0, signal: null });
    const msgs = wf!.logs().map((l) => l.msg);
    expect(msgs).toContain('stopping: finishing running steps');
    expect(msgs.at(-1)).toBe('stopped');
    expect(wf!.logs().filter((l) => (l.level as number) >= 50)).toEqual([]);
    expect(wf!.stdout()).toBe('');

    // The server notices the closed replication connection a moment after the process exits.
    await waitFor('the slot to be released', async () => !(await db.pool.query('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0].active);
    const { json } = await walflowJson<{ replication: Record<string, unknown>[]; workers: unknown[] }>(['status'], env);
    expect(json.workers).toEqual([]);
    // A clean stop clears the leader: nobody leads, rather than a leader that went quiet.
    expect(json.replication[0]).toMatchObject({ slot, active: false, leader: null, leader_health: 'none' });
    await expect(get('/healthz')).rejects.toThrow();
  });
});

describe('walflow run: startup errors', () => {
  it('a missing source table is one line naming the pipeline, exit 2, and no process left behind', async () => {
    const t0 = Date.now();
    const r = failure(await walflow(['run', '--only', 'ops-embed'], env, 30_000));
    expect(r).toMatchObject({ code: 2, stack: false, stdout: '' });
    expect(r.line).toBe('walflow: pipeline "ops-embed": source table public.ops_docs does not exist: create it, or fix source.table');
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('backfill of a pipeline whose source table is missing: one line, exit 2', async () => {
    const r = failure(await walflow(['backfill', 'ops-embed'], env));
    expect(r).toMatchObject({ code: 2, lines: 1, stack: false, stdout: '' });
    expect(r.line).toBe('walflow: pipeline "ops-embed": source table public.ops_docs does not exist: create it, or fix source.table');
  });

  it.each([
    [['--workers', 'many'], /^walflow: invalid configuration: workers \(--workers\): must be a whole number from 0 to 256 \(got "many"\)$/],
    [['--metrics-port', '70000'], /^walflow: invalid configuration: metricsPort \(--metrics-port\): must be a whole number from 0 to 65535 \(got "70000"\)$/],
    [['--only', 'ops-items,no-such-pipeline'], /^walflow: no pipeline named "no-such-pipeline" in .* \(found: ops-embed, ops-inserts, ops-items, ops-jobs\)$/, 3],
  ])('%j: one line, exit 2 (3 for a missing pipeline)', async (args, pattern, code = 2) => {
    const r = failure(await walflow(['run', ...args], env));
    expect(r).toMatchObject({ code, lines: 1, stack: false, stdout: '' });
    expect(r.line).toMatch(pattern);
  });
});

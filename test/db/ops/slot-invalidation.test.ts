// The invalidated-slot path, on a private cluster (its max_slot_wal_keep_size is changed, which
// would endanger the slots of other test files on the shared one): walflow leads a slot, is
// frozen (SIGSTOP) while WAL moves on past max_slot_wal_keep_size and a CHECKPOINT invalidates the
// slot (wal_status 'lost'). Thawed, walflow stops replicating instead of skipping the lost changes,
// and says so everywhere: an error log with the recovery, /readyz 503 (replication "failed"), the
// walflow_replication_slot_lost gauge, `walflow status`, `walflow doctor` (exit 2). A restart refuses
// to stream from the broken slot (exit 2). The documented recovery (drop the slot, run, backfill)
// brings back the change that was never streamed; the recreated slot is itself recorded as a gap
// (walflow.replication_errors kind slot_recreated), as it is when a failover or a provider loses it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedCluster } from '../../../src/db/embedded-cluster.js';
import { waitFor } from '../../harness/wait.js';
import { FIXTURE_PIPELINES, freePort, metric, parseMetrics, startWalflowRun, walflow, walflowJson, type RunningWalflow } from './support/cli.js';

const SLOT = 'wf_lost';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walflow-slot-lost-'));
fs.chmodSync(dir, 0o755);
const cluster = new EmbeddedCluster({ dataDir: path.join(dir, 'data'), settings: { fsync: 'off', full_page_writes: 'off' } });
let pool: pg.Pool;
let env: Record<string, string>;
let port: number;
let wf: RunningWalflow | undefined;

const q = async <T extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params: unknown[] = []) => (await pool.query<T>(sql, params)).rows;
const completedRow = async (id: number) =>
  Number((await q<{ n: string }>(`SELECT count(*) AS n FROM walflow.runs WHERE pipeline = 'ops-items' AND status = 'completed' AND coalesce(input->'row'->>'id', input->'key'->>'id') = $1`, [String(id)]))[0]!.n) > 0;

beforeAll(async () => {
  const url = await cluster.start();
  pool = new pg.Pool({ connectionString: url, max: 4 });
  port = await freePort();
  env = { DATABASE_URL: url, WALFLOW_PIPELINES_DIR: FIXTURE_PIPELINES, WALFLOW_SLOT_NAME: SLOT, WALFLOW_PUBLICATION_NAME: SLOT, WALFLOW_POLL_INTERVAL_MS: '100' };
  await q('CREATE TABLE ops_items (id int PRIMARY KEY, n int NOT NULL)');
  await q('CREATE TABLE filler (id serial PRIMARY KEY, pad text)');
}, 120_000);

afterAll(async () => {
  if (wf && wf.child.exitCode === null && wf.child.signalCode === null) {
    wf.child.kill('SIGCONT');
    await wf.stop('SIGKILL');
  }
  await pool?.end();
  await cluster.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('an invalidated replication slot', () => {
  it('is detected and reported, replication stops instead of skipping changes, and a re-backfill recovers', async () => {
    wf = await startWalflowRun(['--only', 'ops-items', '--metrics-port', String(port)], env);
    await q('INSERT INTO ops_items SELECT g, g FROM generate_series(1, 3) g');
    await waitFor('the first three rows done', async () => (await completedRow(1)) && (await completedRow(2)) && (await completedRow(3)), 30_000);

    // Freeze the leader, then let WAL run past the (tiny) limit and checkpoint until the server gives up on the slot.
    await q(`ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'`);
    await q('SELECT pg_reload_conf()');
    wf.child.kill('SIGSTOP');
    await q('INSERT INTO ops_items VALUES (4, 4)'); // committed while frozen: it will never be streamed
    await waitFor('wal_status lost', async () => {
      await q(`INSERT INTO filler (pad) SELECT repeat('x', 1000) FROM generate_series(1, 100)`);
      await q('SELECT pg_switch_wal()');
      await q('CHECKPOINT');
      return (await q<{ wal_status: string }>('SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1', [SLOT]))[0]?.wal_status === 'lost';
    }, 60_000, 100);
    wf.child.kill('SIGCONT');

    const logged = await waitFor('the error log', async () => wf!.logs().find((l) => l.level === 50 && String(l.msg).includes('was invalidated by the server')), 60_000);
    expect(String(logged.msg)).toContain(`pg_drop_replication_slot('${SLOT}')`);
    expect(String(logged.msg)).toContain('walflow backfill <pipeline> --restart');

    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ ready: false, state: 'running', replication: 'failed' });
    const m = parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
    expect(metric(m, 'walflow_replication_slot_lost', { slot: SLOT })).toBe(1);
    expect(metric(m, 'walflow_replication_leader')).toBe(0);

    const status = await walflowJson<{ replication: { slot: string; wal_status: string }[] }>(['status'], env);
    expect(status.json.replication).toEqual([expect.objectContaining({ slot: SLOT, wal_status: 'lost' })]);
    const doctor = await walflowJson<{ ok: boolean; checks: { check: string; status: string; detail: string; fix?: string }[] }>(['doctor'], env, 2);
    expect(doctor.json.checks.find((c) => c.check === `slot ${SLOT}`)).toMatchObject({ status: 'fail', detail: expect.stringMatching(/^invalidated/) });

    // Row 4 was never streamed, and nothing pretends otherwise: no run for it.
    expect(await completedRow(4)).toBe(false);
    expect(await wf.stop('SIGTERM')).toEqual({ code: 0, signal: null });

    // A restart refuses to stream from the broken slot (it does not quietly make a new one).
    const again = await walflow(['run', '--only', 'ops-items'], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('was invalidated by the server');

    // The documented recovery: drop the slot, run (a new slot), backfill: row 4 gets its run.
    await q('SELECT pg_drop_replication_slot($1)', [SLOT]);
    await q('ALTER SYSTEM RESET max_slot_wal_keep_size');
    await q('SELECT pg_reload_conf()');
    wf = await startWalflowRun(['--only', 'ops-items'], env);
    // The new slot is not taken quietly either: the gap since the old durable position is on record.
    const gap = await q<{ kind: string; message: string }>(`SELECT kind, message FROM walflow.replication_errors WHERE slot_name = $1`, [SLOT]);
    expect(gap).toEqual([{ kind: 'slot_recreated', message: expect.stringContaining('walflow backfill <pipeline> --restart') }]);
    expect(wf.logs().some((l) => l.level === 50 && String(l.msg).includes('was missing and has been created again'))).toBe(true);
    const backfill = await walflowJson<{ finished: boolean; total: number }>(['backfill', 'ops-items'], env);
    expect(backfill.json).toMatchObject({ finished: true, total: 4 });
    await waitFor('row 4 done after the re-backfill', () => completedRow(4), 30_000);
    expect(await wf.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  }, 300_000);
});

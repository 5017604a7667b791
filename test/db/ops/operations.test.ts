// What an operator sees over time: a retried run keeps every execution's own timeline entry, dead
// processes and dropped slots stop looking alive, runs list in exact start order (and page
// correctly through runs started in the same millisecond), cancel fences go with their runs.
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { pruneFinished } from '../../../src/engine/sql/maintenance.js';
import { definePipeline } from '../../../src/pipeline/define.js';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';

const db = useTestDatabase();
let engine: Engine | undefined;
afterEach(async () => {
  await engine?.stop();
  engine = undefined;
});

const statusOf = async (id: string) => (await db.pool.query('SELECT status FROM walflow.runs WHERE id = $1', [id])).rows[0].status as string;
const until = (id: string, status: string) => waitFor(`run ${id} ${status}`, async () => (await statusOf(id)) === status, 20_000, 20);

describe('walflow retry keeps the failure history', () => {
  it('fails twice, retried: attempt 3 fails with its own entry, attempt 4 (a fresh budget) completes', async () => {
    const seen: number[] = [];
    engine = new Engine({ url: db.url, pollIntervalMs: 50, pipelines: [definePipeline({ name: 'history', steps: [
      { name: 'prepare', run: () => 1 },
      { name: 'call', retry: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 10 }, run: async (ctx) => {
        seen.push(ctx.attempt);
        await new Promise((r) => setTimeout(r, 5));
        if (ctx.attempt <= 3) throw new Error(`failure ${ctx.attempt}`);
        return 'ok';
      } },
    ] })] });
    await engine.register();
    await engine.runWorkers();
    const id = await engine.start('history', {});
    await until(id, 'failed');
    const retriedAt = (await db.pool.query('SELECT walflow.retry($1) AS ok, clock_timestamp() AS at', [id])).rows[0];
    expect(retriedAt.ok).toBe(true);
    await until(id, 'completed');

    expect(seen).toEqual([1, 2, 3, 4]);
    const { rows } = await db.pool.query(
      `SELECT outcome, attempt, error->>'message' AS message, started_at, finished_at, duration_ms::float8 AS ms
         FROM walflow.run_timeline WHERE run_id = $1 AND step = 'call' ORDER BY attempt`, [id]);
    expect(rows.map((r) => [r.outcome, r.attempt, r.message])).toEqual([
      ['failed', 1, 'failure 1'], ['failed', 2, 'failure 2'], ['failed', 3, 'failure 3'], ['completed', 4, null],
    ]);
    // Each entry is its own execution: in order, not overlapping, and the third one after the retry.
    for (let i = 1; i < rows.length; i++) expect(rows[i].started_at.getTime()).toBeGreaterThanOrEqual(rows[i - 1].finished_at.getTime());
    expect(rows[2].started_at.getTime()).toBeGreaterThanOrEqual(retriedAt.at.getTime());
    // ... so each duration is that execution's (5 ms of sleep), not a span across both rounds.
    for (const r of rows) expect(r.ms).toBeLessThanOrEqual(retriedAt.at.getTime() - rows[0].started_at.getTime());
  });

  it('retry_failed continues the count too', async () => {
    engine = new Engine({ url: db.url, pollIntervalMs: 50, pipelines: [definePipeline({ name: 'history-all', steps: [
      { name: 'only', retry: { maxAttempts: 1 }, run: (ctx) => { if (ctx.attempt === 1) throw new Error('first'); return ctx.attempt; } },
    ] })] });
    await engine.register();
    await engine.runWorkers();
    const id = await engine.start('history-all', {});
    await until(id, 'failed');
    expect((await db.pool.query(`SELECT walflow.retry_failed('history-all') AS n`)).rows[0].n).toBe(1);
    await until(id, 'completed');
    const { rows } = await db.pool.query('SELECT outcome, attempt FROM walflow.run_timeline WHERE run_id = $1 ORDER BY attempt', [id]);
    expect(rows).toEqual([{ outcome: 'failed', attempt: 1 }, { outcome: 'completed', attempt: 2 }]);
    expect((await db.pool.query('SELECT walflow.result($1) AS r', [id])).rows[0].r).toBe(2);
  });
});

describe('walflow status: workers and slots', () => {
  it('a process that stopped heartbeating is dead with no current in-flight count, and is forgotten after an hour', async () => {
    await db.pool.query(`INSERT INTO walflow.workers (owner, host, pid, pipelines, in_flight, started_at, heartbeat_at) VALUES
      ('h:1', 'h', 1, '{p}', 3, now() - interval '1 hour', now() - interval '5 seconds'),
      ('h:2', 'h', 2, '{p}', 7, now() - interval '1 hour', now() - interval '31 seconds'),
      ('h:3', 'h', 3, '{p}', 9, now() - interval '2 hours', now() - interval '61 minutes')`);
    const health = async () => (await db.pool.query('SELECT owner, health, in_flight FROM walflow.worker_health ORDER BY owner')).rows;
    expect(await health()).toEqual([
      { owner: 'h:1', health: 'alive', in_flight: 3 },
      { owner: 'h:2', health: 'dead', in_flight: null },
      { owner: 'h:3', health: 'dead', in_flight: null },
    ]);
    // The engine's maintenance (at each heartbeat) forgets processes silent for an hour.
    engine = new Engine({ url: db.url, pipelines: [definePipeline({ name: 'hb', steps: [{ name: 's', run: () => null }] })] });
    await engine.register();
    await engine.runWorkers();
    await waitFor('h:3 forgotten', async () => !(await health()).some((w) => w.owner === 'h:3'));
    expect((await health()).filter((w) => w.owner.startsWith('h:')).map((w) => w.owner)).toEqual(['h:1', 'h:2']);
    await db.pool.query(`DELETE FROM walflow.workers WHERE owner LIKE 'h:%'`);
  });

  it('replication rows of slots the server no longer has disappear', async () => {
    const slot = `ops_status_${process.pid}`;
    await db.pool.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    try {
      await db.pool.query(`INSERT INTO walflow.replication_state (slot_name, publication) VALUES ($1, 'p'), ('ops_dropped_long_ago', 'p')`, [slot]);
      const slots = async () => (await db.pool.query('SELECT slot_name FROM walflow.replication_status ORDER BY 1')).rows.map((r) => r.slot_name);
      expect(await slots()).toEqual([slot]);
      await db.pool.query('SELECT pg_drop_replication_slot($1)', [slot]);
      expect(await slots()).toEqual([]);
    } finally {
      await db.pool.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]);
      await db.pool.query('DELETE FROM walflow.replication_state');
    }
  });
});

describe('walflow.list_runs', () => {
  /** A uuid v7 of millisecond `ms` with the given random tail (32 hex digits minus the 12 of the time). */
  const idAt = (ms: number, tail: string) => {
    const hex = ms.toString(16).padStart(12, '0') + '7' + tail.padStart(19, '0');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${'8' + hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  };

  it('lists exactly newest first within one millisecond, and pages through it', async () => {
    await db.pool.query(`INSERT INTO walflow.pipelines (name, version, steps) VALUES ('listed', 'v1', '{a,b}')`);
    const ms = Date.now();
    // Started in this order (seq): one in the previous millisecond, twelve in the same one whose
    // random parts do not follow their start order (as uuid v7's do not), one in the next.
    const ids = [idAt(ms - 1, 'aaa'), ...Array.from({ length: 12 }, (_, i) => idAt(ms, ((i * 7) % 12).toString(16).repeat(3))), idAt(ms + 1, '111')];
    for (const id of ids) await db.pool.query(`INSERT INTO walflow.runs (id, pipeline, input) VALUES ($1, 'listed', '{}')`, [id]);
    const newestFirst = [...ids].reverse();

    const list = async (before: string | null, limit: number) =>
      (await db.pool.query(`SELECT id FROM walflow.list_runs('listed', NULL, NULL, $1, $2)`, [before, limit])).rows.map((r) => r.id as string);
    expect(await list(null, 50)).toEqual(newestFirst);
    for (const limit of [1, 4, 5]) {
      const pages: string[] = [];
      let before: string | null = null;
      for (;;) {
        const page = await list(before, limit);
        if (page.length === 0) break;
        pages.push(...page);
        before = page.at(-1)!;
      }
      expect(pages).toEqual(newestFirst);
    }
  });

  it('names the step a run is at: steps_done and current_step, not the step it was claimed at', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    engine = new Engine({ url: db.url, pollIntervalMs: 50, pipelines: [definePipeline({ name: 'stepping', steps: [
      { name: 'first', run: () => 1 },
      { name: 'second', run: async () => { await gate; return 2; } },
    ] })] });
    await engine.register();
    await engine.runWorkers();
    const id = await engine.start('stepping', {});
    const row = async () => (await db.pool.query(`SELECT status, steps_done, current_step, attempt FROM walflow.list_runs('stepping', NULL, NULL, NULL, 1)`)).rows[0];
    await waitFor('first checkpointed', async () => (await row()).steps_done === 1);
    expect(await row()).toEqual({ status: 'running', steps_done: 1, current_step: 'second', attempt: 1 });
    release();
    await until(id, 'completed');
    expect(await row()).toEqual({ status: 'completed', steps_done: 2, current_step: null, attempt: 1 });
  });

  it('pages from the primary key with 100,000 finished runs: a page reads a few blocks, not the table', async () => {
    await db.pool.query(`INSERT INTO walflow.pipelines (name, version, steps) VALUES ('bulk', 'v1', '{a}') ON CONFLICT DO NOTHING`);
    // 100 runs per millisecond (100,000 runs/s, above start_batch's measured rate): the last
    // millisecond of a page, read whole, is that big.
    await db.pool.query(
      `INSERT INTO walflow.runs (id, pipeline, input, status, finished_at)
       SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING substring(int8send($1::bigint + g / 100) FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid,
              'bulk', '{}', 'completed', now()
         FROM generate_series(0, 99999) g ORDER BY g`, [Date.now() - 3600_000]);
    await db.pool.query('ANALYZE walflow.runs');
    const middle = (await db.pool.query(`SELECT id FROM walflow.runs WHERE pipeline = 'bulk' ORDER BY seq OFFSET 50000 LIMIT 1`)).rows[0].id;
    const tableBlocks = Number((await db.pool.query(`SELECT pg_relation_size('walflow.runs') / current_setting('block_size')::int AS n`)).rows[0].n);
    for (const before of [null, middle]) {
      // Once to warm this connection's catalog caches (the function plans its query per call).
      const c = await db.pool.connect();
      await c.query('SELECT * FROM walflow.list_runs(NULL, NULL, NULL, $1, 20)', [before]);
      const plan = (await c.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM walflow.list_runs(NULL, NULL, NULL, $1, 20)`, [before])).rows[0]['QUERY PLAN'][0].Plan;
      c.release();
      const blocks = plan['Shared Hit Blocks'] + plan['Shared Read Blocks'];
      expect(plan['Actual Rows']).toBe(20);
      // About two block reads per run of the page's last millisecond (130-220 measured); reading
      // the table would be all of it (2,000 blocks).
      expect(blocks).toBeLessThan(500);
      expect(tableBlocks).toBeGreaterThan(3 * 500);
    }
  }, 60_000);
});

describe('pruning', () => {
  it('a run cancelled mid-step leaves a checkpoint fence that is pruned with the run', async () => {
    await db.pool.query(`INSERT INTO walflow.pipelines (name, version, steps) VALUES ('fenced', 'v1', '{a}')`);
    const id = (await db.pool.query(`SELECT walflow.start('fenced', '{}') AS id`)).rows[0].id;
    // As a worker's claim leaves it: running under a lease.
    await db.pool.query(`UPDATE walflow.runs SET status = 'running', lease_owner = 'w', lease_expires_at = now() + interval '1 minute', started_at = now() WHERE id = $1`, [id]);
    expect((await db.pool.query('SELECT walflow.cancel($1) AS ok', [id])).rows[0].ok).toBe(true);
    const fences = async () => Number((await db.pool.query('SELECT count(*) FROM walflow.cancelled_running WHERE run_id = $1', [id])).rows[0].count);
    expect(await fences()).toBe(1);
    await db.pool.query(`UPDATE walflow.runs SET finished_at = now() - interval '8 days' WHERE id = $1`, [id]);
    expect(await pruneFinished(db.pool, 7 * 24 * 3600_000)).toBeGreaterThanOrEqual(1);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM walflow.runs WHERE id = $1', [id])).rows[0].n).toBe(0);
    expect(await fences()).toBe(0);
  });
});

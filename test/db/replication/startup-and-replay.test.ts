import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { databaseUrl, useTestDatabase } from '../../harness/db.js';
import { dropSlot } from '../../../src/replication/setup/slot.js';
import { count, pipeline, register, slotName, source, teardown, waitFor } from './support/test-source.js';

const db = useTestDatabase();
let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

describe('replication source: startup validation', () => {
  it('rejects a source in schema walflow before connecting, naming the loop it would cause', () => {
    expect(() => source(db.url, [pipeline('loop', { table: 'walflow.runs' })])).toThrow(/pipeline "loop": source table walflow.runs is in walflow's own schema/);
  });

  it("rejects a pipeline whose source is a loaded pipeline's target (it would loop on its own writes)", () => {
    const writer = { ...pipeline('writer', { table: 'docs' }), targets: ['docs_embeddings'] };
    const reader = pipeline('reader', { table: 'public.docs_embeddings' });
    expect(() => source(db.url, [writer, reader])).toThrow(/pipeline "reader": source table public.docs_embeddings is a target that pipeline "writer" writes to/);
  });

  it('names a missing table, and a table without a key together with the fix', async () => {
    await expect(source(db.url, [pipeline('p', { table: 'nope' })]).start()).rejects.toThrow(/pipeline "p": source table public.nope does not exist/);
    await db.pool.query(`CREATE TABLE public.nokey (a int, b text)`);
    const err = source(db.url, [pipeline('p', { table: 'nokey' })]).start();
    await expect(err).rejects.toThrow(/public.nokey has no primary key or replica identity.*ALTER TABLE public.nokey REPLICA IDENTITY FULL/);
    await db.pool.query(`CREATE TABLE public.keyed (id int PRIMARY KEY, other int)`);
    await expect(source(db.url, [pipeline('p', { table: 'keyed', key: ['other'] })]).start()).rejects.toThrow(/not part of public.keyed's replica identity/);
  });

  it('says so when the role lacks REPLICATION', async () => {
    await db.pool.query(`DO $$ BEGIN CREATE ROLE wf_norepl LOGIN PASSWORD 'wf-password'; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
    const u = new URL(databaseUrl(db.adminUrl, db.name));
    u.username = 'wf_norepl';
    u.password = 'wf-password';
    await expect(source(u.toString(), [pipeline('p', { table: 'keyed' })]).start()).rejects.toThrow(/role "wf_norepl" may not use replication: .*ALTER ROLE "wf_norepl" WITH REPLICATION/);
  });
});

describe('replication source: publication follows the pipelines', () => {
  it('publishes exactly the source tables, adding and removing tables as pipelines change', async () => {
    await db.pool.query(`CREATE TABLE public.pa (id int PRIMARY KEY); CREATE TABLE public."Mixed Case" (id int PRIMARY KEY)`);
    await register(db.pool, 'pa_p', 'mc_p');
    const slot = slotName();
    const published = async () =>
      (await db.pool.query(`SELECT schemaname || '.' || tablename AS t FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1`, [`${slot}_pub`])).rows.map((r) => r.t as string);
    let src = source(db.url, [pipeline('pa_p', { table: 'pa' }), pipeline('mc_p', { table: '"Mixed Case"' })], { slotName: slot });
    await src.start();
    await waitFor('leader', async () => src.currentStatus.durableLsn !== null);
    expect(await published()).toEqual(['public.Mixed Case', 'public.pa']);
    await src.stop();
    src = source(db.url, [pipeline('pa_p', { table: 'pa' })], { slotName: slot });
    await src.start();
    cleanups.push(() => teardown(db.pool, src, slot));
    await waitFor('leader', async () => src.currentStatus.durableLsn !== null);
    expect(await published()).toEqual(['public.pa']);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM pg_publication_tables WHERE pubname = $1 AND schemaname = 'walflow'`, [`${slot}_pub`]);
    expect(rows[0].n).toBe(0);
  });
});

describe('replication source: restart and replay', () => {
  it('stop/start in-process resumes from the durable position; replaying a slot from the start creates no duplicates', async () => {
    await db.pool.query(`CREATE TABLE public.orders (id int PRIMARY KEY, qty int)`);
    await register(db.pool, 'orders_p');
    const slot = slotName();
    const replay = `${slot}_replay`;
    const p = pipeline('orders_p', { table: 'orders' });
    let src = source(db.url, [p], { slotName: slot });
    await src.start();
    cleanups.push(() => dropSlot(db.pool, replay).then(() => undefined));
    await waitFor('leader', async () => src.currentStatus.role === 'leader' && src.currentStatus.durableLsn !== null);
    // A second slot at the same position: consuming it later replays everything the first one saw.
    await db.pool.query(`SELECT pg_copy_logical_replication_slot($1, $2)`, [slot, replay]);
    await db.pool.query(`INSERT INTO public.orders SELECT g, 1 FROM generate_series(1, 300) g`);
    await waitFor('300 runs', async () => (await count(db.pool, `SELECT count(*) n FROM walflow.runs`)) === 300);
    await src.stop();

    await db.pool.query(`UPDATE public.orders SET qty = 2 WHERE id <= 100`);
    src = source(db.url, [p], { slotName: slot });
    await src.start();
    cleanups.push(() => teardown(db.pool, src, slot));
    await waitFor('100 update runs', async () => (await count(db.pool, `SELECT count(*) n FROM walflow.runs`)) === 400);
    expect(src.counters.replayed).toBe(0); // resumed after the durable position, not before it

    const again = source(db.url, [p], { slotName: replay, publicationName: `${slot}_pub` });
    await again.start();
    await waitFor('replay of 400 changes', async () => again.counters.replayed === 400);
    await again.stop();
    expect(again.counters.started).toBe(0);
    expect(await count(db.pool, `SELECT count(*) n FROM walflow.runs`)).toBe(400);
    expect(await count(db.pool, `SELECT count(DISTINCT (pipeline, dedupe_id)) n FROM walflow.runs`)).toBe(400);
  });

  it('an idle slot is advanced by heartbeats, and lag is visible in walflow.replication_lag', async () => {
    await db.pool.query(`CREATE TABLE public.quiet (id int PRIMARY KEY); CREATE TABLE public.noisy (id int PRIMARY KEY)`);
    await register(db.pool, 'quiet_p');
    const slot = slotName();
    const src = source(db.url, [pipeline('quiet_p', { table: 'quiet' })], { slotName: slot });
    await src.start();
    cleanups.push(() => teardown(db.pool, src, slot));
    await waitFor('leader', async () => src.currentStatus.role === 'leader' && src.currentStatus.durableLsn !== null);
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query(`INSERT INTO public.noisy SELECT generate_series(1, 1000)`); // WAL, but nothing published
    const { rows: [{ lsn }] } = await c.query(`SELECT pg_current_wal_lsn()::text AS lsn`);
    await c.end();
    await waitFor('slot past the unpublished writes', async () => {
      const { rows } = await db.pool.query(`SELECT confirmed_flush_lsn >= $2::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $1`, [slot, lsn]);
      return rows[0]?.ok === true;
    });
    const { rows } = await db.pool.query(`SELECT slot_name, active, lag_bytes, durable_lsn >= $2::pg_lsn AS durable_ok, leader_id IS NOT NULL AS led FROM walflow.replication_lag WHERE slot_name = $1`, [slot, lsn]);
    expect(rows[0]).toMatchObject({ slot_name: slot, active: true, durable_ok: true, led: true });
    // Lag is the whole server's WAL since the slot's position; other test files write WAL at the
    // same time, so only its presence is checked here (the advance is checked above).
    expect(Number.isFinite(Number(rows[0].lag_bytes))).toBe(true);
    expect(Number(rows[0].lag_bytes)).toBeGreaterThanOrEqual(0);
    expect(src.counters.started).toBe(0);
  });
});

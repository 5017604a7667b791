import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { assertNoLeakedSlots, slotsOf, SlotLeakError, useTestDatabase } from '../harness/db.js';

const db = useTestDatabase();

describe('test server', () => {
  it('has wal_level=logical and pgvector', async () => {
    const { rows } = await db.pool.query<{ wal_level: string }>('SHOW wal_level');
    expect(rows[0]?.wal_level).toBe('logical');
    await db.pool.query('CREATE EXTENSION IF NOT EXISTS vector');
    const { rows: dist } = await db.pool.query<{ d: number }>(`SELECT '[1,0,0]'::vector <=> '[0,1,0]'::vector AS d`);
    expect(dist[0]?.d).toBeCloseTo(1);
  });

  it('gives each file its own migrated database', async () => {
    const { rows } = await db.pool.query<{ db: string; v: number }>(`SELECT current_database() AS db, (SELECT max(version) FROM walflow.schema_migrations) AS v`);
    expect(rows[0]?.db).toBe(db.name);
    expect(rows[0]?.v).toBeGreaterThanOrEqual(1);
  });

  it('detects a leaked replication slot, names it, and drops it', async () => {
    const before = await slotsOf(db.pool, db.name);
    await db.pool.query(`SELECT pg_create_logical_replication_slot('wf_leaky_slot', 'pgoutput')`);
    const err = await assertNoLeakedSlots(db.pool, db.name, before).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SlotLeakError);
    expect((err as Error).message).toContain('wf_leaky_slot');
    expect(await slotsOf(db.pool, db.name)).toEqual(before);
  });

  it('detects a leaked slot that a live consumer still holds', async () => {
    const before = await slotsOf(db.pool, db.name);
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    holder.on('error', () => undefined); // it is terminated by the check
    await holder.query(`SELECT pg_create_logical_replication_slot('wf_held_slot', 'pgoutput', true)`);
    // A temporary slot lives as long as its session; the check must still catch it.
    await expect(assertNoLeakedSlots(db.pool, db.name, before)).rejects.toThrow(/wf_held_slot/);
    expect(await slotsOf(db.pool, db.name)).toEqual(before);
    await holder.end().catch(() => undefined);
  });
});

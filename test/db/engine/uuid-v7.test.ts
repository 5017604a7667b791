// walflow.uuid_v7(): the ids of runs started from SQL. Version 7 layout (time-ordered, so the runs
// primary key grows at its right edge), and cheap: no SET clause, so it is inlined (sql/definitions/functions/uuid_v7.sql).
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/db.js';

const db = useTestDatabase();

describe('walflow.uuid_v7()', () => {
  it('makes version-7 ids carrying the time in milliseconds, ordered across milliseconds', async () => {
    const before = Date.now();
    const { rows } = await db.pool.query<{ id: string }>(`SELECT walflow.uuid_v7()::text AS id FROM generate_series(1, 2000)`);
    const after = Date.now();
    const ids = rows.map((r) => r.id);
    expect(new Set(ids).size).toBe(2000);
    for (const id of ids) {
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const ms = parseInt(id.replace(/-/g, '').slice(0, 12), 16);
      expect(ms).toBeGreaterThanOrEqual(before - 5); // clocks of one machine; a little slack
      expect(ms).toBeLessThanOrEqual(after + 5);
    }
    const first = await db.pool.query<{ id: string }>('SELECT walflow.uuid_v7()::text AS id');
    await new Promise((r) => setTimeout(r, 3));
    const second = await db.pool.query<{ id: string }>('SELECT walflow.uuid_v7()::text AS id');
    expect(first.rows[0]!.id < second.rows[0]!.id).toBe(true);
  });

  it('has no SET clause (so the planner inlines it) and no name its body leaves to the search path', async () => {
    const { rows } = await db.pool.query<{ config: string[] | null; body: string }>(
      `SELECT proconfig AS config, prosrc AS body FROM pg_proc WHERE oid = 'walflow.uuid_v7()'::regprocedure`,
    );
    expect(rows[0]!.config).toBeNull();
    // Every function call in the body is pg_catalog-qualified.
    const calls = [...rows[0]!.body.matchAll(/([a-z0-9_.]+)\s*\(/g)].map((m) => m[1]!);
    expect(calls.length).toBeGreaterThan(5);
    for (const call of calls) expect(call, call).toMatch(/^pg_catalog\./);
  });
});

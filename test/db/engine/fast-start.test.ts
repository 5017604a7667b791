// The replication writer's run starts (src/engine/fast-start.ts): the same effect as
// walflow.start_batch on a live stream — latest wins per key, a replay is refused for the caller to
// redo through start_batch, an unregistered pipeline starts nothing.
import { describe, expect, it } from 'vitest';
import { startRunsFast, type FastStartItem } from '../../../src/engine/fast-start.js';
import { useTestDatabase } from '../../harness/db.js';

const db = useTestDatabase();
let n = 0;
const item = (key: string | null): FastStartItem => {
  n++;
  return { key, input: { op: 'insert', row: { id: key, n } }, dedupe_id: `0/${n}:0`, source_lsn: `0/${n.toString(16)}`, source_index: 0 };
};

const register = () => db.pool.query(`INSERT INTO walflow.pipelines (name, version, steps) VALUES ('fast', 'v7', '{s}') ON CONFLICT DO NOTHING`);

async function statuses(key: string): Promise<string[]> {
  const { rows } = await db.pool.query(`SELECT status FROM walflow.runs WHERE pipeline = 'fast' AND key = $1 ORDER BY seq`, [key]);
  return rows.map((r) => r.status as string);
}

describe('startRunsFast', () => {
  it('latest wins per key, within a batch and against queued runs; a running one is left to finish first', async () => {
    await register();
    await db.pool.query(`INSERT INTO walflow.runs (pipeline, key, input, status, started_at) VALUES ('fast', 'b', '{}', 'queued', NULL), ('fast', 'c', '{}', 'running', now())`);
    const r = await startRunsFast(db.pool, 'fast', [item('a'), item('a'), item('b'), item('c'), item('d'), item(null)]);
    expect(r.inserted).toBe(6);
    expect([...r.contested].sort()).toEqual(['a', 'b', 'c']);
    expect(await statuses('a')).toEqual(['superseded', 'queued']);
    expect(await statuses('b')).toEqual(['superseded', 'queued']);
    expect(await statuses('c')).toEqual(['running', 'queued']);
    expect(await statuses('d')).toEqual(['queued']);
    const { rows } = await db.pool.query(`SELECT DISTINCT pipeline_version, (input->'row'->>'n') IS NOT NULL AS has_input FROM walflow.runs WHERE pipeline = 'fast' AND source_lsn IS NOT NULL`);
    expect(rows).toEqual([{ pipeline_version: 'v7', has_input: true }]);
  });

  it('refuses a replayed change with a unique violation, writing nothing of its batch; an unregistered pipeline starts nothing', async () => {
    await register();
    const seen = item('e');
    await startRunsFast(db.pool, 'fast', [seen]);
    const before = (await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs`)).rows[0].n;
    await expect(startRunsFast(db.pool, 'fast', [item('f'), seen])).rejects.toMatchObject({ code: '23505' });
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs`)).rows[0].n).toBe(before);
    expect((await startRunsFast(db.pool, 'not-registered', [item('g')])).inserted).toBe(0);
  });
});

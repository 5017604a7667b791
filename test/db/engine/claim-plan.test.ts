// A claim reads the queue in index order, stops after the rows it takes, and is cheap enough in
// the planner's eyes not to be JIT-compiled, also once autovacuum has analyzed a large backlog.
// (Written as `seq = (SELECT min(seq) ...)` the planner expected almost no queued run to pass the
// per-key check: on 30,000 analyzed runs it sorted the whole queue, on 150,000 it read the index
// but costed the claim at ~180,000, above jit_above_cost, and compiled it on every call: 85 ms
// instead of 5 ms for 200 runs, 0.3-0.7 s instead of 25-40 ms for 1,000 from 150,000.)
import { describe, expect, it } from 'vitest';
import { CLAIM_SQL } from '../../../src/engine/sql/claim.js';
import { useTestDatabase } from '../../harness/db.js';

const db = useTestDatabase();

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Total Cost': number;
  Plans?: PlanNode[];
}

function find(node: PlanNode, type: string): PlanNode | undefined {
  if (node['Node Type'] === type) return node;
  for (const child of node.Plans ?? []) {
    const hit = find(child, type);
    if (hit) return hit;
  }
  return undefined;
}

function types(node: PlanNode, out: string[] = []): string[] {
  out.push(node['Relation Name'] ? `${node['Node Type']} on ${node['Relation Name']}` : node['Node Type']);
  for (const child of node.Plans ?? []) types(child, out);
  return out;
}

describe('claim plan', () => {
  it('claims 200 runs from an analyzed 30,000-run backlog in index order, without a sort or JIT-sized cost', async () => {
    await db.pool.query(`INSERT INTO walflow.pipelines (name, version, steps) VALUES ('backlog', 'v1', '{a}')`);
    await db.pool.query(`INSERT INTO walflow.runs (pipeline, key, input) SELECT 'backlog', 'k' || g, '{}' FROM generate_series(1, 30000) g`);
    await db.pool.query('VACUUM ANALYZE walflow.runs');

    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (FORMAT JSON) ${CLAIM_SQL}`, ['backlog', 200, 'plan-test', 60_000]);
      const plan = rows[0]!['QUERY PLAN'][0].Plan;
      // The candidates: locked rows straight from an index scan, in claim order.
      const candidates = find(plan, 'LockRows');
      expect(candidates, JSON.stringify(types(plan))).toBeDefined();
      expect(types(candidates!)).not.toContain('Sort');
      expect(types(candidates!)).not.toContain('Seq Scan on runs');
      const jitAbove = Number((await client.query<{ c: string }>(`SELECT current_setting('jit_above_cost') AS c`)).rows[0]!.c);
      expect(plan['Total Cost']).toBeLessThan(jitAbove > 0 ? jitAbove : 100_000);

      await client.query(CLAIM_SQL, ['backlog', 200, 'plan-test', 60_000]);
      const claimed = await client.query(`SELECT count(*)::int AS n, min(seq)::int AS first, max(seq)::int AS last FROM walflow.runs WHERE lease_owner = 'plan-test'`);
      expect(claimed.rows[0]).toEqual({ n: 200, first: 1, last: 200 }); // the 200 oldest
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});

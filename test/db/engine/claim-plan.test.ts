// A claim reads the queue in index order and stops after the rows it takes, also once autovacuum
// has analyzed a large backlog. (With analyzed statistics the planner used to sort the whole queue
// and probe every queued run's key for each claim: 0.3-0.7 s per claim from a 150,000-run backlog.)
import { describe, expect, it } from 'vitest';
import { CLAIM_SQL } from '../../../src/engine/store.js';
import { useTestDatabase } from '../../harness/db.js';

const db = useTestDatabase();

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  Plans?: PlanNode[];
}

/** Rows read from walflow.runs by each scan node, summed over its loops. */
function runsScans(node: PlanNode, out: { type: string; rows: number }[] = []): { type: string; rows: number }[] {
  if (node['Relation Name'] === 'runs' && node['Node Type'].includes('Scan')) out.push({ type: node['Node Type'], rows: node['Actual Rows'] * node['Actual Loops'] });
  for (const child of node.Plans ?? []) runsScans(child, out);
  return out;
}

describe('claim plan', () => {
  it('claims 200 runs from an analyzed 30,000-run backlog without reading the whole queue', async () => {
    await db.pool.query(`INSERT INTO walflow.pipelines (name, version, steps) VALUES ('backlog', 'v1', '{a}')`);
    await db.pool.query(`INSERT INTO walflow.runs (pipeline, key, input) SELECT 'backlog', 'k' || g, '{}' FROM generate_series(1, 30000) g`);
    await db.pool.query('VACUUM ANALYZE walflow.runs');

    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
        `EXPLAIN (ANALYZE, FORMAT JSON) ${CLAIM_SQL}`,
        ['backlog', 200, 'plan-test', 60_000],
      );
      const scans = runsScans(rows[0]!['QUERY PLAN'][0].Plan);
      const claimed = await client.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE lease_owner = 'plan-test'`);
      expect(claimed.rows[0].n).toBe(200);
      // Every scan of runs stays near the 200 rows claimed (index probes per claimed run), far
      // from the 30,000 queued.
      for (const scan of scans) expect(scan.rows, `${scan.type} read ${scan.rows} rows`).toBeLessThan(2_000);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});

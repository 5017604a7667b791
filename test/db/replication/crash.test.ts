// Real processes: SIGKILL the consumer at random points during a load, and fail over between two.
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/db.js';
import { syncPublication, dropPublication } from '../../../src/replication/setup/publication.js';
import { dropSlot, ensureSlot } from '../../../src/replication/setup/slot.js';
import { count, register, slotName, waitFor } from './support/test-source.js';
import { spawnConsumer, type Consumer } from './support/processes.js';

const db = useTestDatabase();
let consumers: Consumer[] = [];
let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of consumers) await c.kill();
  consumers = [];
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function prepare(table: string, pipelineName: string): Promise<Record<string, string>> {
  await db.pool.query(`CREATE TABLE public.${table} (id int PRIMARY KEY, v int NOT NULL DEFAULT 0)`);
  await register(db.pool, pipelineName);
  const slot = slotName('crash');
  const pub = `${slot}_pub`;
  // Created up front, so every change of the load is captured whichever consumer is alive.
  await syncPublication(db.pool, pub, [{ schema: 'public', name: table }]);
  await ensureSlot(db.pool, slot);
  cleanups.push(async () => {
    await dropSlot(db.pool, slot);
    await dropPublication(db.pool, pub);
  });
  return { WF_URL: db.url, WF_SLOT: slot, WF_PUB: pub, WF_TABLE: table, WF_PIPELINE: pipelineName, WF_MAX_ITEMS: '300' };
}

/** Inserts `rows` rows in transactions of random size (multi-row INSERTs and COPYs), then updates some. */
async function load(table: string, rows: number, updates: number, pauseMs: number): Promise<void> {
  const c = new pg.Client({ connectionString: db.url });
  c.on('error', () => undefined); // surfaces through the failing query
  await c.connect();
  try {
    for (let id = 1, i = 0; id <= rows; i++) {
      const n = Math.min(1 + Math.floor(Math.random() * 250), rows - id + 1);
      if (i % 5 === 4) await c.query(`COPY public.${table} (id) FROM PROGRAM 'seq ${id} ${id + n - 1}'`);
      else await c.query(`INSERT INTO public.${table} (id) SELECT g FROM generate_series($1::int, $2::int) g`, [id, id + n - 1]);
      id += n;
      if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
    }
    for (let k = 0; k < updates; k += 100) {
      await c.query(`UPDATE public.${table} SET v = v + 1 WHERE id > $1 AND id <= $2`, [k, k + 100]);
    }
  } finally {
    await c.end();
  }
}

describe('replication source: crashes and failover (real processes)', () => {
  it('SIGKILL at random points during a 10,000-row load: every committed change has exactly one run, and the slot never passed an uncommitted start', async () => {
    const env = await prepare('load', 'load_p');
    const samples: { lsn: string; runs: number }[] = [];
    let loading = true;
    const sampler = (async () => {
      while (loading) {
        const { rows } = await db.pool.query<{ lsn: string }>(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1`, [env.WF_SLOT]);
        const lsn = rows[0]!.lsn;
        // Counted after reading the slot: every start the slot had been acknowledged past is visible.
        samples.push({ lsn, runs: await count(db.pool, `SELECT count(*) n FROM walflow.runs WHERE source_lsn < $1::pg_lsn`, [lsn]) });
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const loader = load('load', 10_000, 1_000, 70).finally(() => (loading = false));
    const runsAtKill: number[] = [];
    const runs = () => count(db.pool, `SELECT count(*) n FROM walflow.runs WHERE pipeline = 'load_p'`);
    while (loading || runsAtKill.length < 5) {
      const c = spawnConsumer(env);
      consumers.push(c);
      await c.waitForRole('leader');
      if (runsAtKill.length % 2 === 1) {
        // Every other life lasts until it has started something (on a loaded machine a random
        // lifetime alone may end every time before the first write).
        const before = await runs();
        await waitFor('the consumer to start runs', async () => (await runs()) > before || !loading, 15_000).catch(() => undefined);
      }
      // Anywhere in its life: setting up, mid-batch, between commit and acknowledgement.
      await new Promise((r) => setTimeout(r, Math.random() * 700));
      await c.kill('SIGKILL');
      runsAtKill.push(await runs());
    }
    await loader;
    await sampler;
    const last = spawnConsumer(env);
    consumers.push(last);
    await waitFor('11,000 runs', async () => (await count(db.pool, `SELECT count(*) n FROM walflow.runs WHERE pipeline = 'load_p'`)) >= 11_000, 60_000);
    await new Promise((r) => setTimeout(r, 300)); // anything extra (a duplicate) would show up now
    // Killed while there was work in flight: run starts kept growing between kills.
    expect(new Set(runsAtKill.filter((n) => n > 0 && n < 11_000)).size, `runs at each kill: ${runsAtKill.join(', ')}`).toBeGreaterThanOrEqual(2);
    const { rows } = await db.pool.query(`
      SELECT count(*)::int AS runs, count(DISTINCT dedupe_id)::int AS changes,
             count(*) FILTER (WHERE input->>'op' = 'insert')::int AS inserts,
             count(DISTINCT key) FILTER (WHERE input->>'op' = 'insert')::int AS inserted_keys,
             count(*) FILTER (WHERE input->>'op' = 'update')::int AS updates
        FROM walflow.runs WHERE pipeline = 'load_p'`);
    expect(rows[0]).toEqual({ runs: 11_000, changes: 11_000, inserts: 10_000, inserted_keys: 10_000, updates: 1_000 });
    // The slot's confirmed position, whenever sampled, covered only starts that had committed.
    expect(samples.length).toBeGreaterThan(20);
    for (const s of samples) {
      expect(await count(db.pool, `SELECT count(*) n FROM walflow.runs WHERE source_lsn < $1::pg_lsn`, [s.lsn]), `slot at ${s.lsn}`).toBe(s.runs);
    }
  });

  it('two processes: one leads, the other stands by; SIGKILL the leader and the standby takes over within seconds, losing nothing', async () => {
    const env = await prepare('fo', 'fo_p');
    const a = spawnConsumer(env);
    consumers.push(a);
    await a.waitForRole('leader');
    const b = spawnConsumer(env);
    consumers.push(b);
    await b.waitForRole('standby');
    const loader = load('fo', 3_000, 0, 10);
    await new Promise((r) => setTimeout(r, 400));
    const killedAt = Date.now();
    await a.kill('SIGKILL');
    await b.waitForRole('leader', 10_000);
    const takeoverMs = Date.now() - killedAt;
    expect(takeoverMs).toBeLessThan(5_000);
    await loader;
    await waitFor('3,000 runs', async () => (await count(db.pool, `SELECT count(*) n FROM walflow.runs WHERE pipeline = 'fo_p'`)) >= 3_000, 30_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(await count(db.pool, `SELECT count(*) n FROM walflow.runs WHERE pipeline = 'fo_p'`)).toBe(3_000);
    expect(await count(db.pool, `SELECT count(DISTINCT key) n FROM walflow.runs WHERE pipeline = 'fo_p'`)).toBe(3_000);
    await b.kill('SIGTERM');
    expect(await b.exited).toBe(0);
  });
});

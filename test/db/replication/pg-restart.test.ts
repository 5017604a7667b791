// PostgreSQL restarted mid-stream (pg_ctl restart -m immediate, i.e. a crash): the source reconnects
// by itself and resumes from its durable position, losing and duplicating nothing. Uses its own
// throwaway cluster so that the restart does not disturb other test files sharing the server.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedCluster } from '../../../src/db/embedded-cluster.js';
import { migrate } from '../../../src/db/migrate.js';
import { dropSlot } from '../../../src/replication/setup/slot.js';
import { count, pipeline, register, source, waitFor } from './support/test-source.js';

let cluster: EmbeddedCluster | undefined;
let dir = '';
let url = '';
let pool: pg.Pool;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walflow-restart-pg-'));
  fs.chmodSync(dir, 0o755);
  cluster = new EmbeddedCluster({ dataDir: path.join(dir, 'data'), settings: { fsync: 'off', full_page_writes: 'off', max_connections: 50 } });
  url = await cluster.start();
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await migrate(c);
  await c.end();
  pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => undefined); // its connections die in the restart
});

afterAll(async () => {
  await pool?.end();
  await cluster?.destroy();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Inserts rows in small transactions, riding out the restart (rows whose commit failed are simply not there). */
async function load(rows: number, stop: { restarting: boolean }): Promise<void> {
  let c: pg.Client | undefined;
  for (let id = 1; id <= rows; id += 50) {
    try {
      if (!c) {
        c = new pg.Client({ connectionString: url });
        c.on('error', () => undefined);
        await c.connect();
      }
      await c.query(`INSERT INTO public.tick (id) SELECT generate_series($1::int, $1::int + 49)`, [id]);
    } catch {
      await c?.end().catch(() => undefined);
      c = undefined;
      await new Promise((r) => setTimeout(r, stop.restarting ? 200 : 50));
    }
    await new Promise((r) => setTimeout(r, 15));
  }
  await c?.end();
}

describe('replication source: PostgreSQL restart', () => {
  it('resumes by itself after pg_ctl restart -m immediate, with every committed row started exactly once', async () => {
    await pool.query(`CREATE TABLE public.tick (id int PRIMARY KEY)`);
    await register(pool, 'tick_p');
    const slot = 'restart_slot';
    const src = source(url, [pipeline('tick_p', { table: 'tick' })], { slotName: slot });
    await src.start();
    try {
      await waitFor('leader', async () => src.currentStatus.role === 'leader' && src.currentStatus.durableLsn !== null);
      const state = { restarting: false };
      const loader = load(6_000, state);
      await waitFor('some runs', async () => (await count(pool, `SELECT count(*) n FROM walflow.runs`)) > 500);
      state.restarting = true;
      await cluster!.restart('immediate');
      state.restarting = false;
      await loader;
      const committed = await count(pool, `SELECT count(*) n FROM public.tick`);
      expect(committed).toBeGreaterThan(3_000);
      await waitFor('a run for every committed row', async () => (await count(pool, `SELECT count(*) n FROM walflow.runs`)) >= committed, 60_000);
      await new Promise((r) => setTimeout(r, 300));
      expect(await count(pool, `SELECT count(*) n FROM walflow.runs`)).toBe(committed);
      expect(await count(pool, `SELECT count(*) n FROM walflow.runs r JOIN public.tick t ON r.key = t.id::text`)).toBe(committed);
      expect(src.currentStatus.role).toBe('leader');
    } finally {
      await src.stop();
      await dropSlot(pool, slot);
    }
  });
});

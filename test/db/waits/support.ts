// What the wait tests share: an Engine on the test database, stopped after each test, and queries.
import { afterEach } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import type { Pipeline } from '../../../src/pipeline/define.js';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';

export function useWaitEngine() {
  const db = useTestDatabase();
  let engines: Engine[] = [];
  afterEach(async () => {
    for (const e of engines) await e.stop();
    engines = [];
  });
  const q = async (sql: string, params: unknown[] = []) => (await db.pool.query(sql, params)).rows;
  const status = async (id: string) => (await q('SELECT status FROM walflow.runs WHERE id = $1', [id]))[0]?.status as string;
  return {
    db,
    q,
    status,
    async run(pipelines: Pipeline[]): Promise<Engine> {
      const e = new Engine({ url: db.url, pipelines, pollIntervalMs: 200, leaseMs: 2000, ...(process.env.DEBUG_ENGINE ? { log: (await import('pino')).pino({ level: 'debug' }) } : {}) });
      await e.register();
      await e.runWorkers();
      engines.push(e);
      return e;
    },
    async stop(e: Engine): Promise<void> {
      await e.stop();
      engines = engines.filter((x) => x !== e);
    },
    until: (id: string, s: string, ms = 15_000) => waitFor(`run ${id} ${s}`, async () => (await status(id)) === s, ms, 20),
    result: async (id: string) => (await q('SELECT walflow.result($1) AS r', [id]))[0].r,
    timeline: async (id: string) => (await q(`SELECT step, outcome FROM walflow.run_timeline WHERE run_id = $1 ORDER BY step_index, started_at`, [id])),
  };
}

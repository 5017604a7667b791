// A per-second schedule fired by two real `walflow run` processes (no leader): one run per tick,
// consecutive ticks, none doubled, also when one process is SIGKILLed mid-way and started again
// (counted against the clock: every tick between the first and the last seen has exactly one run);
// `walflow schedules` and `walflow status` show it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';
import { ROOT, startWalflowRun, walflowJson, type RunningWalflow } from './support/cli.js';

const db = useTestDatabase();
const DEFINE = pathToFileURL(path.join(ROOT, 'src/pipeline/define.ts')).href;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walflow-sched-'));
fs.writeFileSync(path.join(dir, 'tick.ts'), `
import { definePipeline } from '${DEFINE}';
export default definePipeline({
  name: 'sc-tick',
  schedule: { cron: '* * * * * *', catchUp: 'all', input: { job: 'tick' } },
  steps: [{ name: 'record', run: async (ctx) => {
    const tx = await ctx.tx();
    await tx.query('INSERT INTO sc_done (tick) VALUES ($1)', [ctx.runInput.tick]);
  } }],
});
`);
const env = { DATABASE_URL: db.url, WALFLOW_PIPELINES_DIR: dir, WALFLOW_POLL_INTERVAL_MS: '100', WALFLOW_LEASE_MS: '2000' };
const procs: RunningWalflow[] = [];
afterAll(async () => {
  for (const p of procs) await p.stop('SIGKILL').catch(() => undefined);
  fs.rmSync(dir, { recursive: true, force: true });
});

const ticks = async () => (await db.pool.query<{ tick: Date; n: number }>(
  `SELECT (input->>'tick')::timestamptz AS tick, count(*)::int AS n FROM walflow.runs WHERE pipeline = 'sc-tick' GROUP BY 1 ORDER BY 1`,
)).rows.map((r) => ({ tick: r.tick.getTime(), n: r.n }));
const lastTick = async () => (await ticks()).at(-1)?.tick ?? 0;

describe('schedules across processes', () => {
  it('two processes, one SIGKILLed and restarted: one run per second, consecutive, none doubled, each completed once', async () => {
    await db.pool.query('CREATE TABLE sc_done (tick text NOT NULL)');
    procs.push(await startWalflowRun([], env), await startWalflowRun([], env));
    await waitFor('three ticks', async () => (await ticks()).length >= 3, 30_000);
    // Kill one process mid-way; the other goes on alone, then the killed one comes back.
    await procs[0]!.stop('SIGKILL');
    const killedAt = await lastTick();
    await waitFor('three ticks after the kill', async () => (await lastTick()) >= killedAt + 3000, 30_000);
    procs[0] = await startWalflowRun([], env);
    const back = await lastTick();
    await waitFor('three ticks with both processes again', async () => (await lastTick()) >= back + 3000, 30_000);

    const { json } = await walflowJson<{ schedules: Record<string, unknown>[] }>(['schedules'], env);
    expect(json.schedules).toEqual([expect.objectContaining({ name: 'sc-tick', pipeline: 'sc-tick', cron: '* * * * * *', catch_up: 'all', origin: 'file', state: 'ok', error: null })]);
    const status = await walflowJson<{ schedules: Record<string, number> }>(['status'], env);
    expect(status.json.schedules).toEqual({ ok: 1 });

    for (const p of procs) await p.stop();
    procs.length = 0;
    const seen = await ticks();
    expect(seen.filter((t) => t.n !== 1)).toEqual([]); // none doubled
    const first = seen[0]!.tick;
    const last = seen.at(-1)!.tick;
    expect(last - first).toBeGreaterThanOrEqual(8000);
    expect(seen.map((t) => t.tick)).toEqual(Array.from({ length: (last - first) / 1000 + 1 }, (_, i) => first + i * 1000)); // none lost
    // Each tick's step committed its write exactly once (a run the killed process held is finished by the other).
    await waitFor('every run completed', async () => (await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE pipeline = 'sc-tick' AND status <> 'completed'`)).rows[0].n === 0, 30_000);
    const done = (await db.pool.query<{ tick: string; n: number }>(`SELECT tick, count(*)::int AS n FROM sc_done GROUP BY tick`)).rows;
    expect([done.length, done.filter((d) => d.n !== 1)]).toEqual([seen.length, []]);
  }, 180_000);
});

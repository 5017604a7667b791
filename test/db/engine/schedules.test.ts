// Schedules in a running engine (real PostgreSQL): created and dropped from SQL while it runs,
// a cron text it cannot read shown as an error, and the catch-up policies after a downtime.
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { definePipeline } from '../../../src/pipeline/define.js';
import type { CatchUp } from '../../../src/pipeline/schedule.js';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';

const db = useTestDatabase();
let engine: Engine | undefined;
afterEach(async () => {
  await engine?.stop();
  engine = undefined;
});

const q = async <T = Record<string, unknown>>(sql: string, params: unknown[] = []) => (await db.pool.query(sql, params)).rows as T[];
const sqlError = (sql: string) => db.pool.query(sql).then(() => 'no error', (e: { code: string; message: string }) => `${e.code}: ${e.message}`);
const noop = [{ name: 'a', run: () => null }];
/** Ticks (ms) of a schedule's runs, oldest first, with when each run was created (database clock). */
const ticksOf = async (schedule: string) => (await q<{ tick: Date; created: Date }>(
  `SELECT (input->>'tick')::timestamptz AS tick, created_at AS created FROM walflow.runs WHERE input->>'schedule' = $1 ORDER BY 1`, [schedule],
)).map((r) => ({ tick: r.tick.getTime(), created: r.created.getTime() }));
const dbNow = async () => (await q<{ now: Date }>('SELECT clock_timestamp() AS now'))[0]!.now.getTime();

describe('schedules', () => {
  it('create_schedule and drop_schedule from SQL take effect in a running process; a cron it cannot read is shown as an error', async () => {
    engine = new Engine({ url: db.url, pipelines: [definePipeline({ name: 'sq', steps: noop })], pollIntervalMs: 100 });
    await engine.register();
    await engine.runWorkers();

    // What SQL can check itself, it refuses at once.
    expect(await sqlError(`SELECT walflow.create_schedule('s1', 'sq', '* * * *')`)).toBe('WF002: walflow: cron "* * * *" has 4 fields; use 5 (minute hour day month weekday) or 6 (seconds first)');
    expect(await sqlError(`SELECT walflow.create_schedule('s1', 'sq', '* * * * *', 'Mars/Base')`)).toBe('WF002: walflow: unknown time zone "Mars/Base"');
    expect(await sqlError(`SELECT walflow.create_schedule('s1', 'sq', '* * * * *', catch_up => 'sometimes')`)).toBe("WF002: walflow: catch_up must be latest, all or none (got 'sometimes')");
    expect(await sqlError(`SELECT walflow.create_schedule('s1', 'nope', '* * * * *')`)).toBe('WF001: walflow: unknown pipeline "nope"');

    // A per-second schedule with an input: its runs start and carry the input, the tick and the name.
    await q(`SELECT walflow.create_schedule('sq-every', 'sq', '* * * * * *', input => '{"job": "reembed"}')`);
    await waitFor('a run of the new schedule', async () => (await ticksOf('sq-every')).length >= 2, 10_000);
    const [first] = await q<{ input: Record<string, unknown>; status: string; dedupe_id: string }>(`SELECT input, dedupe_id FROM walflow.runs WHERE input->>'schedule' = 'sq-every' ORDER BY input->>'tick' LIMIT 1`);
    expect(first!.input).toEqual({ job: 'reembed', tick: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/), schedule: 'sq-every' });
    expect(first!.dedupe_id).toBe(`schedule:sq-every:${String(first!.input.tick)}`);

    // Dropped: no run of it starts after drop_schedule committed (a firing holds the row it deletes).
    expect((await q(`SELECT walflow.drop_schedule('sq-every') AS d`))[0]!.d).toBe(true);
    const dropped = await dbNow();
    expect((await q(`SELECT walflow.drop_schedule('sq-every') AS d`))[0]!.d).toBe(false);

    // A cron croner cannot read (5 fields, so SQL let it through): recorded, shown, not fired.
    await q(`SELECT walflow.create_schedule('sq-bad', 'sq', '0 3 * * 99')`);
    const bad = await waitFor('the error in schedule_status', async () => (await q<{ state: string; error: string | null }>(`SELECT state, error FROM walflow.schedule_status WHERE name = 'sq-bad'`)).find((r) => r.state === 'error'), 10_000);
    expect(bad.error).toMatch(/weekday|day of week|99/i);

    // The process still fires other schedules (so the dropped one would have fired by now).
    await q(`SELECT walflow.create_schedule('sq-marker', 'sq', NULL, every => '1 second')`);
    await waitFor('two runs of a later schedule', async () => (await ticksOf('sq-marker')).filter((t) => t.tick > dropped + 1000).length >= 1, 10_000);
    expect((await ticksOf('sq-every')).filter((t) => t.created > dropped)).toEqual([]);
    expect((await ticksOf('sq-every')).length).toBeGreaterThanOrEqual(2);
  });

  it('file schedules follow the loaded pipelines: an unchanged timing keeps its next tick, a changed one restarts, a removed one goes', async () => {
    const hourly = (every: string | undefined) => definePipeline({ name: 'fs', ...(every ? { schedule: { every } } : {}), steps: noop });
    engine = new Engine({ url: db.url, pipelines: [hourly('1h')], pollIntervalMs: 100 });
    await engine.register();
    await engine.runWorkers();
    const row = async () => (await q<{ next_tick: Date | null; every: unknown; origin: string }>(`SELECT next_tick, every, origin FROM walflow.schedule_status WHERE name = 'fs'`))[0];
    const first = await waitFor('its first tick computed', async () => (await row())?.next_tick, 10_000);
    expect(first.getTime() % 3_600_000).toBe(0);
    await engine.setPipelines([hourly('1h')]); // a reload of the same definition (a new object)
    expect((await row())!.next_tick).toEqual(first);
    await engine.setPipelines([hourly('2h')]);
    // (The next 2-hour tick may be the same instant as the next 1-hour one: wait for the timing's own change.)
    const second = await waitFor('the changed timing computed', async () => {
      const r = await row();
      return r?.next_tick && JSON.stringify(r.every) !== JSON.stringify({ hours: 1 }) ? r.next_tick : undefined;
    }, 10_000);
    expect((second as Date).getTime() % 7_200_000).toBe(0);
    await engine.setPipelines([hourly(undefined)]);
    expect(await row()).toBeUndefined();
    // Removed from the process altogether (a live reload dropped the file): its schedules go too.
    await engine.setPipelines([hourly('1h')]);
    expect((await row())!.origin).toBe('file');
    await engine.setPipelines([]);
    expect(await row()).toBeUndefined();
  });

  it('after a downtime of several ticks: latest starts one run for the latest missed tick, all starts every one, none starts none', async () => {
    const policies: CatchUp[] = ['latest', 'all', 'none'];
    const pipelines = () => policies.map((p) => definePipeline({ name: `cu-${p}`, schedule: { every: '1s', catchUp: p }, steps: noop }));
    engine = new Engine({ url: db.url, pipelines: pipelines(), pollIntervalMs: 100 });
    await engine.register();
    await engine.runWorkers();
    await waitFor('each schedule fired twice', async () => {
      for (const p of policies) if ((await ticksOf(`cu-${p}`)).length < 2) return false;
      return true;
    }, 15_000);
    await engine.stop();
    engine = undefined;
    const lastBefore = Object.fromEntries(await Promise.all(policies.map(async (p) => [p, (await ticksOf(`cu-${p}`)).at(-1)!.tick] as const)));
    const stoppedAt = Math.max(...Object.values(lastBefore));
    await waitFor('five ticks of downtime', async () => (await dbNow()) > stoppedAt + 5_500, 15_000, 100);

    const restartAt = await dbNow();
    engine = new Engine({ url: db.url, pipelines: pipelines(), pollIntervalMs: 100 });
    await engine.register();
    await engine.runWorkers();
    await waitFor('two ticks after the restart', async () => {
      for (const p of policies) if (!(await ticksOf(`cu-${p}`)).some((t) => t.tick >= restartAt + 2000)) return false;
      return true;
    }, 15_000);

    const missed = async (p: CatchUp) => (await ticksOf(`cu-${p}`)).filter((t) => t.tick > lastBefore[p]! && t.tick <= restartAt - 1000);
    // all: every tick of the downtime, each once.
    const all = (await ticksOf('cu-all')).map((t) => t.tick);
    expect(new Set(all).size).toBe(all.length);
    expect(all.slice(1).every((t, i) => t - all[i]! === 1000)).toBe(true);
    expect((await missed('all')).length).toBeGreaterThanOrEqual(4);
    // latest: none of the older missed ticks; its first run after the downtime is for the tick due at the restart.
    expect(await missed('latest')).toEqual([]);
    const caughtUp = (await ticksOf('cu-latest')).find((t) => t.tick > lastBefore.latest!)!;
    expect(caughtUp.tick).toBeLessThanOrEqual(caughtUp.created);
    expect(caughtUp.created - caughtUp.tick).toBeLessThan(1000);
    expect(caughtUp.created).toBeGreaterThanOrEqual(restartAt);
    // none: no run for a missed tick.
    expect(await missed('none')).toEqual([]);
    const none = (await ticksOf('cu-none')).filter((t) => t.tick > lastBefore.none!);
    expect(none[0]!.tick).toBeGreaterThan(restartAt - 1000);
    // …not even the latest one once it is late by half a period: each of its runs started on time.
    expect(none.filter((t) => t.created - t.tick >= 500)).toEqual([]);
  });
});

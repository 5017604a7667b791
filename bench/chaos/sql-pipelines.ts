// 8. Pipelines defined from SQL, created, altered and dropped while rows are written to their
// source tables and `walflow run` processes (three, all leading in turn and all working) are
// SIGKILLed. Each pipeline is three SQL steps on its own table, each in its step's checkpoint
// transaction: `forget` deletes the key's mirror row, `effect` records an effect row (pipeline,
// run, version), `remember` writes the run's row back into the mirror (not for a delete).
//
// Checked at the end, per pipeline still defined ("live"):
//   - latest wins, backfill and stream consistent: its mirror equals its source table;
//   - every change committed after its initial backfill was recorded (walflow.backfills.started_at,
//     i.e. after its table was published) has a WAL-started run of its own (lost otherwise), and no
//     key has more WAL-started runs than it had changes (duplicated otherwise);
//   - exactly one effect per completed run, none for a run that did not complete;
//   - every run completed (none stuck, none failed);
//   - an altered pipeline's runs record the new version's effects once it is picked up.
// Per dropped pipeline: no effect row was written after its drop committed (a step whose statement
// ran before the commit may still commit after it: in flight, allowed, and counted as effects with
// `at` before the drop's commit). Runs it still had stay, in whatever state (a run in flight when its
// step functions went fails with "function … does not exist": visible, not lost).
// And the slot: its confirmed_flush_lsn reaches past a last write made after everything else.
import path from 'node:path';
import { killAll, leaderPid, num, q, ROOT, sleep, spawnWalflow, startCluster, waitReady, type Runner } from './lib.js';
import type { ScenarioOptions, ScenarioResult } from './scenarios.js';

const DIR = path.join(ROOT, 'test/fixtures/chaos/sql-pipelines');
const NAME = 'sql-pipelines-created-and-dropped-under-kills';
const PIPELINES = 6;
/** Pipelines altered (a new version of their `effect` step) and dropped, by number. */
const ALTERED = new Set([1, 2]);
const DROPPED = new Set([3, 5]);
const PREFILL = 200;

const pipelineName = (i: number) => `chaos-sql-${i}`;
const table = (i: number) => `chaos_sql_src_${i}`;

function steps(i: number, version: string): string {
  const p = pipelineName(i);
  const step = (name: string, sql: string) => `walflow.sql_step('${name}', '${sql.replaceAll("'", "''")}')`;
  // Three statements, not one WITH … INSERT: a SQL step that returns rows is wrapped in a query,
  // where PostgreSQL refuses a data-modifying WITH (README, "From SQL").
  return `ARRAY[
    ${step('forget', `DELETE FROM chaos_sql_mirror WHERE pipeline = '${p}' AND id = :input.key.id::int`)},
    ${step('effect', `INSERT INTO chaos_sql_effects (pipeline, run_id, id, op, version) VALUES ('${p}', :run.id::uuid, :input.key.id::int, :input.op, '${version}')`)},
    ${step('remember', `INSERT INTO chaos_sql_mirror (pipeline, id, v) SELECT '${p}', :input.key.id::int, :input.row.v::int WHERE :input.op <> 'delete'`)}]`;
}

const SCHEMA = `
CREATE TABLE chaos_sql_base (id int PRIMARY KEY);
CREATE TABLE chaos_sql_audit (tbl text NOT NULL, id int NOT NULL, op text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE FUNCTION chaos_sql_audit_fn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO chaos_sql_audit (tbl, id, op) VALUES (TG_TABLE_NAME, CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END, lower(TG_OP));
  RETURN NULL;
END $$;
-- No unique constraint on purpose: an effect applied twice shows up as two rows.
CREATE TABLE chaos_sql_effects (pipeline text NOT NULL, run_id uuid NOT NULL, id int NOT NULL, op text, version text, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE chaos_sql_mirror (pipeline text NOT NULL, id int NOT NULL, v int, PRIMARY KEY (pipeline, id));
`;

export async function sqlPipelinesScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const t0 = Date.now();
  const c = await startCluster('sqlpipe');
  try {
    const problems: string[] = [];
    await c.pool.query(SCHEMA);
    for (let i = 1; i <= PIPELINES; i++) {
      await c.pool.query(`CREATE TABLE ${table(i)} (id int PRIMARY KEY, v int NOT NULL DEFAULT 0);
        CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON ${table(i)} FOR EACH ROW EXECUTE FUNCTION chaos_sql_audit_fn();
        INSERT INTO ${table(i)} SELECT g, 0 FROM generate_series(1, ${PREFILL}) g`);
    }
    const spawn = () => spawnWalflow(c, { pipelinesDir: DIR });
    let runners: Runner[] = [spawn(), spawn(), spawn()];
    await Promise.all(runners.map((r) => waitReady(r)));

    const durationMs = (o.sqlPipelineSeconds ?? 60) * 1000;
    const until = Date.now() + durationMs;
    let running = true;
    // Writes: small transactions on every table (defined, not yet defined, dropped), all the time.
    let writes = 0;
    const nextId = new Map<number, number>();
    const writer = (async () => {
      while (running) {
        const i = 1 + Math.floor(Math.random() * PIPELINES);
        const id = nextId.get(i) ?? PREFILL + 1;
        nextId.set(i, id + 3);
        await c.pool.query(`
          WITH ins AS (INSERT INTO ${table(i)} SELECT g, 0 FROM generate_series($1::int, $1::int + 2) g),
               upd AS (UPDATE ${table(i)} SET v = v + 1 WHERE id IN (SELECT 1 + (random() * ($1::int - 1))::int FROM generate_series(1, 3))),
               del AS (DELETE FROM ${table(i)} WHERE id = CASE WHEN random() < 0.3 THEN 1 + (random() * ($1::int - 1))::int END)
          SELECT 1`, [id]).then(() => writes++, () => undefined);
        await sleep(20);
      }
    })();
    // Kills: any of the three, the leader every other time.
    let kills = 0;
    let leaderKills = 0;
    const killer = (async () => {
      while (running) {
        await sleep(1_500 + Math.random() * 2_500);
        if (!running) break;
        const leader = kills % 2 === 0 ? await leaderPid(c.pool).catch(() => undefined) : undefined;
        const victim = runners.find((r) => r.pid === leader) ?? runners[Math.floor(Math.random() * runners.length)]!;
        if (victim.pid === leader) leaderKills++;
        await victim.kill('SIGKILL');
        kills++;
        runners = runners.filter((r) => r !== victim);
        const fresh = spawn();
        runners.push(fresh);
        await waitReady(fresh);
      }
    })();
    // The timeline: create one pipeline every slot; alter and drop some of them later on.
    const now = async () => (await q<{ t: Date }>(c.pool, `SELECT clock_timestamp() AS t`))[0]!.t;
    const dropped = new Map<number, Date>();
    const altered = new Map<number, Date>();
    const slot = durationMs / (PIPELINES + 3);
    for (let k = 0; Date.now() < until; k++) {
      if (k >= 1 && k <= PIPELINES) {
        await c.pool.query(`SELECT walflow.create_pipeline($1, ${steps(k, 'v1')}, source => $2)`,
          [pipelineName(k), JSON.stringify({ table: table(k), events: ['insert', 'update', 'delete'] })]);
      }
      for (const i of ALTERED) if (k === i + 2) {
        await c.pool.query(`SELECT walflow.alter_pipeline($1, ${steps(i, 'v2')})`, [pipelineName(i)]);
        altered.set(i, await now());
      }
      for (const i of DROPPED) if (k === i + 2) {
        await c.pool.query(`SELECT walflow.drop_pipeline($1)`, [pipelineName(i)]);
        dropped.set(i, await now());
      }
      o.log(`  sql pipelines: step ${k}, ${kills} SIGKILLs (${leaderKills} of the leader), ${writes} write transactions`);
      await sleep(Math.max(0, Math.min(slot, until - Date.now())));
    }
    running = false;
    await writer;
    await killer;
    for (const i of ALTERED) if (!altered.has(i)) problems.push(`${pipelineName(i)} was never altered (the run was too short)`);
    for (const i of DROPPED) if (!dropped.has(i)) problems.push(`${pipelineName(i)} was never dropped (the run was too short)`);

    // Settle: every live pipeline's runs finish and its mirror equals its source.
    const live = [...Array(PIPELINES).keys()].map((k) => k + 1).filter((i) => !dropped.has(i));
    const stale = (i: number) => num(c.pool, `SELECT count(*) AS n FROM (
        (SELECT id, v FROM ${table(i)} EXCEPT SELECT id, v FROM chaos_sql_mirror WHERE pipeline = $1)
        UNION ALL (SELECT id, v FROM chaos_sql_mirror WHERE pipeline = $1 EXCEPT SELECT id, v FROM ${table(i)})) x`, [pipelineName(i)]);
    const open = (i: number) => num(c.pool, `SELECT count(*) AS n FROM walflow.runs WHERE pipeline = $1 AND status IN ('queued', 'running', 'waiting')`, [pipelineName(i)]);
    const deadline = Date.now() + 120_000;
    for (const i of live) while (Date.now() < deadline && ((await open(i)) > 0 || (await stale(i)) > 0)) await sleep(250);
    // The slot: a last write, after everything else, acknowledged.
    await c.pool.query(`INSERT INTO chaos_sql_base VALUES (1)`);
    const lastLsn = (await q<{ l: string }>(c.pool, `SELECT pg_current_wal_lsn()::text AS l`))[0]!.l;
    let slotOk = false;
    for (const end = Date.now() + 30_000; !slotOk && Date.now() < end; await sleep(100)) {
      slotOk = (await num(c.pool, `SELECT count(*) AS n FROM pg_replication_slots WHERE slot_name = 'walflow' AND confirmed_flush_lsn >= $1::pg_lsn`, [lastLsn])) === 1;
    }

    let lost = 0;
    let duplicated = 0;
    let stuck = 0;
    let failed = 0;
    let completed = 0;
    const m: Record<string, number> = {};
    const add = (k: string, n: number) => (m[k] = (m[k] ?? 0) + n);
    for (const i of live) {
      const p = pipelineName(i);
      const staleRows = await stale(i);
      const [s] = await q<{ lost: string; dup: string }>(c.pool, `
        WITH b AS (SELECT min(started_at) AS t FROM walflow.backfills WHERE pipeline = $1),
             a AS (SELECT id::text AS key, count(*) AS n, count(*) FILTER (WHERE at > (SELECT t FROM b)) AS after FROM chaos_sql_audit WHERE tbl = $2 GROUP BY 1),
             r AS (SELECT key, count(*) AS n FROM walflow.runs WHERE pipeline = $1 AND input->>'op' <> 'backfill' GROUP BY 1)
        SELECT coalesce(sum(greatest(coalesce(a.after, 0) - coalesce(r.n, 0), 0)), 0) AS lost,
               coalesce(sum(greatest(coalesce(r.n, 0) - coalesce(a.n, 0), 0)), 0) AS dup
          FROM a FULL JOIN r USING (key)`, [p, table(i)]);
      const dupEffects = await num(c.pool, `SELECT coalesce(sum(n - 1), 0) AS n FROM (SELECT count(*) AS n FROM chaos_sql_effects WHERE pipeline = $1 GROUP BY run_id HAVING count(*) > 1) d`, [p]);
      const phantom = await num(c.pool, `SELECT count(*) AS n FROM chaos_sql_effects e JOIN walflow.runs r ON r.id = e.run_id WHERE e.pipeline = $1 AND r.status <> 'completed'`, [p]);
      const missing = await num(c.pool, `SELECT count(*) AS n FROM walflow.runs r WHERE r.pipeline = $1 AND r.status = 'completed' AND NOT EXISTS (SELECT 1 FROM chaos_sql_effects e WHERE e.run_id = r.id)`, [p]);
      const st = Object.fromEntries((await q<{ status: string; n: string }>(c.pool, `SELECT status, count(*) AS n FROM walflow.runs WHERE pipeline = $1 GROUP BY 1`, [p])).map((r) => [r.status, Number(r.n)]));
      add('staleRows', staleRows); add('lostStarts', Number(s!.lost)); add('dupStarts', Number(s!.dup));
      add('dupEffects', dupEffects); add('phantomEffects', phantom); add('missingEffects', missing); add('superseded', st.superseded ?? 0);
      lost += staleRows + Number(s!.lost) + missing;
      duplicated += Number(s!.dup) + dupEffects + phantom;
      stuck += (st.queued ?? 0) + (st.running ?? 0) + (st.waiting ?? 0);
      failed += st.failed ?? 0;
      completed += st.completed ?? 0;
      if (ALTERED.has(i)) {
        const v2 = await num(c.pool, `SELECT count(*) AS n FROM chaos_sql_effects WHERE pipeline = $1 AND version = 'v2'`, [p]);
        add('v2Effects', v2);
        if (v2 === 0) problems.push(`${p}: altered, but no run applied its v2 step`);
      }
    }
    for (const [i, at] of dropped) {
      const p = pipelineName(i);
      const after = await num(c.pool, `SELECT count(*) AS n FROM chaos_sql_effects WHERE pipeline = $1 AND at > $2`, [p, at]);
      add('effectsAfterDrop', after);
      add('runsStartedAfterDrop', await num(c.pool, `SELECT count(*) AS n FROM walflow.runs WHERE pipeline = $1 AND created_at > $2`, [p, at]));
      add('droppedRunsFailed', await num(c.pool, `SELECT count(*) AS n FROM walflow.runs WHERE pipeline = $1 AND status = 'failed'`, [p]));
      add('droppedRunsUnfinished', await num(c.pool, `SELECT count(*) AS n FROM walflow.runs WHERE pipeline = $1 AND status IN ('queued', 'running', 'waiting')`, [p]));
      if (after) problems.push(`${p}: ${after} effect(s) written after its drop committed`);
    }
    if (lost) problems.push(`lost ${lost} (${JSON.stringify(m)})`);
    if (duplicated) problems.push(`duplicated ${duplicated} (${JSON.stringify(m)})`);
    if (stuck) problems.push(`${stuck} run(s) of live pipelines stuck in queued/running/waiting`);
    if (failed) problems.push(`${failed} run(s) of live pipelines failed`);
    if (!slotOk) problems.push(`the slot did not confirm the last write (${lastLsn})`);
    await Promise.all(runners.filter((r) => r.alive()).map(async (r) => {
      await r.kill('SIGTERM');
      const { code } = await r.exited;
      if (code !== 0) problems.push(`walflow run (pid ${r.pid}) exited with ${code} on SIGTERM`);
    }));
    const rows = await num(c.pool, `SELECT count(*) AS n FROM chaos_sql_audit`);
    return {
      scenario: NAME, faults: kills, faultDetail: `${kills} SIGKILLs of 3 processes, ${leaderKills} of the leader; ${PIPELINES} created, ${ALTERED.size} altered, ${DROPPED.size} dropped`,
      rows: await num(c.pool, `SELECT sum(n) AS n FROM (${[...Array(PIPELINES).keys()].map((k) => `SELECT count(*) AS n FROM ${table(k + 1)}`).join(' UNION ALL ')}) x`),
      completed, failedExpected: 0, failedUnexpected: failed, lost, duplicated, stuck, slotCaughtUp: slotOk,
      seconds: Math.round((Date.now() - t0) / 100) / 10, problems,
      metrics: { changes: rows, writeTransactions: writes, kills, leaderKills, ...m },
    };
  } finally {
    await killAll();
    await c.destroy();
  }
}

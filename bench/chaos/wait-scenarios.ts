// The durable waits under faults: sleepers across SIGKILLs and immediate PostgreSQL restarts,
// signals sent in a steady stream while processes are killed, and parents joining 100 children each
// under kills. Fixtures: test/fixtures/chaos/pipelines/waits.ts (every effect through ctx.tx, so one
// row per effect is one committed execution). Each scenario counts what was lost and duplicated.
import { CHILDREN_PER_PARENT, SIGNALS_PER_RUN } from '../../test/fixtures/chaos/pipelines/waits.js';
import { killAll, num, q, sleep, spawnWalflow, startCluster, unfinished, waitReady, type ChaosCluster, type Runner } from './lib.js';
import type { ScenarioOptions, ScenarioResult } from './scenarios.js';

async function withCluster<T>(label: string, fn: (c: ChaosCluster) => Promise<T>): Promise<T> {
  const c = await startCluster(label);
  try {
    return await fn(c);
  } finally {
    await killAll();
    await c.destroy();
  }
}

/** Processes of `only`, all ready. */
async function spawnReady(c: ChaosCluster, only: string, n: number): Promise<Runner[]> {
  const runners = Array.from({ length: n }, () => spawnWalflow(c, { only }));
  await Promise.all(runners.map((r) => waitReady(r)));
  return runners;
}

/**
 * SIGKILLs a random process every 1-3 s (and starts a fresh one in its place) until `done()` or
 * `untilMs` passes and at least `minKills` were made; `between` runs after each kill (other faults).
 */
async function killLoop(c: ChaosCluster, only: string, runners: Runner[], o: { untilMs: number; minKills: number; done: () => Promise<boolean>; between?: (kills: number) => Promise<void> }): Promise<{ runners: Runner[]; kills: number }> {
  let kills = 0;
  while (kills < o.minKills || (Date.now() < o.untilMs && !(await o.done()))) {
    await sleep(1_000 + Math.random() * 2_000);
    const victim = runners[Math.floor(Math.random() * runners.length)]!;
    await victim.kill('SIGKILL');
    kills++;
    runners = runners.filter((r) => r !== victim);
    const fresh = spawnWalflow(c, { only });
    runners.push(fresh);
    await o.between?.(kills);
    await waitReady(fresh);
  }
  return { runners, kills };
}

/** Waits until no run of the pipelines is queued, running or waiting; returns how many still are. */
async function drain(c: ChaosCluster, pipelines: string[], timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  const left = async () => (await Promise.all(pipelines.map((p) => unfinished(c.pool, p)))).reduce((a, b) => a + b, 0);
  let n = await left();
  while (n > 0 && Date.now() < deadline) {
    await sleep(250);
    n = await left();
  }
  return n;
}

async function stopAll(runners: Runner[], problems: string[]): Promise<void> {
  await Promise.all(runners.filter((r) => r.alive()).map(async (r) => {
    await r.kill('SIGTERM');
    const { code } = await r.exited;
    if (code !== 0) problems.push(`walflow run (pid ${r.pid}) exited with ${code} on SIGTERM`);
  }));
}

function failedRuns(c: ChaosCluster, pipelines: string[]): Promise<number> {
  return num(c.pool, `SELECT count(*) AS n FROM walflow.runs WHERE pipeline = ANY($1) AND status IN ('failed', 'cancelled')`, [pipelines]);
}

function verdict(r: Omit<ScenarioResult, 'seconds' | 'slotCaughtUp' | 'failedExpected' | 'rows'> & { rows?: number }, t0: number): ScenarioResult {
  const out: ScenarioResult = { rows: 0, failedExpected: 0, slotCaughtUp: null, seconds: Math.round((Date.now() - t0) / 100) / 10, ...r };
  if (r.lost) out.problems.push(`lost ${r.lost} (${JSON.stringify(r.metrics)})`);
  if (r.duplicated) out.problems.push(`duplicated ${r.duplicated} (${JSON.stringify(r.metrics)})`);
  if (r.stuck) out.problems.push(`${r.stuck} run(s) still queued/running/waiting at the end`);
  if (r.failedUnexpected) out.problems.push(`${r.failedUnexpected} run(s) failed or were cancelled`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sleepers (sleeps of 2-20 s) across SIGKILLs and immediate PostgreSQL restarts: each wakes once, never early.

const SLEEPERS = 'chaos-sleepers';

export async function sleepersScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const t0 = Date.now();
  const n = o.sleepers ?? 2_000;
  return withCluster('sleepers', async (c) => {
    await c.pool.query('CREATE TABLE chaos_wakes (run_id uuid NOT NULL, woke_at timestamptz NOT NULL)');
    const problems: string[] = [];
    let runners = await spawnReady(c, SLEEPERS, 2);
    for (let i = 0; i < n; i += 500) {
      const items = Array.from({ length: Math.min(500, n - i) }, (_, k) => ({ input: { wakeAt: new Date(Date.now() + 2_000 + Math.random() * 18_000).toISOString() }, key: `s${i + k}` }));
      await c.pool.query(`SELECT count(*) FROM walflow.start_batch($1, $2::jsonb)`, [SLEEPERS, JSON.stringify(items)]);
    }
    o.log(`  sleepers: ${n} started`);
    // Two immediate restarts while sleepers are parked and waking (at the 4th and 9th kill).
    let restarts = 0;
    const restartAt = new Set([4, 9]);
    const k = await killLoop(c, SLEEPERS, runners, {
      untilMs: Date.now() + 25_000, minKills: 10, done: async () => (await unfinished(c.pool, SLEEPERS)) === 0,
      between: async (kills) => {
        if (!restartAt.has(kills)) return;
        const t = Date.now();
        await c.cluster.restart('immediate');
        restarts++;
        o.log(`  sleepers: pg restart ${restarts} (kill ${kills}), back after ${Date.now() - t} ms`);
      },
    });
    runners = k.runners;
    o.log(`  sleepers: ${k.kills} SIGKILLs, ${restarts} restarts; draining`);
    const stuck = await drain(c, [SLEEPERS], 120_000);
    // Processes alive through the restarts must still be alive (they reconnect, they do not die).
    for (const r of runners) if (!r.alive()) problems.push(`walflow run (pid ${r.pid}) died: ${r.output().slice(-400)}`);
    await stopAll(runners, problems);
    const [s] = await q<Record<string, string | number>>(c.pool, `
      WITH r AS (SELECT id, status, (input->>'wakeAt')::timestamptz AS wake FROM walflow.runs WHERE pipeline = $1),
           w AS (SELECT run_id, count(*) AS n, min(woke_at) AS woke FROM chaos_wakes GROUP BY run_id),
           nap AS (SELECT s.run_id, s.finished_at FROM walflow.steps s JOIN r ON r.id = s.run_id WHERE s.step = 'nap')
      SELECT count(*) AS runs,
             count(*) FILTER (WHERE r.status = 'completed') AS completed,
             count(*) FILTER (WHERE w.n IS NULL) AS no_wake,
             coalesce(sum(w.n - 1) FILTER (WHERE w.n > 1), 0) AS extra_wakes,
             count(*) FILTER (WHERE w.woke < r.wake OR nap.finished_at < r.wake) AS early,
             count(*) FILTER (WHERE nap.run_id IS NULL) AS no_nap_checkpoint,
             percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM nap.finished_at - r.wake) * 1000) AS late_p50,
             percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM nap.finished_at - r.wake) * 1000) AS late_p99,
             max(extract(epoch FROM nap.finished_at - r.wake) * 1000)::float8 AS late_max
        FROM r LEFT JOIN w ON w.run_id = r.id LEFT JOIN nap ON nap.run_id = r.id`, [SLEEPERS]);
    const early = Number(s!.early);
    if (early) problems.push(`${early} sleeper(s) woke before their time`);
    return verdict({
      scenario: 'sleepers-across-kills-and-pg-restart', faults: k.kills + restarts, faultDetail: `${k.kills} SIGKILLs of 2 procs, ${restarts} immediate PG restarts`,
      rows: n, completed: Number(s!.completed), failedUnexpected: await failedRuns(c, [SLEEPERS]),
      lost: Math.max(0, n - Number(s!.runs)) + Number(s!.no_wake), duplicated: Number(s!.extra_wakes), stuck, problems,
      metrics: {
        sleepers: n, noWake: Number(s!.no_wake), extraWakes: Number(s!.extra_wakes), early, noNapCheckpoint: Number(s!.no_nap_checkpoint),
        lateP50Ms: Math.round(Number(s!.late_p50)), lateP99Ms: Math.round(Number(s!.late_p99)), lateMaxMs: Math.round(Number(s!.late_max)),
      },
    }, t0);
  });
}

// ---------------------------------------------------------------------------------------------
// Signals in a steady stream while processes are killed: each consumed exactly once, in order, none lost.

const SIGNALS = 'chaos-signals';

export async function signalsScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const t0 = Date.now();
  const n = o.signalRuns ?? 300;
  const total = n * SIGNALS_PER_RUN;
  return withCluster('signals', async (c) => {
    await c.pool.query('CREATE TABLE chaos_signal_effects (run_id uuid NOT NULL, wait int NOT NULL, n int NOT NULL)');
    const problems: string[] = [];
    let runners = await spawnReady(c, SIGNALS, 2);
    const items = Array.from({ length: n }, (_, i) => ({ input: {}, key: `r${i}` }));
    const ids = (await q<{ id: string }>(c.pool, `SELECT run_id AS id FROM walflow.start_batch($1, $2::jsonb)`, [SIGNALS, JSON.stringify(items)])).map((r) => r.id);
    // The stream: round j sends signal j to every run, spread evenly over ~40 s. Some arrive while
    // the run waits (they wake it), some before it reaches the wait (the mailbox keeps them).
    const durationMs = 40_000 * (o.timeScale ?? 1);
    let sent = 0;
    let sendErrors = 0;
    let sending = true;
    const sender = (async () => {
      const ts = Date.now();
      for (let j = 1; j <= SIGNALS_PER_RUN; j++) {
        for (const id of ids) {
          // Not retried: no server restart here, so a failed call is a finding, not noise.
          await c.pool.query(`SELECT walflow.signal($1, 'go', $2::jsonb)`, [id, JSON.stringify({ n: j })]).then(() => sent++, (err: Error) => {
            sendErrors++;
            if (sendErrors <= 3) problems.push(`walflow.signal failed: ${err.message}`);
          });
          const due = ts + ((sent + sendErrors) / total) * durationMs;
          if (due > Date.now()) await sleep(due - Date.now());
        }
      }
    })().finally(() => (sending = false));
    const k = await killLoop(c, SIGNALS, runners, { untilMs: Date.now() + durationMs, minKills: 5, done: async () => !sending });
    runners = k.runners;
    await sender;
    o.log(`  signals: ${sent} sent, ${k.kills} SIGKILLs; draining`);
    const stuck = await drain(c, [SIGNALS], 120_000);
    await stopAll(runners, problems);
    const [s] = await q<Record<string, string>>(c.pool, `
      SELECT (SELECT count(*) FROM walflow.signals) AS signals,
             (SELECT count(*) FROM walflow.signals WHERE consumed_at IS NULL) AS unconsumed,
             (SELECT count(*) FROM chaos_signal_effects) AS effects,
             (SELECT count(*) FROM (SELECT DISTINCT run_id, wait FROM chaos_signal_effects) d) AS distinct_effects,
             (SELECT count(*) FROM chaos_signal_effects WHERE wait <> n) AS out_of_order,
             (SELECT count(*) FROM walflow.runs WHERE pipeline = $1 AND status = 'completed') AS completed`, [SIGNALS]);
    const outOfOrder = Number(s!.out_of_order);
    if (outOfOrder) problems.push(`${outOfOrder} wait(s) consumed a signal other than the oldest`);
    const lost = Math.max(0, total - Number(s!.distinct_effects)) + Number(s!.unconsumed);
    return verdict({
      scenario: 'signals-under-kills', faults: k.kills, faultDetail: `${k.kills} SIGKILLs of 2 procs while ${sent} signals were sent`,
      rows: total, completed: Number(s!.completed), failedUnexpected: await failedRuns(c, [SIGNALS]),
      lost, duplicated: Number(s!.effects) - Number(s!.distinct_effects), stuck, problems,
      metrics: { runs: n, signalsPerRun: SIGNALS_PER_RUN, sent, sendErrors, signalsStored: Number(s!.signals), unconsumed: Number(s!.unconsumed), consumptions: Number(s!.effects), outOfOrder },
    }, t0);
  });
}

// ---------------------------------------------------------------------------------------------
// Parents with 100 children each (join all) under kills: every join complete and in order, no child started twice.

const PARENT = 'chaos-parent';
const CHILD = 'chaos-child';

export async function childrenScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const t0 = Date.now();
  const n = o.parents ?? 40;
  const only = `${PARENT},${CHILD}`;
  return withCluster('children', async (c) => {
    await c.pool.query('CREATE TABLE chaos_joins (run_id uuid NOT NULL, outputs jsonb); CREATE TABLE chaos_child_effects (run_id uuid NOT NULL)');
    const problems: string[] = [];
    let runners = await spawnReady(c, only, 2);
    // Parents arrive over ~10 s, so kills land while some fan out and others join.
    const starting = (async () => {
      for (let i = 0; i < n; i += 5) {
        const items = Array.from({ length: Math.min(5, n - i) }, (_, k) => ({ input: {}, key: `p${i + k}` }));
        await q(c.pool, `SELECT count(*) FROM walflow.start_batch($1, $2::jsonb)`, [PARENT, JSON.stringify(items)]);
        await sleep((10_000 * 5) / n);
      }
    })();
    const k = await killLoop(c, only, runners, { untilMs: Date.now() + 90_000, minKills: 10, done: async () => (await unfinished(c.pool, PARENT)) === 0 });
    runners = k.runners;
    await starting;
    o.log(`  children: ${k.kills} SIGKILLs; draining`);
    const stuck = await drain(c, [PARENT, CHILD], 120_000);
    await stopAll(runners, problems);
    const [s] = await q<Record<string, string>>(c.pool, `
      WITH p AS (SELECT id, status FROM walflow.runs WHERE pipeline = $1),
           kids AS (SELECT parent_run_id AS id, count(*) AS n, count(DISTINCT child_index) AS distinct_n FROM walflow.runs WHERE pipeline = $2 GROUP BY 1),
           j AS (SELECT run_id AS id, count(*) AS n, min(outputs::text) AS outputs FROM chaos_joins GROUP BY 1),
           want AS (SELECT jsonb_agg(i * i ORDER BY i)::text AS outputs FROM generate_series(0, $3 - 1) i),
           e AS (SELECT run_id, count(*) AS n FROM chaos_child_effects GROUP BY 1)
      SELECT count(*) AS parents,
             count(*) FILTER (WHERE p.status = 'completed') AS completed,
             coalesce(sum(greatest(coalesce(kids.n, 0) - $3, 0)), 0) AS extra_children,
             coalesce(sum(greatest($3 - coalesce(kids.distinct_n, 0), 0)), 0) AS missing_children,
             count(*) FILTER (WHERE j.n IS NULL) AS no_join,
             coalesce(sum(j.n - 1) FILTER (WHERE j.n > 1), 0) AS extra_joins,
             count(*) FILTER (WHERE j.outputs IS DISTINCT FROM (SELECT outputs FROM want) AND j.n IS NOT NULL) AS wrong_join,
             (SELECT count(*) FROM walflow.runs c WHERE c.pipeline = $2 AND NOT EXISTS (SELECT 1 FROM e WHERE e.run_id = c.id)) AS child_no_effect,
             (SELECT coalesce(sum(n - 1), 0) FROM e WHERE n > 1) AS child_extra_effects,
             (SELECT count(*) FROM walflow.runs WHERE pipeline = $2) AS child_runs
        FROM p LEFT JOIN kids ON kids.id = p.id LEFT JOIN j ON j.id = p.id`, [PARENT, CHILD, CHILDREN_PER_PARENT]);
    const m = Object.fromEntries(Object.entries(s!).map(([key, v]) => [key, Number(v)])) as Record<string, number>;
    if (m.wrong_join) problems.push(`${m.wrong_join} join(s) did not hand on the ${CHILDREN_PER_PARENT} outputs in order`);
    return verdict({
      scenario: 'children-under-kills', faults: k.kills, faultDetail: `${k.kills} SIGKILLs of 2 procs`,
      rows: n * CHILDREN_PER_PARENT, completed: m.completed!, failedUnexpected: await failedRuns(c, [PARENT, CHILD]),
      lost: Math.max(0, n - m.parents!) + m.missing_children! + m.no_join! + m.child_no_effect!,
      duplicated: m.extra_children! + m.extra_joins! + m.child_extra_effects!, stuck, problems,
      metrics: {
        parents: n, childrenPerParent: CHILDREN_PER_PARENT, childRuns: m.child_runs!, extraChildren: m.extra_children!, missingChildren: m.missing_children!,
        noJoin: m.no_join!, extraJoins: m.extra_joins!, wrongJoin: m.wrong_join!, childNoEffect: m.child_no_effect!, childExtraEffects: m.child_extra_effects!,
      },
    }, t0);
  });
}

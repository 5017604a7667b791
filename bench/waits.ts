// npm run bench:waits [-- --runs N --trickle-seconds S --margin-s M] — durable waits at scale:
// (a) N runs whose sleeps end at the same instant: wake-to-completed runs/s, against N plain runs of
//     the same pipeline without the sleep (baseline, same run), with the process's RSS and CPU
//     while the N runs sleep (a sleeping run lives in the database, not in the process);
// (b) a steady trickle of due timers (20/s, sleeps of 1-3 s): lateness = the sleep step's
//     checkpoint time - its wake time, with idle workers, then while they drain a backlog.
import pg from 'pg';
import { Engine } from '../src/engine/engine.js';
import { definePipeline } from '../src/pipeline/define.js';
import { benchDatabase, machine, printTable, RssSampler } from './harness.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} needs a positive number, got ${process.argv[i + 1] ?? 'nothing'}`);
  return v;
}

const RUNS = flag('--runs', 100_000);
const TRICKLE_S = flag('--trickle-seconds', 30);
const TRICKLE_PER_S = 20;
// Time for starting and parking all N sleepers before their common wake instant (measured: parking
// runs at a few thousand per second here; the bench checks that they were all parked in time).
// Default: 20 s + N / 500 s (parking measured at ~800 runs/s here, on 2 shared vCPUs).
const MARGIN_FLAG = process.argv.includes('--margin-s') ? flag('--margin-s', 0) * 1000 : undefined;
const CAPACITY = 4000;

const done = { run: () => null };
const pipelines = [
  definePipeline<{ wakeAt: string }>({ name: 'nap', steps: [{ name: 'sleep', sleep: (ctx) => ctx.runInput.wakeAt }, { name: 'done', ...done }] }),
  definePipeline({ name: 'plain', steps: [{ name: 'done', ...done }] }),
  ...['trickle-idle', 'trickle-busy'].map((name) => definePipeline<{ wakeAt: string }>({ name, steps: [{ name: 'sleep', sleep: (ctx) => ctx.runInput.wakeAt }, { name: 'done', ...done }] })),
  definePipeline({ name: 'busy', steps: [{ name: 'one', ...done }, { name: 'two', ...done }] }),
];

const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const mb = () => Math.round(process.memoryUsage().rss / 2 ** 20);
const heapMb = () => Math.round(process.memoryUsage().heapUsed / 2 ** 20);
const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function startBatch(pool: pg.Pool, pipeline: string, n: number, input: (i: number) => unknown): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i += 5_000) {
    const items = Array.from({ length: Math.min(5_000, n - i) }, (_, k) => ({ input: input(i + k) }));
    await pool.query(`SELECT count(*) FROM walflow.start_batch($1, $2::jsonb)`, [pipeline, JSON.stringify(items)]);
  }
  return performance.now() - t0;
}

async function count(pool: pg.Pool, sql: string, params: unknown[] = []): Promise<number> {
  return Number((await pool.query<{ n: string }>(sql, params)).rows[0]!.n);
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleepMs(100);
  }
}

const unfinished = (pool: pg.Pool, p: string) => count(pool, `SELECT count(*) AS n FROM walflow.runs WHERE pipeline = $1 AND status IN ('queued', 'running', 'waiting')`, [p]);

async function lateness(pool: pg.Pool, pipeline: string): Promise<{ p50: number; p99: number; max: number; n: number }> {
  const r = (await pool.query<{ p50: number; p99: number; max: number; n: string }>(`
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99, max(ms) AS max, count(*) AS n
      FROM (SELECT extract(epoch FROM s.finished_at - (r.input->>'wakeAt')::timestamptz)::float8 * 1000 AS ms
              FROM walflow.runs r JOIN walflow.steps s ON s.run_id = r.id AND s.step = 'sleep' WHERE r.pipeline = $1) x`, [pipeline])).rows[0]!;
  return { p50: Math.round(r.p50), p99: Math.round(r.p99), max: Math.round(r.max), n: Number(r.n) };
}

/** 20 trickle runs per second for TRICKLE_S seconds, each sleeping 1-3 s; waits until all completed. */
async function trickle(pool: pg.Pool, pipeline: string): Promise<void> {
  const t0 = Date.now();
  for (let i = 0; i < TRICKLE_S * TRICKLE_PER_S; i++) {
    const due = t0 + (i * 1000) / TRICKLE_PER_S;
    if (due > Date.now()) await sleepMs(due - Date.now());
    await pool.query(`SELECT walflow.start($1, $2::jsonb)`, [pipeline, JSON.stringify({ wakeAt: new Date(Date.now() + 1_000 + Math.random() * 2_000).toISOString() })]);
  }
  await until('the trickle to complete', async () => (await unfinished(pool, pipeline)) === 0, 120_000);
}

const db = await benchDatabase('wf_bench_waits');
const pool = new pg.Pool({ connectionString: db.url, max: 4 });
let engine: Engine | undefined;
try {
  let completed = 0;
  engine = new Engine({ url: db.url, pipelines, workers: 1, maxInFlight: CAPACITY, poolSize: 8, retentionMs: 0, onRunEnd: () => void completed++ });
  await engine.register();
  await engine.runWorkers();

  // Baseline: N plain runs (the same pipeline without its sleep).
  await startBatch(pool, 'plain', RUNS, () => ({}));
  const tb = performance.now();
  await until('the plain runs', async () => (await unfinished(pool, 'plain')) === 0, 600_000);
  const baselineRunsPerS = (RUNS / (performance.now() - tb)) * 1000;

  // (a) N sleepers with one common wake instant, far enough ahead for all of them to be parked
  // (claim, run the sleep's function, park: one run transaction each, not group-committed).
  gc();
  const rssBefore = mb();
  const heapBefore = heapMb();
  const marginMs = MARGIN_FLAG ?? Math.round(20_000 + (RUNS * 1000) / 500);
  const wakeAt = new Date(Date.now() + marginMs);
  const tp = performance.now();
  const startMs = await startBatch(pool, 'nap', RUNS, () => ({ wakeAt: wakeAt.toISOString() }));
  await until('all sleepers parked', async () => (await count(pool, `SELECT count(*) AS n FROM walflow.waits WHERE pipeline = 'nap'`)) === RUNS, marginMs + 600_000);
  const parkRunsPerS = (RUNS / (performance.now() - tp)) * 1000;
  const parkedBeforeWake = Date.now() < wakeAt.getTime();
  const idleMs = Math.min(5_000, wakeAt.getTime() - Date.now() - 500);
  gc();
  const rssSleeping = mb();
  const heapSleeping = heapMb();
  const inFlightSleeping = engine.inFlight;
  const cpu0 = process.cpuUsage();
  const ti = performance.now();
  if (idleMs > 0) await sleepMs(idleMs);
  const cpu = process.cpuUsage(cpu0);
  const idleCpuMsPerS = idleMs > 0 ? ((cpu.user + cpu.system) / 1000 / (performance.now() - ti)) * 1000 : NaN;
  const rss = new RssSampler();
  await until('the sleepers to complete', async () => (await unfinished(pool, 'nap')) === 0, marginMs + 600_000);
  const peakWakeRss = rss.stop();
  const w = (await pool.query<{ first: number; last: number; first_late: number }>(`
    SELECT extract(epoch FROM (SELECT min(s.finished_at) FROM walflow.steps s JOIN walflow.runs r ON r.id = s.run_id WHERE r.pipeline = 'nap' AND s.step = 'sleep'))::float8 AS first,
           extract(epoch FROM (SELECT max(finished_at) FROM walflow.runs WHERE pipeline = 'nap'))::float8 AS last`)).rows[0]!;
  const wakeRunsPerS = RUNS / (w.last - w.first);
  const firstWakeLateMs = Math.round(w.first * 1000 - wakeAt.getTime());

  // (b) lateness of a trickle of due timers: (i) idle workers, (ii) workers busy with a backlog.
  await trickle(pool, 'trickle-idle');
  const idle = await lateness(pool, 'trickle-idle');
  // Keep a backlog of 2-step runs queued throughout (topped up), so the workers never run dry.
  let feeding = true;
  const backlog = RUNS / 2;
  await startBatch(pool, 'busy', backlog, () => ({}));
  const feeder = (async () => {
    while (feeding) {
      if ((await count(pool, `SELECT count(*) AS n FROM walflow.runs WHERE pipeline = 'busy' AND status = 'queued'`)) < backlog / 4) await startBatch(pool, 'busy', backlog / 2, () => ({}));
      await sleepMs(500);
    }
  })();
  const busyDone0 = await count(pool, `SELECT count(*) AS n FROM walflow.runs WHERE pipeline = 'busy' AND status = 'completed'`);
  const tbusy = performance.now();
  await trickle(pool, 'trickle-busy');
  const busyRunsPerS = ((await count(pool, `SELECT count(*) AS n FROM walflow.runs WHERE pipeline = 'busy' AND status = 'completed'`)) - busyDone0) / ((performance.now() - tbusy) / 1000);
  feeding = false;
  await feeder;
  const busy = await lateness(pool, 'trickle-busy');

  printTable([
    { measure: `baseline: complete ${RUNS} plain runs (no sleep)`, value: Math.round(baselineRunsPerS), unit: 'runs/s' },
    { measure: `start ${RUNS} sleepers (start_batch, 5,000 per call)`, value: Math.round((RUNS / startMs) * 1000), unit: 'runs/s' },
    { measure: `start and park ${RUNS} sleepers`, value: Math.round(parkRunsPerS), unit: 'runs/s' },
    { measure: `all ${RUNS} parked before the wake instant (${Math.round(marginMs / 1000)} s ahead)`, value: String(parkedBeforeWake), unit: '' },
    { measure: `wake-to-completed, ${RUNS} sleeps ending at once`, value: Math.round(wakeRunsPerS), unit: 'runs/s' },
    { measure: 'first wake after the wake instant', value: firstWakeLateMs, unit: 'ms' },
    { measure: 'RSS before the sleepers (after GC)', value: rssBefore, unit: 'MB' },
    { measure: `RSS while ${RUNS} sleep (after GC)`, value: rssSleeping, unit: 'MB' },
    { measure: 'JS heap used before / while they sleep (after GC)', value: `${heapBefore} / ${heapSleeping}`, unit: 'MB' },
    { measure: 'runs held in the process while they sleep', value: inFlightSleeping, unit: 'runs' },
    { measure: `CPU while ${RUNS} sleep (over ${(idleMs / 1000).toFixed(1)} s)`, value: idleCpuMsPerS.toFixed(1), unit: 'ms CPU/s' },
    { measure: 'peak RSS while they wake', value: peakWakeRss, unit: 'MB' },
    { measure: `trickle ${TRICKLE_PER_S}/s x ${TRICKLE_S} s, idle workers: lateness p50/p99/max`, value: `${idle.p50} / ${idle.p99} / ${idle.max}`, unit: 'ms' },
    { measure: 'the same, workers busy with a backlog: p50/p99/max', value: `${busy.p50} / ${busy.p99} / ${busy.max}`, unit: 'ms' },
    { measure: 'backlog completed meanwhile', value: Math.round(busyRunsPerS), unit: 'runs/s' },
  ]);
  console.log(`machine: ${machine()}`);
  console.log(JSON.stringify({
    runs: RUNS, capacity: CAPACITY,
    baseline_runs_per_s: Math.round(baselineRunsPerS),
    start_runs_per_s: Math.round((RUNS / startMs) * 1000),
    park_runs_per_s: Math.round(parkRunsPerS), wake_margin_s: Math.round(marginMs / 1000), parked_before_wake: parkedBeforeWake,
    wake_runs_per_s: Math.round(wakeRunsPerS),
    ratio_to_baseline: Number((wakeRunsPerS / baselineRunsPerS).toFixed(3)),
    first_wake_late_ms: firstWakeLateMs,
    rss_before_mb: rssBefore, rss_sleeping_mb: rssSleeping, heap_before_mb: heapBefore, heap_sleeping_mb: heapSleeping, in_flight_sleeping: inFlightSleeping,
    idle_cpu_ms_per_s: Number(idleCpuMsPerS.toFixed(2)), peak_wake_rss_mb: peakWakeRss,
    trickle: { per_s: TRICKLE_PER_S, seconds: TRICKLE_S, idle_ms: idle, busy_ms: busy, busy_backlog_runs_per_s: Math.round(busyRunsPerS) },
  }));
} finally {
  await engine?.stop();
  await pool.end();
  await db.close();
}

// npm run bench:engine — completed 3-step no-op runs per second, against the write ceiling of the
// same number of rows inserted by one client as 1,000-row multi-row INSERTs, in the same run.
import pg from 'pg';
import { Engine } from '../src/engine/engine.js';
import { definePipeline } from '../src/pipeline/define.js';
import { engineSqlCeiling } from './engine-sql-ceiling.js';
import { benchDatabase, connectClients, machine, printTable, RssSampler } from './harness.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 20_000);
const BACKLOG = Number(process.env.BENCH_BACKLOG ?? 100_000);
const STEPS = 3;
// One claim loop with many runs in flight: no-op steps finish in microseconds, so throughput is set
// by how many runs ride each group commit. Several loops in one process only contend on the same
// rows (measured: 4 loops x 500 in flight is ~20% slower than 1 x 4,000).
const WORKERS = Number(process.env.BENCH_WORKERS ?? 1);
const CAPACITY = Number(process.env.BENCH_CAPACITY ?? 4000);

const pipeline = definePipeline({
  name: 'noop3',
  steps: [
    { name: 'one', run: (_c, i: unknown) => i },
    { name: 'two', run: () => ({ ok: true }) },
    { name: 'three', run: () => null },
  ],
});

async function enqueue(engine: Engine, n: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i += 1000) {
    const items = Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({ input: { i: i + j }, key: `k${i + j}` }));
    await engine.startMany('noop3', items);
  }
  return performance.now() - t0;
}

async function drain(url: string, n: number): Promise<{ ms: number; rssMb: number }> {
  const done = { count: 0 };
  let finish!: () => void;
  const all = new Promise<void>((r) => (finish = r));
  const engine = new Engine({
    url, pipelines: [pipeline], workers: WORKERS, maxInFlight: CAPACITY, poolSize: 8, retentionMs: 0,
    onRunEnd: () => {
      if (++done.count === n) finish();
    },
  });
  const rss = new RssSampler();
  const t0 = performance.now();
  await engine.runWorkers();
  await all;
  const ms = performance.now() - t0;
  await engine.stop();
  return { ms, rssMb: rss.stop() };
}

async function baseline(url: string, rows: number): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`CREATE TABLE baseline (run_id uuid, step_index int, step text, status text, output jsonb, attempts int, started_at timestamptz, finished_at timestamptz, PRIMARY KEY (run_id, step_index))`);
  const t0 = performance.now();
  for (let i = 0; i < rows; i += 1000) {
    const n = Math.min(1000, rows - i);
    await c.query(
      `INSERT INTO baseline SELECT gen_random_uuid(), g, 'step', 'completed', '{"ok":true}', 1, now(), now() FROM generate_series(1, $1) g`,
      [n],
    );
  }
  const ms = performance.now() - t0;
  await c.end();
  return (rows / ms) * 1000;
}

async function analyzeRuns(url: string): Promise<void> {
  const [c] = await connectClients(url, 1);
  await c!.query('ANALYZE walflow.runs');
  await c!.end();
}

const db = await benchDatabase('wf_bench_engine');
try {
  const setup = new Engine({ url: db.url, pipelines: [pipeline] });
  await setup.register();
  const startMs = await enqueue(setup, RUNS);
  const main = await drain(db.url, RUNS);

  // Bookkeeping rows per run: the run row and one checkpoint row per step.
  const rowsWritten = RUNS * (1 + STEPS);
  const baselineRowsPerS = await baseline(db.url, rowsWritten);

  // The same number of runs again, completed by the engine's SQL alone (no Node): the ceiling.
  await enqueue(setup, RUNS);
  const sqlCeilingRunsPerS = await engineSqlCeiling(db.url, 'noop3', RUNS, STEPS);

  const backlogStartMs = await enqueue(setup, BACKLOG);
  await setup.stop();
  // A backlog that has sat for a while has been analyzed by autovacuum: drain it with the
  // statistics a production queue has, not those of a table that was empty a second ago.
  await analyzeRuns(db.url);
  const backlog = await drain(db.url, BACKLOG);

  const runsPerS = (RUNS / main.ms) * 1000;
  const walflowRowsPerS = runsPerS * (1 + STEPS);
  printTable([
    { measure: `start ${RUNS} runs (1,000 per call)`, value: Math.round((RUNS / startMs) * 1000), unit: 'runs/s' },
    { measure: `complete ${RUNS} 3-step runs`, value: Math.round(runsPerS), unit: 'runs/s' },
    { measure: 'bookkeeping rows written by walflow', value: Math.round(walflowRowsPerS), unit: 'rows/s' },
    { measure: 'baseline: 1,000-row INSERTs, one client', value: Math.round(baselineRowsPerS), unit: 'rows/s' },
    { measure: "engine's SQL alone, 2 connections, no Node", value: Math.round(sqlCeilingRunsPerS), unit: 'runs/s' },
    { measure: `start ${BACKLOG} runs (backlog)`, value: Math.round((BACKLOG / backlogStartMs) * 1000), unit: 'runs/s' },
    { measure: `complete ${BACKLOG} queued runs`, value: Math.round((BACKLOG / backlog.ms) * 1000), unit: 'runs/s' },
    { measure: `peak RSS, ${BACKLOG} queued`, value: backlog.rssMb, unit: 'MB' },
  ]);
  console.log(`machine: ${machine()}`);
  console.log(JSON.stringify({
    runs: RUNS, steps: STEPS, workers: WORKERS, capacity: CAPACITY,
    runs_per_s: Math.round(runsPerS),
    baseline_rows_per_s: Math.round(baselineRowsPerS),
    ratio: Number((walflowRowsPerS / baselineRowsPerS).toFixed(3)),
    sql_ceiling_runs_per_s: Math.round(sqlCeilingRunsPerS),
    ratio_to_sql_ceiling: Number((runsPerS / sqlCeilingRunsPerS).toFixed(3)),
    start_runs_per_s: Math.round((RUNS / startMs) * 1000),
    backlog_runs: BACKLOG,
    backlog_runs_per_s: Math.round((BACKLOG / backlog.ms) * 1000),
    peak_rss_mb: backlog.rssMb,
  }));
} finally {
  await db.close();
}

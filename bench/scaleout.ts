// npm run bench:scaleout — several `walflow run --no-replication` processes (the worker-only hosts of
// docs/deploying.md) on one PostgreSQL, each with a bounded number of runs in flight (1 worker loop,
// WALFLOW_MAX_IN_FLIGHT runs), on a step that waits 20 ms as on I/O. Throughput should grow with
// the processes until the database (here: the machine's cores, shared with it) is the limit. The
// same run measures the baseline (1 process) and the ceiling (4 processes on a step that waits 0 ms).
// Prints a table, then one JSON line. Settings: SCALEOUT_RUNS (default 6000), SCALEOUT_INFLIGHT
// (default 20), WALFLOW_BENCH_DATABASE_URL (default: a throwaway local cluster).
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { benchDatabase, machine, printTable } from './harness.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const RUNS = Number(process.env.SCALEOUT_RUNS ?? 6000);
const INFLIGHT = Number(process.env.SCALEOUT_INFLIGHT ?? 20);
const STEP_MS = 20;

async function startProcess(url: string): Promise<ChildProcess> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WALFLOW_') && k !== 'DATABASE_URL'));
  const child = spawn(process.execPath, ['bin/walflow.js', 'run', '--no-replication', '--workers', '1'], {
    cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...env, DATABASE_URL: url, WALFLOW_PIPELINES_DIR: 'bench/pipelines', WALFLOW_MAX_IN_FLIGHT: String(INFLIGHT), WALFLOW_LOG_PRETTY: 'false', WALFLOW_LOG_LEVEL: 'info' },
  });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('"walflow running"')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`walflow run exited ${code}:\n${err}`)));
  });
  return child;
}

async function stopAll(children: ChildProcess[]): Promise<void> {
  await Promise.all(children.map((c) => new Promise<void>((resolve) => {
    if (c.exitCode !== null) return resolve();
    c.on('exit', () => resolve());
    c.kill('SIGTERM');
  })));
}

/** Runs/s for `processes` workers-only processes draining RUNS runs whose step waits `ms`. */
async function measure(db: pg.Client, url: string, processes: number, ms: number): Promise<{ runsPerS: number; seconds: number }> {
  await db.query(`DELETE FROM walflow.steps; DELETE FROM walflow.runs`);
  const children: ChildProcess[] = [];
  try {
    for (let i = 0; i < processes; i++) children.push(await startProcess(url));
    await db.query(`SELECT count(*) FROM walflow.start_batch('bench-io-wait', (SELECT jsonb_agg(jsonb_build_object('input', jsonb_build_object('ms', $2::int))) FROM generate_series(1, $1::int)))`, [RUNS, ms]);
    for (;;) {
      const { rows } = await db.query<{ open: string }>(`SELECT count(*) AS open FROM walflow.runs WHERE status <> 'completed'`);
      if (Number(rows[0]!.open) === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // From the database's own clock: first run created to last run finished.
    const { rows } = await db.query<{ s: number }>(`SELECT extract(epoch FROM max(finished_at) - min(created_at))::float8 AS s FROM walflow.runs`);
    const seconds = rows[0]!.s;
    return { runsPerS: Math.round(RUNS / seconds), seconds: Math.round(seconds * 100) / 100 };
  } finally {
    await stopAll(children);
  }
}

const bench = await benchDatabase('wf_scaleout');
const db = new pg.Client({ connectionString: bench.url });
await db.connect();
try {
  // Registers the pipeline (walflow.start_batch accepts only known names), then exits.
  await stopAll([await startProcess(bench.url)]);
  const rows: Record<string, string | number>[] = [];
  const points: { processes: number; step_ms: number; runs_per_s: number; seconds: number; speedup: number }[] = [];
  let baseline = 0;
  for (const [processes, ms] of [[1, STEP_MS], [2, STEP_MS], [4, STEP_MS], [4, 0]] as const) {
    const r = await measure(db, bench.url, processes, ms);
    if (processes === 1) baseline = r.runsPerS;
    const ideal = ms > 0 ? Math.round((processes * INFLIGHT * 1000) / ms) : NaN;
    const speedup = Math.round((r.runsPerS / baseline) * 100) / 100;
    points.push({ processes, step_ms: ms, runs_per_s: r.runsPerS, seconds: r.seconds, speedup });
    rows.push({ processes, step_ms: ms, in_flight: processes * INFLIGHT, runs: RUNS, seconds: r.seconds, 'runs/s': r.runsPerS, 'ideal runs/s': Number.isNaN(ideal) ? '-' : ideal, 'vs 1 process': `${speedup}x` });
  }
  printTable(rows);
  console.log(JSON.stringify({ bench: 'scaleout', machine: machine(), runs: RUNS, in_flight_per_process: INFLIGHT, baseline_runs_per_s: baseline, points }));
} finally {
  await db.end();
  await bench.close();
}

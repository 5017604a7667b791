// npm run bench:console — server time of the console's pages with 1,000,000 finished runs in
// walflow.runs (plus failed, waiting and queued ones), against a trivial query's round trip measured
// in the same run. Pages are rendered in process (app.fetch): the time is the server's, from
// request to complete HTML, database reads included; no browser or network in it.
import { createConsoleApp } from '../src/console/server.js';
import { createConsolePool } from '../src/console/start.js';
import { benchDatabase, machine, printTable } from './harness.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 1_000_000);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 30);
// Over how many hours the runs finished: by default the retention window (168 h), so the last hour
// holds about 6,000 of them. The overview counts the last hour's completions (walflow.status and
// the per-minute chart), so its time grows with those: BENCH_SPREAD_HOURS=0.25 puts all of them there.
const SPREAD_HOURS = Number(process.env.BENCH_SPREAD_HOURS ?? 168);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function time(fn: () => Promise<unknown>): Promise<{ median: number; p95: number }> {
  for (let i = 0; i < 3; i++) await fn(); // warm: plans, pool connections
  const xs: number[] = [];
  for (let i = 0; i < REPEAT; i++) {
    const t0 = performance.now();
    await fn();
    xs.push(performance.now() - t0);
  }
  const s = [...xs].sort((a, b) => a - b);
  return { median: median(xs), p95: s[Math.floor(s.length * 0.95)]! };
}

const bench = await benchDatabase('walflow_bench_console');
const pool = createConsolePool(bench.url);
try {
  await pool.query(`INSERT INTO walflow.pipelines (name, version, steps) VALUES ('bench-a', 'v1', '{one,two}'), ('bench-b', 'v1', '{one}')`);
  const t0 = performance.now();
  // UUIDv7 ids of distinct milliseconds spread over SPREAD_HOURS, oldest first, as walflow makes them.
  await pool.query(`
    INSERT INTO walflow.runs (id, pipeline, key, status, input, step_index, created_at, finished_at, error)
    SELECT (substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid,
           CASE WHEN g % 4 = 0 THEN 'bench-b' ELSE 'bench-a' END, 'k' || g,
           CASE WHEN g % 1000 = 0 THEN 'failed' WHEN g % 5000 = 1 THEN 'waiting' ELSE 'completed' END,
           jsonb_build_object('id', g, 'text', 'row ' || g), 1, t, t,
           CASE WHEN g % 1000 = 0 THEN jsonb_build_object('message', 'upstream ' || (g % 3), 'stack', 'Error: upstream') END
      FROM generate_series(1, ${RUNS}) g,
           LATERAL (SELECT now() - interval '1 ms' * greatest(${RUNS} - g, round((${RUNS} - g)::numeric * ${SPREAD_HOURS} * 3600000 / ${RUNS})) AS t) tt,
           LATERAL (SELECT lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') AS h) hh`);
  await pool.query('VACUUM ANALYZE walflow.runs');
  const loadS = (performance.now() - t0) / 1000;
  const { rows: [mid] } = await pool.query(`SELECT id::text FROM walflow.runs ORDER BY id OFFSET ${Math.floor(RUNS / 2)} LIMIT 1`);
  const { rows: [failedRun] } = await pool.query(`SELECT id::text FROM walflow.runs WHERE status = 'failed' LIMIT 1`);

  const app = createConsoleApp({ db: pool });
  const get = async (path: string) => {
    const res = await app.fetch(new Request(`http://127.0.0.1${path}`));
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${(await res.text()).slice(0, 300)}`);
    return res.text();
  };
  const cases: [string, () => Promise<unknown>][] = [
    ['baseline: SELECT 1', () => pool.query('SELECT 1')],
    ['overview /', () => get('/')],
    ['overview fragment (live refresh)', () => get('/fragments/overview')],
    ['runs: newest page', () => get('/runs')],
    ['runs: page in the middle', () => get(`/runs?before=${mid.id}`)],
    ['runs: oldest page', () => get('/runs?oldest=1')],
    ['runs: pipeline bench-b, page in the middle', () => get(`/runs?pipeline=bench-b&before=${mid.id}`)],
    ['runs: status failed', () => get('/runs?status=failed')],
    ['failures (grouped)', () => get('/failures')],
    ['a run page', () => get(`/runs/${failedRun.id}`)],
  ];
  const rows: Record<string, string | number>[] = [];
  const result: Record<string, number> = {};
  for (const [name, fn] of cases) {
    const t = await time(fn);
    rows.push({ case: name, median_ms: t.median.toFixed(2), p95_ms: t.p95.toFixed(2) });
    result[name] = Math.round(t.median * 100) / 100;
  }
  const plan = (await pool.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM walflow.list_runs(NULL, NULL, NULL, $1::uuid, 51)`, [mid.id])).rows.map((r) => r['QUERY PLAN']).join('\n');
  const { rows: [lastHour] } = await pool.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE status = 'completed' AND finished_at > now() - interval '1 hour'`);
  console.log(`walflow console: ${RUNS.toLocaleString('en')} finished runs over ${SPREAD_HOURS} h, ${lastHour.n.toLocaleString('en')} completed in the last hour (loaded in ${loadS.toFixed(0)} s); ${machine()}; median of ${REPEAT}\n`);
  printTable(rows);
  console.log(`\nlist_runs page in the middle:\n${plan}\n`);
  console.log(JSON.stringify({ bench: 'console', runs: RUNS, spread_hours: SPREAD_HOURS, completed_last_hour: lastHour.n, repeat: REPEAT, machine: machine(), median_ms: result }));
} finally {
  await pool.end();
  await bench.close();
}

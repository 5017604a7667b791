// Replication benchmark: WAL → committed run starts.
//   node --import tsx bench/replication.ts [--rows 100000] [--latency 1000] [--burst 0] [--fsync on] [--writers 2]
// Provisions a throwaway cluster, measures (1) raw insert speed of a 100,000-row INSERT into an
// unpublished table, (2) commit → last committed run start for the same INSERT into a source table,
// (3) commit-to-run-start latency of 1,000 single-row commits spaced 10 ms apart (run created_at
// vs the source row's clock_timestamp()), and optionally (4) a burst with a slow consumer and a
// watermark. Also (1b): the ceiling of run starts alone (run rows inserted inside the server, two
// connections, no decoding, no Node). Prints a table, then one JSON object as the last line.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import pino from 'pino';
import { EmbeddedCluster } from '../src/db/embedded-cluster.js';
import { migrate } from '../src/db/migrate.js';
import { definePipeline } from '../src/pipeline/define.js';
import { ReplicationSource } from '../src/replication/replication-source.js';
import { RunWriter } from '../src/replication/writing/run-writer.js';
import { dropSlot } from '../src/replication/setup/slot.js';
import { connectClients } from './harness.js';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '100000' },
    latency: { type: 'string', default: '1000' },
    burst: { type: 'string', default: '0' },
    fsync: { type: 'string', default: 'on' },
    'max-items': { type: 'string', default: '2000' },
    'max-wait-ms': { type: 'string', default: '3' },
    writers: { type: 'string', default: '2' },
    // A SQL file applied after the migrations, to measure a proposed change (e.g. of start_batch).
    sql: { type: 'string' },
  },
});
const ROWS = Number(args.rows);
const LATENCY_N = Number(args.latency);
const BURST = Number(args.burst);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
let peakRss = 0;
const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);

async function waitUntil(fn: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(2);
  }
}

async function runInsertCeiling(url: string, rows: number): Promise<number> {
  const clients = await connectClients(url, 2);
  const t0 = performance.now();
  await Promise.all(clients.map(async (c, lane) => {
    for (let from = 1 + lane * 1000; from <= rows; from += 2000) {
      await c.query(
        // Time-ordered ids given, not drawn from walflow.uuid_v7(): the writer's come from Node.
        `INSERT INTO walflow.runs (id, pipeline, pipeline_version, key, input, dedupe_id, source_lsn, source_index)
         SELECT lpad(to_hex(g), 32, '0')::uuid, 'bench', 'v1', g::text, jsonb_build_object('id', g, 'payload', md5(g::text), 'created', clock_timestamp()),
                '0/1000000:' || g, '0/1000000', g
           FROM generate_series($1::bigint, $2::bigint) g`,
        [from, Math.min(from + 999, rows)],
      );
    }
  }));
  const perS = Math.round(rows / ((performance.now() - t0) / 1000));
  await clients[0]!.query('TRUNCATE walflow.runs');
  await Promise.all(clients.map((c) => c.end()));
  return perS;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walflow-bench-'));
fs.chmodSync(dir, 0o755);
const cluster = new EmbeddedCluster({ dataDir: path.join(dir, 'data'), settings: { fsync: args.fsync, max_connections: 50 } });
const results: Record<string, number> = {};
try {
  const url = await cluster.start();
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await migrate(admin);
  if (args.sql) await admin.query(fs.readFileSync(args.sql, 'utf8'));
  await admin.query(`CREATE TABLE public.bench_src (id bigint PRIMARY KEY, payload text NOT NULL, created timestamptz NOT NULL DEFAULT clock_timestamp())`);
  await admin.query(`CREATE TABLE public.bench_raw (LIKE public.bench_src INCLUDING ALL)`);
  await admin.query(`INSERT INTO walflow.pipelines (name, version, steps) VALUES ('bench', 'v1', '{noop}')`);
  const insert = (table: string, from: number, to: number) =>
    admin.query(`INSERT INTO public.${table} (id, payload) SELECT g, md5(g::text) FROM generate_series($1::bigint, $2::bigint) g`, [from, to]);

  // (1) The same INSERT into a table nobody publishes.
  let t = performance.now();
  await insert('bench_raw', 1, ROWS);
  results.raw_insert_rows_per_s = Math.round(ROWS / ((performance.now() - t) / 1000));

  // (1b) The ceiling of the run starts themselves: the same number of run rows, shaped like the
  // writer's (input, key, dedupe id, source position), inserted inside the server by two
  // connections in 1,000-row statements: no WAL decoding, no Node. Removed before (2).
  results.run_insert_ceiling_rows_per_s = await runInsertCeiling(url, ROWS);

  const src = new ReplicationSource({
    url,
    pipelines: [definePipeline({ name: 'bench', version: 'v1', source: { table: 'bench_src' }, steps: [{ name: 'noop', run: () => null }] })],
    slotName: 'bench_slot',
    publicationName: 'bench_pub',
    logger: pino({ level: 'warn' }),
    batch: { maxItems: Number(args['max-items']), maxWaitMs: Number(args['max-wait-ms']) },
    writers: Number(args.writers),
    highWatermark: 10_000_000,
    lowWatermark: 5_000_000,
    heartbeatMs: 1_000,
  });
  await src.start();
  await waitUntil(() => src.currentStatus.role === 'leader' && src.currentStatus.durableLsn !== null, 30_000, 'leadership');

  // (2) Commit of a 100,000-row INSERT → its last run start committed.
  let writeMs = 0;
  const write = RunWriter.prototype.write;
  RunWriter.prototype.write = async function (this: RunWriter, batch) {
    const w = performance.now();
    try {
      return await write.call(this, batch);
    } finally {
      writeMs += performance.now() - w;
    }
  };
  t = performance.now();
  await insert('bench_src', 1, ROWS);
  const committed = performance.now();
  const cpu0 = process.cpuUsage();
  results.source_insert_s = Number(((committed - t) / 1000).toFixed(3));
  await waitUntil(() => src.counters.started >= ROWS, 300_000, 'run starts');
  const elapsed = performance.now() - committed;
  const cpu = process.cpuUsage(cpu0);
  results.changes_per_s = Math.round(ROWS / (elapsed / 1000));
  results.node_cpu_pct = Math.round(((cpu.user + cpu.system) / 1000 / elapsed) * 100);
  results.writer_busy_pct = Math.round((writeMs / elapsed) * 100);
  results.batches = src.counters.batches;
  results.ratio = Number((results.changes_per_s / results.raw_insert_rows_per_s).toFixed(3));

  // (3) Single-row commits spaced 10 ms apart.
  const base = ROWS + 1;
  for (let i = 0; i < LATENCY_N; i++) {
    await admin.query(`INSERT INTO public.bench_src (id, payload) VALUES ($1, 'x')`, [base + i]);
    await sleep(10);
  }
  await waitUntil(() => src.counters.started >= ROWS + LATENCY_N, 60_000, 'latency run starts');
  const { rows } = await admin.query<{ ms: number }>(
    `SELECT extract(epoch FROM r.created_at - s.created) * 1000 AS ms
       FROM walflow.runs r JOIN public.bench_src s ON r.key = s.id::text WHERE s.id >= $1`,
    [base],
  );
  const lat = rows.map((r) => Number(r.ms));
  results.latency_p50_ms = Number(pct(lat, 50).toFixed(2));
  results.latency_p99_ms = Number(pct(lat, 99).toFixed(2));
  results.latency_max_ms = Number(Math.max(...lat).toFixed(2));

  // (4) Optional burst against a slow consumer (runs completed at ~20k/s) and a 50k watermark.
  if (BURST > 0) {
    await admin.query(`UPDATE walflow.runs SET status = 'completed' WHERE status = 'queued'`);
    await src.stop();
    const slow = new ReplicationSource({ ...src['opts'], highWatermark: 50_000, lowWatermark: 25_000 });
    await slow.start();
    let draining = true;
    const drainer = (async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      while (draining) {
        await c.query(`UPDATE walflow.runs SET status = 'completed' WHERE id IN (SELECT id FROM walflow.runs WHERE status = 'queued' LIMIT 2000)`);
        await sleep(100);
      }
      await c.end();
    })();
    peakRss = 0;
    const before = slow.counters.started;
    t = performance.now();
    await insert('bench_src', base + LATENCY_N, base + LATENCY_N + BURST - 1);
    await waitUntil(() => slow.counters.started - before >= BURST, 900_000, 'burst run starts');
    draining = false;
    await drainer;
    results.burst_rows = BURST;
    results.burst_s = Number(((performance.now() - t) / 1000).toFixed(1));
    results.burst_peak_rss_mb = Math.round(peakRss / 1e6);
    await slow.stop();
  } else {
    await src.stop();
  }
  await dropSlot(admin, 'bench_slot');
  await admin.end();
  results.peak_rss_mb = Math.round(Math.max(peakRss, process.resourceUsage().maxRSS * 1024) / 1e6);
} finally {
  clearInterval(rssTimer);
  await cluster.destroy().catch(() => undefined);
  fs.rmSync(dir, { recursive: true, force: true });
}

console.log(`walflow replication bench (${os.cpus().length} cores, fsync=${args.fsync}, batch ${args['max-items']}/${args['max-wait-ms']} ms, ${args.writers} writers)`);
for (const [k, v] of Object.entries(results)) console.log(`  ${k.padEnd(24)} ${String(v).padStart(12)}`);
console.log(JSON.stringify(results));

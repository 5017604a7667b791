// The fault-injection suite's toolbox: a throwaway cluster per scenario, real `walflow run`
// processes (bin/walflow.js, killed with real signals), load generators that ride out crashes,
// and the invariant checks every scenario ends with.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { EmbeddedCluster } from '../../src/db/embedded-cluster.js';
import { migrate } from '../../src/db/migrate.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const PIPELINES_DIR = path.join(ROOT, 'test/fixtures/chaos/pipelines');
const BIN = path.join(ROOT, 'bin/walflow.js');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Cluster

export interface ChaosCluster {
  cluster: EmbeddedCluster;
  url: string;
  dir: string;
  /** Pool for checks; its connections die in a restart and reconnect on the next query. */
  pool: pg.Pool;
  destroy(): Promise<void>;
}

/** A new local cluster (fsync off: only processes crash here, never the OS), migrated, with pgvector. */
export async function startCluster(label: string, settings: Record<string, string | number> = {}): Promise<ChaosCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `walflow-chaos-${label}-`));
  fs.chmodSync(dir, 0o755);
  fs.mkdirSync(path.join(dir, 'logs'));
  const cluster = new EmbeddedCluster({
    dataDir: path.join(dir, 'data'),
    settings: { fsync: 'off', full_page_writes: 'off', synchronous_commit: 'on', max_connections: 150, ...settings },
  });
  const url = await cluster.start();
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('CREATE EXTENSION IF NOT EXISTS vector');
    await migrate(c);
  } finally {
    await c.end();
  }
  const pool = new pg.Pool({ connectionString: url, max: 6 });
  pool.on('error', () => undefined);
  return {
    cluster, url, dir, pool,
    destroy: async () => {
      await pool.end().catch(() => undefined);
      await cluster.destroy().catch(() => undefined);
      if (!process.env.CHAOS_KEEP) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Retries a query through a server restart. */
export async function q<T extends pg.QueryResultRow = Record<string, unknown>>(pool: pg.Pool, sql: string, params: unknown[] = [], timeoutMs = 60_000): Promise<T[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return (await pool.query<T>(sql, params)).rows;
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      const transient = !code || code.startsWith('57P') || code.startsWith('08') || /terminat|ECONNREFUSED|ECONNRESET|Connection/i.test((err as Error).message);
      if (!transient || Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
}

export async function num(pool: pg.Pool, sql: string, params: unknown[] = []): Promise<number> {
  const rows = await q<{ n: string | number | null }>(pool, sql, params);
  return Number(rows[0]?.n ?? 0);
}

// ---------------------------------------------------------------------------------------------
// walflow processes

export interface Runner {
  child: ChildProcess;
  pid: number;
  logFile: string;
  /** Resolves once the process logged "walflow running". */
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive(): boolean;
  kill(signal?: NodeJS.Signals): Promise<void>;
  output(): string;
}

let runnerSeq = 0;
/** Every process spawned, so that a scenario that throws still ends them all. */
const spawned = new Set<Runner>();

/** SIGKILLs every walflow process still running (cleanup after a failed scenario). */
export async function killAll(): Promise<void> {
  for (const r of spawned) await r.kill('SIGKILL');
  spawned.clear();
}

export interface RunnerOptions {
  /** `--only`: the pipelines to load (omitted: every pipeline of the directory and every one defined in SQL). */
  only?: string;
  /** The pipelines directory (default test/fixtures/chaos/pipelines). */
  pipelinesDir?: string;
  workers?: number;
  replication?: boolean;
  env?: Record<string, string>;
  /** Lease: short, so that runs of a killed process come back quickly. */
  leaseMs?: number;
}

/** The environment of a walflow process on this cluster (what a user would export). */
export function walflowEnv(c: Pick<ChaosCluster, 'url'>, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('WALFLOW_') || k.startsWith('CHAOS_') || k === 'DATABASE_URL') delete env[k];
  return {
    ...env,
    DATABASE_URL: c.url,
    WALFLOW_LOG_LEVEL: 'info',
    WALFLOW_LOG_PRETTY: 'false',
    WALFLOW_POLL_INTERVAL_MS: '250',
    WALFLOW_SHUTDOWN_TIMEOUT_MS: '5000',
    ...extra,
  };
}

/** Starts `walflow run --pipelines test/fixtures/chaos/pipelines --only NAME` as its own process. */
export function spawnWalflow(c: Pick<ChaosCluster, 'url' | 'dir'>, o: RunnerOptions): Runner {
  const args = [BIN, 'run', '--pipelines', o.pipelinesDir ?? PIPELINES_DIR, ...(o.only !== undefined ? ['--only', o.only] : [])];
  if (o.workers !== undefined) args.push('--workers', String(o.workers));
  if (o.replication === false) args.push('--no-replication');
  const logFile = path.join(c.dir, 'logs', `walflow-${++runnerSeq}.log`);
  const log = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: walflowEnv(c, { WALFLOW_LEASE_MS: String(o.leaseMs ?? 2000), ...o.env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let readyResolve!: () => void;
  let readyReject!: (err: Error) => void;
  const ready = new Promise<void>((res, rej) => {
    readyResolve = res;
    readyReject = rej;
  });
  ready.catch(() => undefined);
  const onData = (d: Buffer): void => {
    fs.writeSync(log, d);
    if (out.length < 200_000) out += d.toString();
    if (out.includes('"msg":"walflow running"')) readyResolve();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      fs.closeSync(log);
      readyReject(new Error(`walflow run exited (${code ?? signal}) before it was ready:\n${out.slice(-3000)}`));
      resolve({ code, signal });
    }),
  );
  const runner: Runner = {
    child, pid: child.pid!, logFile, ready, exited,
    alive: () => child.exitCode === null && child.signalCode === null,
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
    output: () => out,
  };
  spawned.add(runner);
  void exited.then(() => spawned.delete(runner));
  return runner;
}

export async function waitReady(r: Runner, timeoutMs = 60_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([r.ready, new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`walflow run did not become ready in ${timeoutMs} ms:\n${r.output().slice(-3000)}`)), timeoutMs)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Peak and current resident memory of a process, from /proc (Linux). */
export function memoryOf(pid: number): { rssMb: number; hwmMb: number } | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
    return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Load

export interface ItemsLoadOptions {
  rows: number;
  /** Row updates per inserted row, on average. */
  updatesPerRow?: number;
  /** Row deletes per inserted row, on average. */
  deletesPerRow?: number;
  /** Spread the inserts over about this long. */
  durationMs: number;
  /** Ids divisible by this are poison rows (0: none). */
  poisonEvery?: number;
  /** First id (several loads on one table). */
  firstId?: number;
}

export interface LoadStats {
  transactions: number;
  failedTransactions: number;
}

/** Random-size transactions of inserts, updates and deletes on chaos_items; errors (a server crash) are ridden out. */
export async function itemsLoad(url: string, o: ItemsLoadOptions): Promise<LoadStats> {
  const first = o.firstId ?? 1;
  const poisonEvery = o.poisonEvery ?? 0;
  const updates = o.updatesPerRow ?? 0.5;
  const deletes = o.deletesPerRow ?? 0.1;
  const stats: LoadStats = { transactions: 0, failedTransactions: 0 };
  const live: number[] = [];
  let c: pg.Client | undefined;
  const t0 = Date.now();
  let next = first;
  const exec = async (sql: string, params: unknown[]): Promise<boolean> => {
    try {
      if (!c) {
        c = new pg.Client({ connectionString: url });
        c.on('error', () => undefined);
        await c.connect();
      }
      await c.query(sql, params);
      stats.transactions++;
      return true;
    } catch {
      stats.failedTransactions++;
      await c?.end().catch(() => undefined);
      c = undefined;
      await sleep(150);
      return false;
    }
  };
  const pick = (n: number): number[] => {
    const out = new Set<number>();
    for (let i = 0; i < n && live.length > 0; i++) out.add(live[Math.floor(Math.random() * live.length)]!);
    return [...out];
  };
  while (next < first + o.rows) {
    const n = Math.min(1 + Math.floor(Math.random() * 40), first + o.rows - next);
    const ok = await exec(
      `INSERT INTO chaos_items (id, v, body)
       SELECT g, 0, CASE WHEN $3::int > 0 AND g % $3::int = 0 THEN 'poison ' ELSE 'item ' END || g FROM generate_series($1::int, $2::int) g
       ON CONFLICT (id) DO NOTHING`,
      [next, next + n - 1, poisonEvery],
    );
    if (ok) for (let id = next; id < next + n; id++) live.push(id);
    next += n;
    // Updates and deletes of random live rows, in proportion.
    let u = n * updates;
    while (u > 0) {
      const k = Math.max(1, Math.min(Math.round(u), 1 + Math.floor(Math.random() * 20)));
      await exec(
        `UPDATE chaos_items SET v = v + 1, body = CASE WHEN body LIKE 'poison%' THEN body ELSE 'item ' || id || ' v' || (v + 1) END WHERE id = ANY($1::int[])`,
        [pick(k)],
      );
      u -= k;
    }
    let d = n * deletes;
    while (d > 0 && Math.random() < d) {
      const ids = pick(1 + Math.floor(Math.random() * 3));
      if (await exec(`DELETE FROM chaos_items WHERE id = ANY($1::int[])`, [ids])) {
        for (const id of ids) live.splice(live.indexOf(id), 1);
      }
      d -= ids.length || 1;
    }
    // Pace: the inserts spread over durationMs.
    const due = t0 + ((next - first) / o.rows) * o.durationMs;
    if (due > Date.now()) await sleep(due - Date.now());
  }
  await c?.end().catch(() => undefined);
  return stats;
}

// ---------------------------------------------------------------------------------------------
// Invariants

export interface Invariants {
  /** Source rows (at the end). */
  rows: number;
  /** Changes committed to the source (from the audit trigger). */
  changes: number;
  runs: number;
  completed: number;
  superseded: number;
  failedExpected: number;
  failedUnexpected: number;
  stuck: number;
  lost: number;
  duplicated: number;
  /** Steps that started again after their checkpoint had committed (never expected). */
  reexecuted: number;
  details: Record<string, number>;
  failures: string[];
}

/** WAL → runs, per key: a run for every committed change, and no more. */
async function startsVsChanges(pool: pg.Pool, pipeline: string, table: string): Promise<{ lost: number; dup: number; changes: number; runs: number }> {
  const [r] = await q<{ lost: string; dup: string; changes: string; runs: string }>(pool, `
    WITH a AS (SELECT id::text AS key, count(*) AS n FROM chaos_audit WHERE tbl = $2 GROUP BY 1),
         r AS (SELECT key, count(*) AS n FROM walflow.runs WHERE pipeline = $1 GROUP BY 1)
    SELECT coalesce(sum(greatest(coalesce(a.n, 0) - coalesce(r.n, 0), 0)), 0) AS lost,
           coalesce(sum(greatest(coalesce(r.n, 0) - coalesce(a.n, 0), 0)), 0) AS dup,
           coalesce(sum(a.n), 0) AS changes, coalesce(sum(r.n), 0) AS runs
      FROM a FULL JOIN r USING (key)`, [pipeline, table]);
  return { lost: Number(r!.lost), dup: Number(r!.dup), changes: Number(r!.changes), runs: Number(r!.runs) };
}

async function statusCounts(pool: pg.Pool, pipeline: string): Promise<Record<string, number>> {
  const rows = await q<{ status: string; n: string }>(pool, `SELECT status, count(*) AS n FROM walflow.runs WHERE pipeline = $1 GROUP BY 1`, [pipeline]);
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
}

export async function unfinished(pool: pg.Pool, pipeline?: string): Promise<number> {
  return num(pool, `SELECT count(*) AS n FROM walflow.runs WHERE status IN ('queued', 'running', 'waiting') AND ($1::text IS NULL OR pipeline = $1)`, [pipeline ?? null]);
}

/**
 * Waits until every committed change has its run and no run is queued, running or waiting
 * (or the timeout passes: the check then reports what is stuck).
 */
export async function settle(pool: pg.Pool, pipeline: string, table: string | null, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const pending = await unfinished(pool, pipeline);
    const missing = table ? (await startsVsChanges(pool, pipeline, table)).lost : 0;
    if (pending === 0 && missing === 0) return true;
    await sleep(250);
  }
  return false;
}

/** chaos-counted: starts vs changes, exactly-once effects, mirror equal to the source, failures only for poison rows. */
export async function checkCounted(pool: pg.Pool, o: { poisonEvery?: number } = {}): Promise<Invariants> {
  const P = 'chaos-counted';
  const poisonEvery = o.poisonEvery ?? 0;
  const starts = await startsVsChanges(pool, P, 'chaos_items');
  const st = await statusCounts(pool, P);
  const isPoison = poisonEvery > 0 ? `(key::int % ${poisonEvery} = 0)` : 'false';
  const failedExpected = await num(pool, `SELECT count(*) AS n FROM walflow.runs WHERE pipeline = $1 AND status = 'failed' AND ${isPoison} AND error->>'message' LIKE 'poison row %'`, [P]);
  // Each unexpected failure with its attempts (step_errors), for the post-mortem.
  const failures = (await q<{ key: string; msg: string; attempts: string | null }>(pool,
    `SELECT r.key, r.error->>'message' AS msg,
            (SELECT string_agg(e.attempt || ': ' || left(e.error->>'message', 120), '; ' ORDER BY e.failed_at) FROM walflow.step_errors e WHERE e.run_id = r.id) AS attempts
       FROM walflow.runs r WHERE r.pipeline = $1 AND r.status = 'failed' AND NOT (${isPoison} AND r.error->>'message' LIKE 'poison row %') LIMIT 5`, [P]))
    .map((r) => `key ${r.key}: ${r.msg} [attempts: ${r.attempts ?? 'none recorded'}]`);
  const dupEffects = await num(pool, `SELECT coalesce(sum(n - 1), 0) AS n FROM (SELECT count(*) AS n FROM chaos_effects WHERE run_id IN (SELECT id FROM walflow.runs WHERE pipeline = $1) GROUP BY run_id, step HAVING count(*) > 1) d`, [P]);
  const phantomEffects = await num(pool, `SELECT count(*) AS n FROM chaos_effects e JOIN walflow.runs r ON r.id = e.run_id WHERE r.pipeline = $1 AND r.status <> 'completed'`, [P]);
  const missingEffects = await num(pool, `SELECT count(*) AS n FROM walflow.runs r WHERE r.pipeline = $1 AND r.status = 'completed' AND NOT EXISTS (SELECT 1 FROM chaos_effects e WHERE e.run_id = r.id)`, [P]);
  const notPoison = (col: string) => (poisonEvery > 0 ? `(${col} % ${poisonEvery} <> 0)` : 'true');
  // The current version of every (non-poison) row is what the last run applied; deleted rows are gone.
  const staleState = await num(pool, `SELECT count(*) AS n FROM (
      (SELECT id, v, body FROM chaos_items WHERE ${notPoison('id')} EXCEPT SELECT id, v, body FROM chaos_mirror)
      UNION ALL
      (SELECT id, v, body FROM chaos_mirror WHERE ${notPoison('id')} EXCEPT SELECT id, v, body FROM chaos_items)) x`);
  const poisonMirrored = poisonEvery > 0 ? await num(pool, `SELECT count(*) AS n FROM chaos_mirror WHERE id % ${poisonEvery} = 0`) : 0;
  const reexecuted = await num(pool, `SELECT count(*) AS n FROM chaos_reexec`);
  const rows = await num(pool, `SELECT count(*) AS n FROM chaos_items`);
  const stuck = (st.queued ?? 0) + (st.running ?? 0) + (st.waiting ?? 0);
  return {
    rows, changes: starts.changes, runs: starts.runs,
    completed: st.completed ?? 0, superseded: st.superseded ?? 0,
    failedExpected, failedUnexpected: (st.failed ?? 0) - failedExpected, stuck,
    lost: starts.lost + missingEffects + staleState,
    duplicated: starts.dup + dupEffects + phantomEffects + poisonMirrored,
    reexecuted,
    details: { lostStarts: starts.lost, dupStarts: starts.dup, dupEffects, phantomEffects, missingEffects, staleState, poisonMirrored },
    failures,
  };
}

// ---------------------------------------------------------------------------------------------
// The slot


/**
 * The slot caught up with the last write: its confirmed_flush_lsn is past the commit LSN of the
 * newest source change (every committed change has its run: the starts-vs-changes check), i.e.
 * the last source transaction was acknowledged, not just received.
 */
export async function slotCaughtUp(pool: pg.Pool, slot: string, pipeline: string, timeoutMs = 20_000): Promise<{ ok: boolean; confirmed: string | null; target: string | null }> {
  const deadline = Date.now() + timeoutMs;
  let confirmed: string | null = null;
  let target: string | null = null;
  while (Date.now() < deadline) {
    const rows = await q<{ c: string | null; t: string | null; ok: boolean | null }>(pool, `
      SELECT s.confirmed_flush_lsn::text AS c, r.t::text AS t, s.confirmed_flush_lsn > r.t AS ok
        FROM pg_replication_slots s, (SELECT max(source_lsn) AS t FROM walflow.runs WHERE pipeline = $2) r
       WHERE s.slot_name = $1`, [slot, pipeline]);
    confirmed = rows[0]?.c ?? null;
    target = rows[0]?.t ?? null;
    if (rows[0]?.ok) return { ok: true, confirmed, target };
    await sleep(100);
  }
  return { ok: false, confirmed, target };
}

/** Which of `runners` leads replication now (by the pid in walflow.replication_state.leader_id), if any. */
export async function leaderPid(pool: pg.Pool, slot = 'walflow'): Promise<number | undefined> {
  const rows = await q<{ leader_id: string | null; active: boolean | null }>(pool,
    `SELECT st.leader_id, s.active FROM walflow.replication_state st LEFT JOIN pg_replication_slots s ON s.slot_name = st.slot_name WHERE st.slot_name = $1`, [slot]);
  const id = rows[0]?.leader_id;
  if (!id || !rows[0]?.active) return undefined;
  return Number(id.split(':')[1]);
}

/** Scans strings for a secret; returns where it was found. */
export async function secretLeaks(pool: pg.Pool, secret: string, logFiles: string[]): Promise<string[]> {
  const found: string[] = [];
  const tables = [
    ['walflow.runs', 'input::text || coalesce(error::text, \'\')'],
    ['walflow.steps', 'coalesce(output::text, \'\')'],
    ['walflow.step_errors', 'error::text'],
    ['walflow.replication_errors', 'message || coalesce(detail::text, \'\')'],
    ['walflow.pipelines', 'coalesce(source::text, \'\') || array_to_string(steps, \',\')'],
  ];
  for (const [t, expr] of tables) {
    const n = await num(pool, `SELECT count(*) AS n FROM ${t} WHERE strpos(${expr}, $1) > 0`, [secret]);
    if (n > 0) found.push(`${t} (${n} rows)`);
  }
  for (const f of logFiles) if (fs.existsSync(f) && fs.readFileSync(f, 'utf8').includes(secret)) found.push(f);
  return found;
}

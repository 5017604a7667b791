// Backfill: a run for every existing row of a pipeline's source table, with the same input shape as
// a WAL-started run (op 'backfill', the row read from the table). Used by `walflow backfill` and by
// the replication leader's automatic initial backfill (auto-backfill.ts).
//
// Why it is consistent with the stream (docs/guarantees.md, "Initial backfill"):
// 1. It first waits until every transaction of this database running when it starts has ended
//    (other databases' cannot write the table). Started after the table joined the publication,
//    this covers a transaction that wrote before that and commits after it: the stream decodes it
//    without the table, so the backfill must see its rows.
// 2. Each batch is one short transaction that locks the backfill's row (so two drivers — a leader
//    and a `walflow backfill`, or two leaders during a failover — take turns and continue from the
//    committed cursor), reads the next rows in key order FOR SHARE, starts their runs and records
//    the cursor. FOR SHARE reads each row's latest committed version and makes a concurrent UPDATE
//    or DELETE of it wait until the batch commits: that change's WAL run is inserted after the
//    backfill's run, and latest-wins (runs of a key execute in order; a newer start supersedes a
//    queued one) leaves the newest version last. A change committed earlier is still ahead in the
//    stream or already queued; either way the last run of the key carries the latest version.
import pg from 'pg';
import type { Queryable } from '../db/queryable.js';
import type { Engine } from '../engine/engine.js';
import { UserError } from '../errors.js';
import type { Pipeline } from '../pipeline/define.js';
import type { SourceRunInput } from '../pipeline/types.js';
import { runKeyOf } from '../pipeline/run-identity.js';
import { loadSourceTables, parseTableName, qualified } from '../pipeline/source-tables.js';
import { sleep } from '../util/sleep.js';

export interface BackfillProgress {
  id: number;
  done: number;
  total: number;
  finished: boolean;
}

export interface BackfillOptions {
  batchSize?: number;
  /** Start over instead of resuming an unfinished backfill (or saying a finished one left nothing to do). */
  restart?: boolean;
  onProgress?: (p: BackfillProgress) => void;
  signal?: AbortSignal;
  /** How often to look whether earlier transactions ended (default 200 ms). */
  pollMs?: number;
  /** Told once when the backfill waits for transactions that were running when it started. */
  onWaiting?: (transactions: number) => void;
}

/** `walflow backfill` of a pipeline whose last backfill finished: nothing to do (exit 3). */
export class NothingToBackfill extends UserError {
  constructor(pipeline: string, id: number, finishedAt: Date) {
    super(`backfill ${id} of pipeline "${pipeline}" finished at ${finishedAt.toISOString()}; nothing to do (every later change streams). Pass --restart to start over`, 3);
  }
}

const ident = (s: string) => pg.escapeIdentifier(s);

/**
 * The xids of the transactions running now in THIS database (prepared ones included). Only they can
 * have written our source table: a transaction in another database of the cluster cannot, so it
 * must not hold up the backfill (under a busy shared server, other databases' long transactions
 * delayed live reloads by minutes when the wait used the cluster-wide pg_current_snapshot()).
 * pg_locks is readable by every role; each transaction holds the ExclusiveLock on its own xid from
 * the moment it gets one (before it writes anything) until after its commit is visible. A backend's
 * database comes from pg_stat_activity, whose datname is visible even for other roles' sessions.
 */
const RUNNING_HERE = `
  SELECT l.transactionid::text AS xid
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
   WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted AND a.datname = current_database()
  UNION
  SELECT transaction::text FROM pg_prepared_xacts WHERE database = current_database()`;

async function runningHere(db: Queryable): Promise<Set<string>> {
  return new Set((await db.query<{ xid: string }>(RUNNING_HERE)).rows.map((r) => r.xid));
}

/** Waits until every transaction of this database that holds an xid now has committed or aborted (step 1 above). */
export async function waitForRunningTransactions(db: Queryable, signal?: AbortSignal, pollMs = 200, onWaiting?: (n: number) => void): Promise<void> {
  let pending = [...await runningHere(db)];
  let told = false;
  while (pending.length > 0 && !signal?.aborted) {
    // xids are not reused within a wraparound cycle: an xid no longer locked has ended.
    const now = await runningHere(db);
    pending = pending.filter((x) => now.has(x));
    if (pending.length > 0 && !told) {
      told = true;
      onWaiting?.(pending.length);
    }
    if (pending.length > 0) await sleep(pollMs, signal);
  }
}

interface BackfillRow { id: string; last_key: unknown[] | null; total: string; done: string; finished_at: Date | null }

/** The unfinished backfill of this pipeline, or a new one; null when the last one finished and `restart` is not set. */
async function openBackfill(db: Queryable, pipeline: Pipeline, source: string, keyCols: string[], q: string, restart: boolean): Promise<BackfillRow | null> {
  if (restart) await db.query(`UPDATE walflow.backfills SET finished_at = now() WHERE pipeline = $1 AND finished_at IS NULL`, [pipeline.name]);
  const open = (await db.query<BackfillRow>(`SELECT id, last_key, total, done, finished_at FROM walflow.backfills WHERE pipeline = $1 AND finished_at IS NULL`, [pipeline.name])).rows[0];
  if (open) return open;
  if (!restart) {
    const last = (await db.query<{ id: string; finished_at: Date }>(
      `SELECT id, finished_at FROM walflow.backfills WHERE pipeline = $1 AND source = $2 ORDER BY id DESC LIMIT 1`, [pipeline.name, source],
    )).rows[0];
    if (last) return null;
  }
  return (await db.query<BackfillRow>(
    `INSERT INTO walflow.backfills (pipeline, source, key_columns, total, version) VALUES ($1, $2, $3, $4, $5)
     RETURNING id, last_key, total, done, finished_at`,
    [pipeline.name, source, keyCols, await estimateRows(db, q), pipeline.version],
  )).rows[0]!;
}

/** pg_class.reltuples is an estimate; count exactly only when it is small enough to be cheap. */
export async function estimateRows(db: Queryable, q: string): Promise<number> {
  const est = Number((await db.query(`SELECT greatest(reltuples, 0)::bigint AS n FROM pg_class WHERE oid = $1::regclass`, [q])).rows[0].n);
  return est < 1_000_000 ? Number((await db.query(`SELECT count(*) AS n FROM ${q}`)).rows[0].n) : est;
}

/**
 * Runs (or resumes) the pipeline's backfill to its end. With `backfillId`, drives that backfill
 * (an automatic one); otherwise the pipeline's unfinished one, or a new one, or throws
 * NothingToBackfill when the last one finished (unless `restart`).
 */
export async function backfill(engine: Engine, pipeline: Pipeline, opts: BackfillOptions & { backfillId?: number } = {}): Promise<BackfillProgress> {
  if (!pipeline.source) throw new UserError(`pipeline "${pipeline.name}" has no source table to backfill from`);
  const batchSize = opts.batchSize ?? 1000;
  const db = engine.pool;
  const name = parseTableName(pipeline.source.table);
  const source = qualified(name);
  const table = (await loadSourceTables(db, [name])).get(source);
  if (!table) throw new UserError(`source table ${source} of pipeline "${pipeline.name}" does not exist`);
  const keyCols = pipeline.source.key ?? table.primaryKey;
  if (keyCols.length === 0) throw new UserError(`${source} has no primary key: declare source.key in pipeline "${pipeline.name}"`);
  const q = `${ident(name.schema)}.${ident(name.name)}`;

  let state: BackfillRow | null;
  if (opts.backfillId !== undefined) {
    state = (await db.query<BackfillRow>(`SELECT id, last_key, total, done, finished_at FROM walflow.backfills WHERE id = $1`, [opts.backfillId])).rows[0] ?? null;
    if (!state) throw new Error(`backfill ${opts.backfillId} does not exist`);
  } else {
    state = await openBackfill(db, pipeline, source, keyCols, q, opts.restart === true);
    if (!state) {
      const last = (await db.query<{ id: string; finished_at: Date }>(`SELECT id, finished_at FROM walflow.backfills WHERE pipeline = $1 ORDER BY id DESC LIMIT 1`, [pipeline.name])).rows[0]!;
      throw new NothingToBackfill(pipeline.name, Number(last.id), last.finished_at);
    }
  }
  const id = Number(state.id);
  let done = Number(state.done);
  const total = Number(state.total);
  const report = (finished: boolean) => opts.onProgress?.({ id, done, total: Math.max(total, done), finished });
  if (state.finished_at) return { id, done, total: Math.max(total, done), finished: true };
  report(false);

  await waitForRunningTransactions(db, opts.signal, opts.pollMs, opts.onWaiting);
  const cols = keyCols.map(ident).join(', ');
  let finished = false;
  while (!opts.signal?.aborted && !finished) {
    const client = await db.connect();
    // A checked-out client has no pool listener: a dropped connection must fail the query, not the process.
    const onError = (): void => undefined;
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const cur = (await client.query<BackfillRow>(`SELECT id, last_key, total, done, finished_at FROM walflow.backfills WHERE id = $1 FOR UPDATE`, [id])).rows[0];
      if (!cur || cur.finished_at) {
        await client.query('ROLLBACK');
        finished = true;
        break;
      }
      const lastKey = cur.last_key;
      done = Number(cur.done);
      const after = lastKey ? `WHERE (${cols}) > (${keyCols.map((_, i) => `$${i + 2}`).join(', ')})` : '';
      const { rows } = await client.query<Record<string, unknown>>(
        `SELECT * FROM ${q} ${after} ORDER BY ${cols} LIMIT $1 FOR SHARE`, [batchSize, ...(lastKey ?? [])],
      );
      if (rows.length > 0) {
        await engine.startMany(
          pipeline.name,
          rows.map((row) => {
            const key = Object.fromEntries(keyCols.map((c) => [c, row[c]]));
            // The same key text as WAL-started runs of this row get, so that the two serialize.
            const k = runKeyOf(key, keyCols)!;
            const input: Extract<SourceRunInput, { op: 'backfill' }> = { op: 'backfill', table: source, key, row, old: null, lsn: null, index: null, backfill: id };
            return { input, key: k, dedupeId: `backfill:${id}:${k}` };
          }),
          client,
        );
        done += rows.length;
        await client.query(`UPDATE walflow.backfills SET last_key = $2, done = $3, updated_at = now() WHERE id = $1`,
          [id, JSON.stringify(keyCols.map((c) => rows.at(-1)![c])), done]);
      }
      if (rows.length < batchSize) {
        await client.query(`UPDATE walflow.backfills SET finished_at = now(), updated_at = now() WHERE id = $1`, [id]);
        finished = true;
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.removeListener('error', onError);
      client.release();
    }
    report(finished);
  }
  return { id, done, total: Math.max(total, done), finished };
}

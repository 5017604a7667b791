// Backfill: a run for every existing row of a pipeline's source table. Rows are read in key order
// in pages; each page's run starts and the progress marker commit in one transaction. Each run
// re-reads its row when it executes, and runs of one key are serialized and superseded by newer
// ones, so a live change arriving during the backfill is never overwritten by an older version.
import pg from 'pg';
import type { Engine } from '../engine/engine.js';
import { UserError } from '../errors.js';
import type { Pipeline } from '../pipeline/define.js';
import { runKeyOf } from '../replication/operators/extract-keys.js';
import { loadSourceTables, parseTableName } from '../replication/source-tables.js';

export interface BackfillProgress {
  id: number;
  done: number;
  total: number;
  finished: boolean;
}

export interface BackfillOptions {
  batchSize?: number;
  /** Start over instead of resuming an unfinished backfill. */
  restart?: boolean;
  onProgress?: (p: BackfillProgress) => void;
  signal?: AbortSignal;
}

const ident = (s: string) => pg.escapeIdentifier(s);


export async function backfill(engine: Engine, pipeline: Pipeline, opts: BackfillOptions = {}): Promise<BackfillProgress> {
  if (!pipeline.source) throw new UserError(`pipeline "${pipeline.name}" has no source table to backfill from`);
  const batchSize = opts.batchSize ?? 1000;
  const db = engine.pool;
  const name = parseTableName(pipeline.source.table);
  const table = (await loadSourceTables(db, [name])).get(`${name.schema}.${name.name}`);
  if (!table) throw new UserError(`source table ${name.schema}.${name.name} of pipeline "${pipeline.name}" does not exist`);
  const keyCols = pipeline.source.key ?? table.primaryKey;
  if (keyCols.length === 0) throw new UserError(`${name.schema}.${name.name} has no primary key: declare source.key in pipeline "${pipeline.name}"`);
  const q = `${ident(name.schema)}.${ident(name.name)}`;

  if (opts.restart) await db.query(`UPDATE walflow.backfills SET finished_at = now() WHERE pipeline = $1 AND finished_at IS NULL`, [pipeline.name]);
  let state = (await db.query(`SELECT id, last_key, total, done FROM walflow.backfills WHERE pipeline = $1 AND finished_at IS NULL`, [pipeline.name])).rows[0] as
    | { id: string; last_key: unknown[] | null; total: string; done: string }
    | undefined;
  if (!state) {
    // pg_class.reltuples is an estimate; count exactly only when it is small enough to be cheap.
    const est = Number((await db.query(`SELECT greatest(reltuples, 0)::bigint AS n FROM pg_class WHERE oid = $1::regclass`, [q])).rows[0].n);
    const total = est < 1_000_000 ? Number((await db.query(`SELECT count(*) AS n FROM ${q}`)).rows[0].n) : est;
    state = (await db.query(
      `INSERT INTO walflow.backfills (pipeline, source, key_columns, total) VALUES ($1, $2, $3, $4) RETURNING id, last_key, total, done`,
      [pipeline.name, `${name.schema}.${name.name}`, keyCols, total],
    )).rows[0];
  }
  const id = Number(state!.id);
  let lastKey = state!.last_key;
  let done = Number(state!.done);
  const total = Number(state!.total);
  const cols = keyCols.map(ident).join(', ');
  const report = (finished: boolean) => opts.onProgress?.({ id, done, total: Math.max(total, done), finished });
  report(false);

  while (!opts.signal?.aborted) {
    const after = lastKey ? `WHERE (${cols}) > (${keyCols.map((_, i) => `$${i + 2}`).join(', ')})` : '';
    const { rows } = await db.query<Record<string, unknown>>(
      `SELECT ${cols} FROM ${q} ${after} ORDER BY ${cols} LIMIT $1`,
      [batchSize, ...(lastKey ?? [])],
    );
    if (rows.length === 0) break;
    const client = await db.connect();
    // A checked-out client has no pool listener: a dropped connection must fail the query, not the process.
    const onError = (): void => undefined;
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      await engine.startMany(
        pipeline.name,
        rows.map((r) => {
          // The same key text as WAL-started runs of this row get, so that the two serialize.
          const k = runKeyOf(r, keyCols)!;
          return { input: { op: 'backfill', table: `${name.schema}.${name.name}`, key: r }, key: k, dedupeId: `backfill:${id}:${k}` };
        }),
        client,
      );
      lastKey = keyCols.map((c) => rows.at(-1)![c]);
      done += rows.length;
      await client.query(`UPDATE walflow.backfills SET last_key = $2, done = $3, updated_at = now() WHERE id = $1`, [id, JSON.stringify(lastKey), done]);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.removeListener('error', onError);
      client.release();
    }
    report(false);
  }
  if (opts.signal?.aborted) return { id, done, total, finished: false };
  await db.query(`UPDATE walflow.backfills SET finished_at = now() WHERE id = $1`, [id]);
  report(true);
  return { id, done, total: Math.max(total, done), finished: true };
}

// Writes one batch as ONE transaction: the run starts of every pipeline (idempotent on the change's
// dedupe id) and the changes that could not become runs. The durable position is not written
// here: several writers run at once, and the position may only move past a change once every
// writer has committed everything before it (see operators/write-lanes.ts, durable-recorder.ts).
import type pg from 'pg';
import type { Logger } from 'pino';
import { redactSecrets } from '../../errors.js';
import { startRunsFast } from '../../engine/fast-start.js';
import type { ErrorItem, ReplicationCounters, StartItem, WriteItem } from '../types.js';

export interface WriteResult {
  created: number;
  replayed: number;
  errors: number;
}

/**
 * How a batch's runs are started: `fast` inserts plainly (see engine/fast-start.ts); `safe` goes
 * through walflow.start_batch, which skips changes that already have their run (a replay after a
 * crash); `isolate` does that one change at a time, to record the ones PostgreSQL rejects.
 */
type Mode = 'fast' | 'safe' | 'isolate';

/** SQLSTATE classes that mean "this data cannot be stored": isolate the item, do not retry forever. */
function isDataError(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return code.startsWith('22') || code === 'WF002';
}

function payloadOf(item: StartItem): Record<string, unknown> {
  const p: Record<string, unknown> = { input: item.event, dedupe_id: item.dedupeId, source_lsn: item.event.lsn, source_index: item.event.index };
  if (item.runKey !== null) p.key = item.runKey;
  return p;
}

function startFailed(item: StartItem, err: unknown): ErrorItem {
  return {
    kind: 'error', pipeline: item.pipeline, table: item.event.table, op: item.event.op, errorKind: 'start_failed',
    message: `walflow.start_batch rejected the change: ${(err as Error).message}`,
    lsn: item.event.lsn, index: item.event.index, key: item.runKey, retriable: false,
    detail: { code: (err as { code?: string }).code ?? null },
  };
}

const INSERT_ERRORS = `
  INSERT INTO walflow.replication_errors (slot_name, pipeline, source_table, op, kind, message, lsn, source_index, key, detail, retriable)
  SELECT $1, e.pipeline, e.source_table, e.op, e.kind, e.message, e.lsn::pg_lsn, e.source_index, e.key, e.detail, e.retriable
  FROM jsonb_to_recordset($2::jsonb) AS e(pipeline text, source_table text, op text, kind text, message text, lsn text,
                                          source_index integer, key text, detail jsonb, retriable boolean)
  ON CONFLICT (slot_name, pipeline, lsn, source_index, kind) WHERE lsn IS NOT NULL DO NOTHING`;

export async function recordErrors(db: Pick<pg.ClientBase, 'query'>, slotName: string, errors: readonly ErrorItem[]): Promise<void> {
  if (errors.length === 0) return;
  const rows = errors.map((e) => ({
    pipeline: e.pipeline, source_table: e.table, op: e.op, kind: e.errorKind, message: redactSecrets(e.message),
    lsn: e.lsn, source_index: e.index, key: e.key, detail: e.detail ?? null, retriable: e.retriable,
  }));
  await db.query(INSERT_ERRORS, [slotName, JSON.stringify(rows)]);
}

export class RunWriter {
  constructor(
    private readonly pool: pg.Pool,
    private readonly slotName: string,
    private readonly counters: ReplicationCounters,
    private readonly log: Logger,
  ) {}

  async write(batch: readonly WriteItem[]): Promise<WriteResult> {
    let rejected: unknown;
    try {
      return await this.attempt(batch, 'fast');
    } catch (err) {
      if ((err as { code?: string }).code !== '23505') {
        if (!isDataError(err)) throw err;
        rejected = err;
      }
    }
    if (rejected === undefined) {
      // Some of these changes already have their run: we are replaying after a restart.
      this.log.debug('replication: replayed changes in this batch; writing it through start_batch');
      try {
        return await this.attempt(batch, 'safe');
      } catch (err) {
        if (!isDataError(err)) throw err;
        rejected = err;
      }
    }
    // One bad change must not block the slot forever: redo the batch item by item and record the
    // ones PostgreSQL rejects.
    this.log.warn({ err: rejected }, 'replication: a batch was rejected; retrying it change by change');
    return this.attempt(batch, 'isolate');
  }

  private async attempt(batch: readonly WriteItem[], mode: Mode): Promise<WriteResult> {
    const isolate = mode === 'isolate';
    const byPipeline = new Map<string, StartItem[]>();
    const errors: ErrorItem[] = [];
    for (const item of batch) {
      if (item.kind === 'start') {
        const list = byPipeline.get(item.pipeline);
        if (list) list.push(item);
        else byPipeline.set(item.pipeline, [item]);
      } else if (item.kind === 'error') errors.push(item);
    }

    const client = await this.pool.connect();
    // A checked-out client has no pool listener: a connection that dies between two statements
    // would otherwise be an uncaught 'error' event. The next statement fails and reports it.
    const onError = (): void => undefined;
    client.on('error', onError);
    let created = 0;
    let replayed = 0;
    try {
      await client.query('BEGIN');
      for (const [pipeline, items] of byPipeline) {
        const groups = isolate ? items.map((i) => [i]) : [items];
        for (const group of groups) {
          if (isolate) await client.query('SAVEPOINT item');
          try {
            if (mode === 'fast') {
              const fast = await startRunsFast(client, pipeline, group.map((i) => ({
                key: i.runKey, input: i.event, dedupe_id: i.dedupeId, source_lsn: i.event.lsn, source_index: i.event.index,
              })));
              if (fast.inserted === group.length) {
                created += fast.inserted;
                continue;
              }
              // Not registered: start_batch below raises the error that says so.
            }
            const { rows } = await client.query<{ created: string; total: string }>(
              'SELECT count(*) FILTER (WHERE created) AS created, count(*) AS total FROM walflow.start_batch($1, $2::jsonb)',
              [pipeline, JSON.stringify(group.map(payloadOf))],
            );
            created += Number(rows[0]?.created ?? 0);
            replayed += Number(rows[0]?.total ?? 0) - Number(rows[0]?.created ?? 0);
          } catch (err) {
            if (!isolate || !isDataError(err)) throw err;
            await client.query('ROLLBACK TO SAVEPOINT item');
            errors.push(startFailed(group[0]!, err));
          }
        }
      }
      await recordErrors(client, this.slotName, errors);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.removeListener('error', onError);
      client.release(err instanceof Error ? err : true);
      throw err;
    }
    client.removeListener('error', onError);
    client.release();
    this.counters.started += created;
    this.counters.replayed += replayed;
    this.counters.errors += errors.length;
    this.counters.batches += 1;
    for (const e of errors) this.log.error({ pipeline: e.pipeline, table: e.table, lsn: e.lsn, index: e.index, kind: e.errorKind }, e.message);
    return { created, replayed, errors: errors.length };
  }
}

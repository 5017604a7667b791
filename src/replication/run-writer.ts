// Writes one batch as ONE transaction: the run starts of every pipeline (walflow.start_batch,
// idempotent on the change's dedupe id), the changes that could not become runs, and the durable
// position (the last commit or heartbeat boundary in the batch). Only after COMMIT may the caller
// acknowledge that position to the slot.
import type pg from 'pg';
import type { Logger } from 'pino';
import { redactSecrets } from '../errors.js';
import { compareLsn } from './lsn.js';
import type { Boundary, ErrorItem, ReplicationCounters, StartItem, WriteItem } from './types.js';

export interface WriteResult {
  /** The new durable position, or null when the batch held no boundary. */
  durableLsn: string | null;
  created: number;
  replayed: number;
  errors: number;
}

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
    try {
      return await this.attempt(batch, false);
    } catch (err) {
      if (!isDataError(err)) throw err;
      // One bad change must not block the slot forever: redo the batch item by item and record
      // the ones PostgreSQL rejects.
      this.log.warn({ err }, 'replication: a batch was rejected; retrying it change by change');
      return this.attempt(batch, true);
    }
  }

  private async attempt(batch: readonly WriteItem[], isolate: boolean): Promise<WriteResult> {
    const byPipeline = new Map<string, StartItem[]>();
    const errors: ErrorItem[] = [];
    let boundary: Boundary | undefined;
    for (const item of batch) {
      if (item.kind === 'start') {
        const list = byPipeline.get(item.pipeline);
        if (list) list.push(item);
        else byPipeline.set(item.pipeline, [item]);
      } else if (item.kind === 'error') errors.push(item);
      else if (!boundary || compareLsn(item.endLsn, boundary.endLsn) > 0) boundary = item;
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
      if (boundary) {
        await client.query(
          `UPDATE walflow.replication_state SET durable_lsn = GREATEST(durable_lsn, $2::pg_lsn), updated_at = now() WHERE slot_name = $1`,
          [this.slotName, boundary.endLsn],
        );
      }
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
    return { durableLsn: boundary?.endLsn ?? null, created, replayed, errors: errors.length };
  }
}

// The automatic initial backfill, driven by the replication leader. After each publication sync
// (so every source table is published and routed), each loaded source pipeline is looked up in
// walflow.pipeline_sources: a (pipeline, source table) pair seen for the first time — or a new
// version of a pipeline with source.backfill 'on-version-change' — gets a walflow.backfills row in
// the same transaction that records it as seen, so a crash in between cannot lose the backfill.
// Every unfinished automatic backfill of a loaded pipeline is then driven in the background until
// it finishes or leadership ends; the next leader resumes it from its committed cursor.
import type { Logger } from 'pino';
import type { Engine } from '../engine/engine.js';
import type { Pipeline } from '../pipeline/define.js';
import { loadSourceTables, parseTableName, qualified } from '../pipeline/source-tables.js';
import { backfill, estimateRows } from './backfill.js';
import { sleep } from '../util/sleep.js';

const RETRY_MS = 5_000;

export class AutoBackfiller {
  /** Backfill id → its driver (one per backfill in this process). */
  private readonly drivers = new Map<number, Promise<void>>();

  constructor(
    private readonly engine: Engine,
    /** The source pipelines loaded now. */
    private readonly pipelines: () => readonly Pipeline[],
    private readonly log: Logger,
  ) {}

  /** Called by the leader after a publication sync. */
  async onPublished(signal: AbortSignal): Promise<void> {
    for (const p of this.pipelines()) {
      if (p.source) await this.recordSeen(p);
    }
    const loaded = new Map(this.pipelines().map((p) => [p.name, p]));
    const { rows } = await this.engine.pool.query<{ id: string; pipeline: string }>(
      `SELECT id, pipeline FROM walflow.backfills WHERE automatic AND finished_at IS NULL ORDER BY id`,
    );
    for (const r of rows) {
      const id = Number(r.id);
      if (this.drivers.has(id) || !loaded.has(r.pipeline)) continue;
      const driver = this.drive(id, r.pipeline, signal).finally(() => this.drivers.delete(id));
      this.drivers.set(id, driver);
    }
  }

  /** Records the pipeline as seen; creates its backfill when it is new (or a version that asks for one). */
  private async recordSeen(p: Pipeline): Promise<void> {
    const mode = p.source!.backfill ?? true;
    const name = parseTableName(p.source!.table);
    const source = qualified(name);
    const client = await this.engine.pool.connect();
    const onError = (): void => undefined;
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const inserted = await client.query(
        `INSERT INTO walflow.pipeline_sources (pipeline, source, version) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [p.name, source, p.version],
      );
      let reason: string | undefined;
      if (inserted.rowCount === 1) {
        reason = 'new pipeline';
      } else {
        const seen = (await client.query<{ version: string }>(`SELECT version FROM walflow.pipeline_sources WHERE pipeline = $1 AND source = $2 FOR UPDATE`, [p.name, source])).rows[0]!;
        if (seen.version !== p.version) {
          await client.query(`UPDATE walflow.pipeline_sources SET version = $3, updated_at = now() WHERE pipeline = $1 AND source = $2`, [p.name, source, p.version]);
          if (mode === 'on-version-change') reason = `version ${seen.version} → ${p.version}`;
        }
      }
      if (reason && mode !== false) {
        const table = (await loadSourceTables(client, [name])).get(source)!;
        const keyCols = p.source!.key ?? table.primaryKey;
        // A backfill of an older version still running is superseded by this one (it starts over).
        await client.query(`UPDATE walflow.backfills SET finished_at = now() WHERE pipeline = $1 AND finished_at IS NULL`, [p.name]);
        const total = await estimateRows(client, `${qualifiedIdent(name.schema)}.${qualifiedIdent(name.name)}`);
        const { rows } = await client.query<{ id: string }>(
          `INSERT INTO walflow.backfills (pipeline, source, key_columns, total, automatic, version) VALUES ($1, $2, $3, $4, true, $5) RETURNING id`,
          [p.name, source, keyCols, total, p.version],
        );
        this.log.info({ pipeline: p.name, version: p.version, source, backfill: Number(rows[0]!.id), rows: total, reason }, `initial backfill of pipeline "${p.name}" started (${reason})`);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.removeListener('error', onError);
      client.release();
    }
  }

  private async drive(id: number, pipelineName: string, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const p = this.pipelines().find((x) => x.name === pipelineName);
      if (!p) return; // removed: its backfill resumes if it comes back
      try {
        const r = await backfill(this.engine, p, {
          backfillId: id, signal,
          onWaiting: (n) => this.log.info({ pipeline: p.name, backfill: id, transactions: n }, `initial backfill of pipeline "${p.name}" waits for ${n} transaction(s) that were running when its table was published`),
        });
        if (r.finished) this.log.info({ pipeline: p.name, backfill: id, runs: r.done }, `initial backfill of pipeline "${p.name}" finished: ${r.done} run(s) started`);
        return;
      } catch (err) {
        if (signal.aborted) return;
        this.log.warn({ err, pipeline: pipelineName, backfill: id }, 'initial backfill failed; retrying');
        await sleep(RETRY_MS, signal);
      }
    }
  }

  /** Waits for the drivers to notice their signal (on stop). */
  async stopped(): Promise<void> {
    await Promise.all([...this.drivers.values()]);
  }
}

function qualifiedIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

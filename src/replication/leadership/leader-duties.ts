// What the leader does while it holds the slot's lock: reconcile publication, slot and state, then
// stream session after session (reconnecting with backoff) until the lock is lost or stop() is
// called, with a heartbeat that advances idle slots and watches for dropped source tables.
import type pg from 'pg';
import type { Logger } from 'pino';
import { RECONNECT_BACKOFF } from '../../config/defaults.js';
import { backoffMs } from '../../util/backoff.js';
import { sleep } from '../../util/sleep.js';
import { EMIT_HEARTBEAT, startHeartbeat } from './heartbeat.js';
import { maxLsn } from '../stream/lsn.js';
import { publishedTables, syncPublication } from '../setup/publication.js';
import { StreamSession, type SessionConfig } from '../stream/session.js';
import { ensureSlot, slotInvalidation } from '../setup/slot.js';
import { loadSourceTables, qualified, type SourceTable } from '../../pipeline/source-tables.js';
import { beat, loadDurableLsn, markLeader, clearLeader } from '../writing/state-store.js';
import { recordErrors } from '../writing/run-writer.js';
import type { ErrorItem } from '../types.js';

export interface LeadershipConfig extends Omit<SessionConfig, 'onDurable'> {
  leaderId: string;
  /** The source tables of the loaded pipelines, now (a live reload changes them). */
  tables: () => readonly SourceTable[];
  /**
   * Called by the leader after each publication sync (when it starts leading, and after a reload),
   * once the routing knows every published table: starts the initial backfills.
   */
  onPublished?: (signal: AbortSignal) => Promise<void>;
  heartbeatMs: number;
  onStatus: (s: { durableLsn?: string; lagBytes?: number | null; paused?: boolean; lastError?: string | null }) => void;
}

function tableError(slotTable: SourceTable, message: string, kind: string): ErrorItem {
  return { kind: 'error', pipeline: null, table: qualified(slotTable), op: null, errorKind: kind, message, lsn: null, index: null, key: null, retriable: false };
}

export class Leadership {
  private durable = '0/0';
  private session: StreamSession | undefined;
  private readonly reportedMissing = new Set<string>();
  /** Publication changes one at a time: the start of leading and live reloads may overlap. */
  private publishing: Promise<void> = Promise.resolve();
  private signal: AbortSignal | undefined;

  constructor(
    private readonly cfg: LeadershipConfig,
    private readonly pool: pg.Pool,
  ) {}

  private get log(): Logger {
    return this.cfg.log;
  }

  /** Leads until `signal` aborts; throws if setting up fails (the caller backs off and retries). */
  async run(signal: AbortSignal): Promise<void> {
    const { cfg, pool } = this;
    this.signal = signal;
    await this.publish();
    const slot = await ensureSlot(pool, cfg.slotName);
    if (slot.created) {
      this.log.info({ slot: cfg.slotName, lsn: slot.confirmedFlushLsn }, 'replication: slot created');
      await this.reportRecreatedSlot(slot.confirmedFlushLsn);
    }
    // Never behind the slot: the server would not resend what it already confirmed anyway.
    this.durable = maxLsn(await loadDurableLsn(pool, cfg.slotName, cfg.publicationName, slot.confirmedFlushLsn), slot.confirmedFlushLsn);
    await markLeader(pool, cfg.slotName, cfg.leaderId);
    cfg.onStatus({ durableLsn: this.durable, lastError: null });

    const hb = startHeartbeat(cfg.heartbeatMs, () => this.tick(), this.log);
    try {
      for (let attempt = 0; !signal.aborted; ) {
        const session = new StreamSession({ ...cfg, onDurable: (lsn) => this.onDurable(lsn) }, pool, this.durable);
        this.session = session;
        try {
          await session.run(signal);
        } catch (err) {
          if (signal.aborted) break;
          // An invalidated slot never heals: reconnecting would fail forever. Stop leading, loudly.
          const invalid = await slotInvalidation(pool, cfg.slotName).catch(() => undefined);
          if (invalid) throw invalid;
          this.log.warn({ err, attempt }, 'replication: stream failed; reconnecting from the durable position');
          cfg.onStatus({ lastError: (err as Error).message });
          await this.recordRetriable(err);
          await sleep(backoffMs(attempt++, RECONNECT_BACKOFF), signal);
          continue;
        }
        attempt = 0;
      }
    } finally {
      this.session = undefined;
      hb.stop();
      if (signal.aborted) await clearLeader(pool, cfg.slotName, cfg.leaderId).catch((err: unknown) => this.log.warn({ err }, 'replication: could not clear the leader on stop'));
    }
  }

  /**
   * Makes the publication equal to the loaded pipelines' tables. Only the leader calls it, and the
   * routing (shared with the stream) already knows every table it adds: a change decoded for a
   * published table that nothing routes would be dropped as filtered.
   */
  publish(): Promise<void> {
    const next = this.publishing.then(async () => {
      const { cfg, pool } = this;
      const change = await syncPublication(pool, cfg.publicationName, cfg.tables());
      if (change.created || change.added.length || change.removed.length) this.log.info(change, `replication: publication ${cfg.publicationName} updated`);
      if (cfg.onPublished && this.signal && !this.signal.aborted) await cfg.onPublished(this.signal);
    });
    this.publishing = next.catch(() => undefined);
    return next;
  }

  private onDurable(lsn: string): void {
    this.durable = maxLsn(this.durable, lsn);
    this.cfg.onStatus({ durableLsn: this.durable, paused: this.session?.gate.paused ?? false, lastError: null });
  }

  private async tick(): Promise<void> {
    const { cfg, pool } = this;
    await pool.query(EMIT_HEARTBEAT);
    const lagBytes = await beat(pool, cfg.slotName, cfg.leaderId, this.durable);
    cfg.onStatus({ lagBytes, paused: this.session?.gate.paused ?? false });
    await this.checkTables();
  }

  /** A dropped source table leaves the publication silently: surface it as an error, once. */
  private async checkTables(): Promise<void> {
    const { cfg, pool } = this;
    const tables = cfg.tables();
    const present = await loadSourceTables(pool, tables);
    const published = new Set((await publishedTables(pool, cfg.publicationName)).map(qualified));
    const errors: ErrorItem[] = [];
    let republish = false;
    for (const t of tables) {
      const name = qualified(t);
      const now = present.get(name);
      if (!now) {
        if (this.reportedMissing.has(name)) continue;
        this.reportedMissing.add(name);
        const pipelines = [...cfg.routesByTable.get(name) ?? []].map((r) => r.pipeline);
        errors.push(tableError(t, `source table ${name} was dropped; pipeline(s) ${pipelines.join(', ')} receive no more changes from it`, 'table_dropped'));
      } else if (!published.has(name)) {
        this.reportedMissing.delete(name);
        republish = true;
        errors.push(tableError(t, `source table ${name} was re-created; it is published again, but changes made before that were not captured`, 'table_recreated'));
      }
    }
    if (republish) await syncPublication(pool, cfg.publicationName, tables.filter((t) => present.has(qualified(t))));
    for (const e of errors) this.log.error({ table: e.table, kind: e.errorKind }, e.message);
    await recordErrors(pool, cfg.slotName, errors);
  }

  /** Errors a later attempt may get past (e.g. a pipeline not registered yet) are shown to operators. */
  /**
   * A new slot where walflow had streamed before (its state row exists): the old slot was dropped,
   * removed by the provider, or lost in a failover to a standby that did not have it. The changes
   * between the old durable position and the new slot's start were never streamed: say so loudly
   * and durably (walflow.replication_errors), with the recovery. Streaming goes on from the new slot.
   */
  private async reportRecreatedSlot(newLsn: string): Promise<void> {
    const { rows } = await this.pool.query<{ durable_lsn: string }>('SELECT durable_lsn::text FROM walflow.replication_state WHERE slot_name = $1', [this.cfg.slotName]);
    const previous = rows[0]?.durable_lsn;
    if (previous === undefined) return;
    const message = `replication slot "${this.cfg.slotName}" was missing and has been created again at ${newLsn}; walflow had streamed up to ${previous} from the old one, ` +
      'so changes committed in between (including any lost in a failover) were not streamed: run `walflow backfill <pipeline> --restart` for each pipeline with a source (docs/deploying.md)';
    this.log.error({ slot: this.cfg.slotName, previousDurableLsn: previous, newSlotLsn: newLsn }, message);
    await recordErrors(this.pool, this.cfg.slotName, [{
      kind: 'error', pipeline: null, table: null, op: null, errorKind: 'slot_recreated', message,
      lsn: null, index: null, key: null, retriable: false, detail: { previous_durable_lsn: previous, new_slot_lsn: newLsn },
    }]).catch((err: unknown) => this.log.warn({ err }, 'replication: could not record the recreated slot in walflow.replication_errors'));
  }

  private async recordRetriable(err: unknown): Promise<void> {
    const code = (err as { code?: string }).code;
    if (code !== 'WF001') return;
    const e: ErrorItem = {
      kind: 'error', pipeline: null, table: null, op: null, errorKind: 'pipeline_unknown', message: (err as Error).message,
      lsn: null, index: null, key: null, retriable: true,
    };
    await recordErrors(this.pool, this.cfg.slotName, [e]).catch(() => undefined);
  }
}

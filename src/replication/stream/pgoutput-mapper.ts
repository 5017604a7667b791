// Turns decoded pgoutput messages into WalItems: numbers changes within their transaction (several
// rows share one commit LSN, so (commit LSN, index) is the change's identity), notes which columns
// came as unchanged TOAST, and marks commit and heartbeat positions.
import type { Pgoutput } from 'pg-logical-replication';
import type { ChangeOp } from '../../pipeline/types.js';
import { formatLsn, parseLsn } from './lsn.js';
import type { Boundary, RawChange, Row, WalItem } from '../types.js';

/** The prefix of walflow's own logical messages (heartbeats). */
export const MESSAGE_PREFIX = 'walflow';

type Relation = Pgoutput.MessageRelation;

function tableName(rel: Relation): string {
  return `${rel.schema}.${rel.name}`;
}

/** bytea arrives as a Buffer; keep the JSON of a run input readable and PostgreSQL-shaped. */
function plainValue(v: unknown): unknown {
  return v instanceof Uint8Array ? `\\x${Buffer.from(v).toString('hex')}` : v;
}

/**
 * Copies a decoded tuple into a plain object. Columns that the library left `undefined` were sent
 * as `u` (unchanged TOAST, no old value to fall back on); they are left out and reported.
 */
function copyTuple(rel: Relation, tuple: Record<string, unknown>, missing?: string[]): Row {
  const row: Row = {};
  for (const col of rel.columns) {
    const v = tuple[col.name];
    if (v === undefined) missing?.push(col.name);
    else row[col.name] = plainValue(v);
  }
  return row;
}

function keyOf(rel: Relation, tuple: Record<string, unknown>): Row {
  const key: Row = {};
  for (const k of rel.keyColumns) key[k] = plainValue(tuple[k]);
  return key;
}

export class PgoutputMapper {
  private commitLsn: string | null = null;
  private index = 0;

  /** Maps one message; most produce one item, BEGIN and RELATION none, TRUNCATE one per table. */
  map(msg: Pgoutput.Message): WalItem[] {
    switch (msg.tag) {
      case 'begin':
        // Normalized to pg_lsn's own text form, so it compares and prints like SQL's.
        this.commitLsn = msg.commitLsn ? formatLsn(parseLsn(msg.commitLsn)) : null;
        this.index = 0;
        return [];
      case 'commit': {
        this.commitLsn = null;
        const commitTime = new Date(Number((msg.commitTime as unknown as bigint) / 1000n));
        return msg.commitEndLsn ? [{ kind: 'boundary', endLsn: formatLsn(parseLsn(msg.commitEndLsn)), source: 'commit', commitTime }] : [];
      }
      case 'insert':
        return [this.change('insert', msg.relation, copyTuple(msg.relation, msg.new), null, [])];
      case 'update': {
        const missing: string[] = [];
        const row = copyTuple(msg.relation, msg.new, missing);
        // Without a full old row, `old` carries the identity columns (old ones if the key changed).
        const old = msg.old ? copyTuple(msg.relation, msg.old) : keyOf(msg.relation, msg.key ?? msg.new);
        return [this.change('update', msg.relation, row, old, missing, msg.old !== null)];
      }
      case 'delete': {
        const old = msg.old ? copyTuple(msg.relation, msg.old) : keyOf(msg.relation, msg.key ?? {});
        return [this.change('delete', msg.relation, null, old, [], msg.old !== null)];
      }
      case 'truncate':
        return msg.relations.filter((r): r is Relation => r !== undefined).map((r) => this.change('truncate', r, null, null, []));
      case 'message':
        return this.message(msg);
      default:
        // relation/type messages are cached by the library's parser; origin carries nothing we use.
        return [];
    }
  }

  private message(msg: Pgoutput.MessageMessage): Boundary[] {
    // Only a non-transactional message marks a position outside every transaction.
    if (msg.transactional || msg.prefix !== MESSAGE_PREFIX || !msg.messageLsn) return [];
    return [{ kind: 'boundary', endLsn: formatLsn(parseLsn(msg.messageLsn)), source: 'heartbeat' }];
  }

  private change(op: ChangeOp, rel: Relation, row: Row | null, old: Row | null, missing: string[], oldIsFull = false): RawChange {
    if (this.commitLsn === null) throw new Error(`pgoutput: ${op} on ${tableName(rel)} outside a transaction`);
    return {
      kind: 'change',
      op,
      table: tableName(rel),
      schema: rel.schema,
      name: rel.name,
      identityColumns: rel.keyColumns,
      oldIsFull,
      row,
      old,
      unchangedToast: missing,
      toast: missing.length > 0 ? 'pending' : 'none',
      lsn: this.commitLsn,
      index: this.index++,
    };
  }
}

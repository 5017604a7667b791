// What flows between the stages of the replication source: changes decoded from WAL, positions
// that are safe to acknowledge, and what the writer turns into run starts or recorded errors.
import type { ChangeEvent, ChangeOp } from '../pipeline/types.js';

export type Row = Record<string, unknown>;

/** One row change (or one table of a TRUNCATE) as decoded, before any pipeline looks at it. */
export interface RawChange {
  readonly kind: 'change';
  readonly op: ChangeOp;
  /** "schema.table", unquoted. */
  readonly table: string;
  /** The same, as separate identifiers (for SQL that must quote them). */
  readonly schema: string;
  readonly name: string;
  /** Replica identity columns as the Relation message announced them. */
  readonly identityColumns: readonly string[];
  /** REPLICA IDENTITY FULL: `old` is the complete old row (update, delete). */
  readonly oldIsFull: boolean;
  row: Row | null;
  old: Row | null;
  /** Columns sent as "unchanged TOAST" (`u`): missing from `row` until re-read. */
  readonly unchangedToast: readonly string[];
  /** 'pending' until those columns are re-read; 'gone' when the row no longer exists. */
  toast: 'none' | 'pending' | 'filled' | 'gone';
  /** Commit LSN of the transaction and position of this change within it. */
  readonly lsn: string;
  readonly index: number;
}

/**
 * A position whose every earlier transaction has been delivered: a transaction's commit (its end
 * LSN) or a heartbeat message. Acknowledging it once everything before it is written is safe.
 */
export interface Boundary {
  readonly kind: 'boundary';
  readonly endLsn: string;
  readonly source: 'commit' | 'heartbeat';
  /** Commit time of the transaction (commit boundaries). */
  readonly commitTime?: Date;
}

export type WalItem = RawChange | Boundary;

/** How one pipeline reacts to one table, resolved against the catalog at startup. */
export interface Route {
  readonly pipeline: string;
  readonly table: string;
  readonly events: ReadonlySet<ChangeOp>;
  readonly columns: readonly string[] | undefined;
  readonly where: ((row: Row) => boolean) | undefined;
  readonly keyColumns: readonly string[];
}

export interface RoutedChange {
  readonly kind: 'routed';
  readonly change: RawChange;
  readonly route: Route;
}

/** A change's run input (SourceRunInput's WAL variants): from WAL, so it always has its position. */
export type WalChangeEvent = ChangeEvent & { lsn: string; index: number };

/** A run to start: one item of walflow.start_batch. */
export interface StartItem {
  readonly kind: 'start';
  readonly pipeline: string;
  readonly event: WalChangeEvent;
  readonly runKey: string | null;
  readonly dedupeId: string;
}

/** A change that could not become a run, recorded in walflow.replication_errors. */
export interface ErrorItem {
  readonly kind: 'error';
  readonly pipeline: string | null;
  readonly table: string | null;
  readonly op: ChangeOp | null;
  readonly errorKind: string;
  readonly message: string;
  readonly lsn: string | null;
  readonly index: number | null;
  readonly key: string | null;
  readonly detail?: Record<string, unknown>;
  readonly retriable: boolean;
}

/** A routed change that cannot become a run, as the error operators record it (not retriable). */
export function routedChangeError(item: RoutedChange, errorKind: string, message: string): ErrorItem {
  const { change, route } = item;
  return {
    kind: 'error', pipeline: route.pipeline, table: change.table, op: change.op, errorKind, message,
    lsn: change.lsn, index: change.index, key: null, retriable: false,
  };
}

export type WriteItem = StartItem | ErrorItem | Boundary;

/** Counters the metrics layer reads; monotonic for the life of a ReplicationSource. */
export interface ReplicationCounters {
  /** Row changes decoded from WAL (replays included). */
  received: number;
  /** Runs created (replays of already-started changes are not counted). */
  started: number;
  /** Starts that found their run already there (a replay after a restart). */
  replayed: number;
  /** Changes a pipeline's declaration filtered out (events, columns, where, row gone). */
  filtered: number;
  /** Changes recorded in walflow.replication_errors. */
  errors: number;
  /** Batches committed. */
  batches: number;
}

export function newCounters(): ReplicationCounters {
  return { received: 0, started: 0, replayed: 0, filtered: 0, errors: 0, batches: 0 };
}

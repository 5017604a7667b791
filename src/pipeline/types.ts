/* eslint-disable @typescript-eslint/no-explicit-any -- user-facing generics default to any so untyped pipelines stay ergonomic */
// What users write: pipelines of named steps, optionally fed by a table's changes.
import type { Logger } from 'pino';
import type pg from 'pg';
import type { ScheduleDefinition } from './schedule.js';

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** A database client inside the transaction that commits together with the step's checkpoint. */
export type TxClient = Pick<pg.PoolClient, 'query'>;

/** Something to run queries on: a pool or a client. */
export type Queryable = Pick<pg.Pool, 'query'>;

/** What setup and maintenance hooks get. */
export interface PipelineHookContext {
  db: Queryable;
  /** The database URL, for work that needs its own connection (CREATE INDEX CONCURRENTLY). */
  url: string;
  log: Logger;
  signal: AbortSignal;
}

export interface StepContext<TRunInput = unknown> {
  readonly runId: string;
  readonly pipeline: string;
  readonly key: string | null;
  /** 1 for the first attempt of this step. */
  readonly attempt: number;
  /** The run's input (for a WAL-started run: the change event). */
  readonly runInput: TRunInput;
  /** Aborted on timeout, cancel, lost lease or shutdown. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** Autocommit queries (reads, idempotent writes) outside the step's transaction. */
  readonly db: Queryable;
  /**
   * Opens (on first use) a transaction that commits atomically with this step's checkpoint, so its
   * writes happen exactly once. Do not await the network while holding it.
   */
  readonly tx: () => Promise<TxClient>;
  /** How many times this step has returned `again(...)` before this execution (0 the first time). */
  readonly repeats: number;
  /** The output of an earlier step of this run, by name (undefined if it has not run). */
  output(step: string): Promise<Json | undefined>;
}

export interface RetryPolicy {
  /** Total attempts including the first. Default 5. */
  maxAttempts?: number;
  /** First backoff delay. Default 1000 ms; doubles each attempt, with full jitter. */
  initialDelayMs?: number;
  /** Backoff ceiling. Default 5 minutes. */
  maxDelayMs?: number;
  /** Return false for errors that must not be retried (the run fails at once). */
  retryable?: (err: unknown) => boolean;
}

/**
 * Fields the engine reads from an error a step throws (any Error subclass may carry them; the
 * engine matches by shape, so steps need not import it):
 * - `retryable: false`: the run fails at once, whatever the retry policy.
 * - `retryAfterMs`: the next attempt starts no earlier than this many ms after the failure (a
 *   server's Retry-After). The policy's `maxDelayMs` still wins: a longer hint is cut to it, so a
 *   server cannot park a run for longer than its author allowed.
 */
export interface StepErrorHints {
  retryable?: boolean;
  retryAfterMs?: number;
}

export interface BatchOptions {
  /** Most items per call. */
  maxItems: number;
  /** Longest an item waits for others to fill the batch. */
  maxWaitMs: number;
}

export interface BatchItem<I, TRunInput = unknown> {
  ctx: StepContext<TRunInput>;
  input: I;
}

/** A length of time: milliseconds, or text such as '500ms', '30s', '10m', '2h', '1d', '1h30m'. */
export type Duration = number | string;

/** A step's condition: false skips the step (recorded as skipped; its output is its input). */
export type StepCondition<I = any, TRunInput = any> = (ctx: StepContext<TRunInput>, input: I) => boolean | Promise<boolean>;

interface StepBase<I = any, TRunInput = any> {
  name: string;
  /** Runs the step only when this returns true; otherwise it is skipped (docs/waits.md). */
  when?: StepCondition<I, TRunInput>;
  retry?: RetryPolicy;
  /** Per-attempt time limit; the signal aborts and the attempt fails with a retryable timeout. */
  timeoutMs?: number;
}

interface StepCommon<I = any, TRunInput = any> extends StepBase<I, TRunInput> {
  /** Most executions of this step in flight at once across all workers and processes. */
  concurrency?: number;
  /** Most times the step may return `again(...)` before the run fails. Default 1000. */
  maxRepeats?: number;
}

export interface SingleStep<I = any, O = any, TRunInput = any> extends StepCommon<I, TRunInput> {
  batch?: undefined;
  run: (ctx: StepContext<TRunInput>, input: I) => Promise<O> | O;
}

/**
 * A batched step is called with many runs' inputs at once and returns one result per item, in order.
 * Returning an Error for an item fails (or retries) only that item's run; throwing fails the call,
 * which is retried for every item per the retry policy.
 */
export interface BatchStep<I = any, O = any, TRunInput = any> extends StepCommon<I, TRunInput> {
  batch: BatchOptions;
  run: (items: BatchItem<I, TRunInput>[], signal: AbortSignal) => Promise<(O | Error)[]>;
}

/** What a sleep step's function may return: a duration from now, or an instant (a Date or ISO text). */
export type WakeTime = Duration | Date;

/**
 * Parks the run until a time; it holds no worker, connection or memory meanwhile. Its output is its
 * input, unchanged, so the next step sees what the step before the sleep returned.
 */
export interface SleepStep<I = any, TRunInput = any> extends StepBase<I, TRunInput> {
  sleep: WakeTime | ((ctx: StepContext<TRunInput>, input: I) => WakeTime | Promise<WakeTime>);
  run?: undefined;
  batch?: undefined;
  concurrency?: undefined;
  maxRepeats?: undefined;
}

/** What a signal wait returns: the payload of the signal it consumed, or a timed-out marker. */
export interface SignalResult<P = Json> {
  signal: string;
  payload: P | null;
  timedOut: boolean;
  /** When the consumed signal was sent (null on a timeout). */
  receivedAt: string | null;
}

/**
 * Parks the run until a signal of this name arrives for it (walflow.signal, `walflow signal`, or
 * sendSignal), or the timeout passes. A signal sent earlier waits in the run's mailbox; each signal
 * is consumed by exactly one wait. Output: a SignalResult.
 */
export interface SignalStep<I = any, TRunInput = any> extends StepBase<I, TRunInput> {
  waitFor: { signal: string; timeout?: Duration };
  run?: undefined;
  batch?: undefined;
  concurrency?: undefined;
  maxRepeats?: undefined;
}

/** One child run to start: a run of any pipeline, with its own input and key. */
export interface ChildRun {
  pipeline: string;
  input: { [key: string]: Json };
  key?: string | null;
}

/** One child's result, as a join with `onChildFailure: 'collect'` hands it on. */
export type ChildResult<O = Json> = { ok: true; output: O } | { ok: false; status: 'failed' | 'cancelled'; error: Json | null };

/**
 * Starts child runs and parks until they finish: `join: 'all'` (default) outputs their results in
 * order; `join: 'race'` outputs the first to complete and cancels the rest. A failed child fails
 * the parent (`onChildFailure: 'fail'`, default) or is handed on as `{ ok: false, … }` ('collect').
 */
export interface ChildrenStep<I = any, TRunInput = any> extends StepBase<I, TRunInput> {
  children: (ctx: StepContext<TRunInput>, input: I) => ChildRun[] | Promise<ChildRun[]>;
  join?: 'all' | 'race';
  onChildFailure?: 'fail' | 'collect';
  /** How long to wait for the children; then the run fails (their unfinished runs are cancelled). */
  timeout?: Duration;
  run?: undefined;
  batch?: undefined;
  concurrency?: undefined;
  maxRepeats?: undefined;
}

export type WaitStep<I = any, TRunInput = any> = SleepStep<I, TRunInput> | SignalStep<I, TRunInput> | ChildrenStep<I, TRunInput>;

export type StepDefinition<I = any, O = any, TRunInput = any> = SingleStep<I, O, TRunInput> | BatchStep<I, O, TRunInput> | WaitStep<I, TRunInput>;

/** The steps that run user code (everything but the waits). */
export type CodeStep<I = any, O = any, TRunInput = any> = SingleStep<I, O, TRunInput> | BatchStep<I, O, TRunInput>;

export type ChangeOp = 'insert' | 'update' | 'delete' | 'truncate';

/**
 * What every run of a source pipeline receives as `ctx.runInput`, whoever started it: a WAL change
 * (insert, update, delete, truncate), `walflow backfill` (backfill) or a start from SQL/TypeScript
 * (any of them, checked before the first step runs). Narrow on `op` before reading `row`/`key`.
 * - `table`: schema-qualified and unquoted, e.g. "public.documents".
 * - `key`: the source key columns (null only for truncate).
 * - `row`: the new row (insert, update) or the row as the backfill read it; null for delete, truncate.
 * - `old`: update: the whole old row with REPLICA IDENTITY FULL, else the identity (key) columns, or
 *   null; delete: the key columns at least, the whole old row with REPLICA IDENTITY FULL.
 * - `lsn`, `index`: commit LSN of the change's transaction and its position within it; null when
 *   the run did not come from WAL.
 * - `backfill`: the id of the backfill (walflow.backfills) that started the run.
 */
export type SourceRunInput<Row = Record<string, unknown>> =
  | { op: 'insert'; table: string; key: Record<string, unknown>; row: Row; old: null; lsn: string | null; index: number | null }
  | { op: 'update'; table: string; key: Record<string, unknown>; row: Row; old: Partial<Row> | null; lsn: string | null; index: number | null }
  | { op: 'delete'; table: string; key: Record<string, unknown>; row: null; old: Partial<Row>; lsn: string | null; index: number | null }
  | { op: 'truncate'; table: string; key: null; row: null; old: null; lsn: string | null; index: number | null }
  | { op: 'backfill'; table: string; key: Record<string, unknown>; row: Row; old: null; lsn: null; index: null; backfill: number };

export type SourceRunOp = SourceRunInput['op'];

/** The run input of a source pipeline that reacts to `Events`: those variants, plus backfill (always possible). */
export type SourceRunInputFor<Row = Record<string, unknown>, Events extends ChangeOp = ChangeOp> = Extract<SourceRunInput<Row>, { op: Events | 'backfill' }>;

/** A row change from logical replication, as a WAL-started run receives it: the WAL variants of SourceRunInput. */
export type ChangeEvent<Row = Record<string, unknown>> = Extract<SourceRunInput<Row>, { op: ChangeOp }>;

export interface SourceDefinition<Row = Record<string, unknown>, Events extends ChangeOp = ChangeOp> {
  /** Table name, optionally schema-qualified ("documents" means "public.documents"). */
  table: string;
  /** Changes that start runs. Others are filtered by this declaration (and counted). Default: all four. */
  events?: readonly Events[];
  /** An UPDATE that changes none of these columns starts nothing. Default: any column. */
  columns?: string[];
  /** Row predicate: rows for which it returns false start nothing (counted as filtered). */
  where?: (row: Row) => boolean;
  /** Key columns. Default: the table's primary key (or its replica identity index). */
  key?: string[];
  /**
   * The automatic initial backfill: when the replication leader first publishes this pipeline's
   * table, every existing row gets a run (consistent with the stream; docs/guarantees.md).
   * true (default): once, when the pipeline (name + source table) is new. 'on-version-change':
   * also whenever the pipeline's version changes (its rows must be recomputed). false: never.
   */
  backfill?: boolean | 'on-version-change';
}

/** Checks and returns a run's input; zod schemas fit (`z.object({...})`). Throw to refuse the input. */
export interface InputSchema<T> {
  parse(value: unknown): T;
}

export interface PipelineDefinition<TRunInput = any> {
  /** Letters, digits, '_', '-', '.'; unique among loaded pipelines. */
  name: string;
  /** Changes when the steps' meaning changes (model, chunking…). Default: derived from step names. */
  version?: string;
  /**
   * Roles that may start this pipeline's runs from SQL (`walflow.start`, `start_batch`): members of
   * any of them. Default (omitted): every role with USAGE on schema walflow. `[]`: walflow itself
   * only (its WAL, backfill, and roles with INSERT on walflow.runs). See docs/guarantees.md,
   * "Authorization".
   */
  startRoles?: string[];
  source?: SourceDefinition<any, ChangeOp>;
  /**
   * For a pipeline without a source: checks the input of every run before its first step (a run
   * whose input does not parse fails at once, not retried). What it returns is `ctx.runInput`.
   */
  input?: InputSchema<TRunInput>;
  /**
   * Pipelines without a source: start runs by themselves, on cron ticks or every interval (one or a
   * list). Exactly one run per tick across all processes; see "Schedules" in the README.
   */
  schedule?: ScheduleDefinition | ScheduleDefinition[];
  /** The key of a run started without one (WAL-started runs use the table key). */
  key?: (input: TRunInput) => string | null;
  steps: StepDefinition<any, any, TRunInput>[];
  /**
   * Tables this pipeline writes to. They are never published, and a pipeline whose source is one
   * of them is rejected at startup (it would start runs from its own writes).
   */
  targets?: string[];
  /** Runs when a walflow process that loads this pipeline starts (create target tables…). Idempotent. */
  setup?: (ctx: PipelineHookContext) => Promise<void>;
  /** Periodic upkeep while workers run (build an index once a table has rows…). */
  maintenance?: { everyMs: number; run: (ctx: PipelineHookContext) => Promise<void> };
  /** Releases what the pipeline holds (model workers…) when the process stops. */
  close?: () => Promise<void>;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- see types.ts */
// definePipeline(): validates a pipeline definition up front, so mistakes surface at load time
// with the pipeline and step named, not as a stuck run later.
import { createHash } from 'node:crypto';
import { UserError } from '../errors.js';
import { parseTableName } from './table-name.js';
import { isWaitStep } from './step-kinds.js';
import { isDurationText, parseDuration } from '../util/duration.js';
import { declaredInputCheck, sourceInputCheck } from './input-shape.js';
import { checkSchedule, type CatchUp, type ScheduleTiming } from './schedule.js';
import type {
  BatchStep, ChangeOp, InputSchema, PipelineDefinition, SingleStep, SourceDefinition, SourceRunInputFor, StepDefinition, WaitStep,
} from './types.js';

export type { PipelineDefinition, StepDefinition };

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,62}$/;
const OPS: ChangeOp[] = ['insert', 'update', 'delete', 'truncate'];

export interface Pipeline<TRunInput = any> extends PipelineDefinition<TRunInput> {
  readonly version: string;
  readonly stepNames: string[];
  /**
   * Checks a run's input before its steps run and returns it as they see it (`ctx.runInput`);
   * throws for an input that does not fit (the run fails, not retried). Absent: any input goes.
   */
  readonly checkInput?: (input: unknown) => TRunInput;
  /** The declared schedules, checked and named (none: []). */
  readonly schedules: readonly DeclaredSchedule[];
}

export interface DeclaredSchedule extends ScheduleTiming {
  name: string;
  catch_up: CatchUp;
  input: Record<string, unknown>;
}

function declaredSchedules(name: string, def: PipelineDefinition): DeclaredSchedule[] {
  if (def.schedule === undefined) return [];
  if (def.source) fail(name, 'a source pipeline cannot have a schedule (its runs come from its table); declare the schedule on a pipeline without a source');
  const list = Array.isArray(def.schedule) ? def.schedule : [def.schedule];
  const names = new Set<string>();
  return list.map((s, i) => {
    let timing: ScheduleTiming;
    try {
      timing = checkSchedule(s);
    } catch (err) {
      fail(name, (err as Error).message);
    }
    const sname = s.name ?? (i === 0 ? name : `${name}-${i + 1}`);
    if (typeof sname !== 'string' || !NAME.test(sname)) fail(name, `schedule.name must be letters, digits, _ . - (got ${JSON.stringify(s.name)})`);
    if (names.has(sname)) fail(name, `two schedules are named "${sname}"`);
    names.add(sname);
    return { ...timing, name: sname, catch_up: s.catchUp ?? 'latest', input: s.input ?? {} };
  });
}

/** A source pipeline's definition: its steps see the run input of the events it declares (plus backfill). */
export interface SourcePipelineDefinition<Row, Events extends ChangeOp> extends Omit<PipelineDefinition<SourceRunInputFor<Row, Events>>, 'source' | 'input'> {
  source: SourceDefinition<Row, Events>;
  /** A source pipeline's input shape is its source's (see SourceRunInput). */
  input?: undefined;
}

/** A source pipeline declaring exactly `events: [...Events]`, in any order. */
type DefineSource<Events extends ChangeOp> = <Row = Record<string, unknown>>(
  def: SourcePipelineDefinition<Row, Events> & { source: { events: readonly Events[] } },
) => Pipeline<SourceRunInputFor<Row, Events>>;

/**
 * definePipeline's signatures. TypeScript cannot infer `events` when the row type is given
 * explicitly (`definePipeline<User>({...})`: no partial inference), so there is one signature per
 * set of events, smallest first: the first that accepts the declared events is exactly them, and
 * `ctx.runInput` is narrowed to their variants. `events` omitted (or not a literal): all four.
 */
export type DefinePipeline =
  DefineSource<'insert'> & DefineSource<'update'> & DefineSource<'delete'> & DefineSource<'truncate'> &
  DefineSource<'insert' | 'update'> & DefineSource<'insert' | 'delete'> & DefineSource<'insert' | 'truncate'> &
  DefineSource<'update' | 'delete'> & DefineSource<'update' | 'truncate'> & DefineSource<'delete' | 'truncate'> &
  DefineSource<'insert' | 'update' | 'delete'> & DefineSource<'insert' | 'update' | 'truncate'> &
  DefineSource<'insert' | 'delete' | 'truncate'> & DefineSource<'update' | 'delete' | 'truncate'> &
  (<Row = Record<string, unknown>>(def: SourcePipelineDefinition<Row, ChangeOp>) => Pipeline<SourceRunInputFor<Row, ChangeOp>>) &
  /** Without a source, with a declared `input` schema: the run input is what it parses to. */
  (<TRunInput>(def: PipelineDefinition<TRunInput> & { source?: undefined; input: InputSchema<TRunInput> }) => Pipeline<TRunInput>) &
  /** Without a source: the run input is whatever the starter passes (type it with the type argument). */
  (<TRunInput = any>(def: PipelineDefinition<TRunInput> & { source?: undefined }) => Pipeline<TRunInput>);

function fail(pipeline: string, message: string): never {
  throw new UserError(`pipeline "${pipeline}": ${message}`);
}

function positiveInt(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

function checkStep(p: string, step: StepDefinition, i: number): void {
  if (!step || typeof step !== 'object') fail(p, `step ${i} is not an object`);
  if (typeof step.name !== 'string' || !NAME.test(step.name)) fail(p, `step ${i} needs a name of letters, digits, _ . - (got ${JSON.stringify(step.name)})`);
  if (step.when !== undefined && typeof step.when !== 'function') fail(p, `step "${step.name}": when must be a function (ctx, input) => boolean`);
  if (isWaitStep(step)) return checkWaitStep(p, step);
  if (typeof (step as { run?: unknown }).run !== 'function') fail(p, `step "${step.name}" has no run function (or one of sleep, waitFor, children)`);
  if (step.maxRepeats !== undefined && !positiveInt(step.maxRepeats)) fail(p, `step "${step.name}": maxRepeats must be a positive integer`);
  if (step.timeoutMs !== undefined && !positiveInt(step.timeoutMs)) fail(p, `step "${step.name}": timeoutMs must be a positive integer`);
  if (step.concurrency !== undefined && !positiveInt(step.concurrency)) fail(p, `step "${step.name}": concurrency must be a positive integer`);
  const r = step.retry;
  if (r) {
    if (r.maxAttempts !== undefined && !positiveInt(r.maxAttempts)) fail(p, `step "${step.name}": retry.maxAttempts must be a positive integer`);
    if (r.initialDelayMs !== undefined && !(Number.isFinite(r.initialDelayMs) && r.initialDelayMs >= 0)) fail(p, `step "${step.name}": retry.initialDelayMs must be ≥ 0`);
    if (r.maxDelayMs !== undefined && !(Number.isFinite(r.maxDelayMs) && r.maxDelayMs >= 0)) fail(p, `step "${step.name}": retry.maxDelayMs must be ≥ 0`);
  }
  if (step.batch !== undefined) {
    if (!positiveInt(step.batch.maxItems)) fail(p, `step "${step.name}": batch.maxItems must be a positive integer`);
    if (!(Number.isFinite(step.batch.maxWaitMs) && step.batch.maxWaitMs >= 0)) fail(p, `step "${step.name}": batch.maxWaitMs must be ≥ 0`);
  }
}

function checkWaitStep(p: string, step: WaitStep): void {
  const kinds = ['sleep', 'waitFor', 'children'].filter((k) => (step as unknown as Record<string, unknown>)[k] !== undefined);
  if (kinds.length > 1) fail(p, `step "${step.name}" declares ${kinds.join(' and ')}: a step is one kind of wait`);
  if ((step as { run?: unknown }).run !== undefined) fail(p, `step "${step.name}": a ${kinds[0]} step has no run function`);
  const duration = (v: unknown, what: string): void => {
    try {
      parseDuration(v, what);
    } catch (err) {
      fail(p, `step "${step.name}": ${(err as Error).message}`);
    }
  };
  if ('sleep' in step && step.sleep !== undefined) {
    const s = step.sleep;
    if (typeof s === 'string' && !isDurationText(s) && Number.isNaN(Date.parse(s))) duration(s, 'sleep');
    if (typeof s === 'number') duration(s, 'sleep');
    if (!(typeof s === 'string' || typeof s === 'number' || typeof s === 'function' || s instanceof Date)) fail(p, `step "${step.name}": sleep must be a duration, a Date, or a function of the run returning one`);
  } else if ('waitFor' in step && step.waitFor !== undefined) {
    const w = step.waitFor;
    if (typeof w !== 'object' || w === null || typeof w.signal !== 'string' || w.signal.trim() === '') fail(p, `step "${step.name}": waitFor needs { signal: 'name', timeout?: '24h' }`);
    if (w.timeout !== undefined) duration(w.timeout, 'waitFor.timeout');
  } else if ('children' in step) {
    if (typeof step.children !== 'function') fail(p, `step "${step.name}": children must be a function (ctx, input) => [{ pipeline, input, key? }]`);
    if (step.join !== undefined && step.join !== 'all' && step.join !== 'race') fail(p, `step "${step.name}": join must be 'all' or 'race'`);
    if (step.onChildFailure !== undefined && step.onChildFailure !== 'fail' && step.onChildFailure !== 'collect') fail(p, `step "${step.name}": onChildFailure must be 'fail' or 'collect'`);
    if (step.timeout !== undefined) duration(step.timeout, 'timeout');
  }
}

function define(def: PipelineDefinition): Pipeline {
  const name = def?.name;
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new UserError(`a pipeline needs a name of letters, digits, _ . - starting with a letter or _ (got ${JSON.stringify(name)})`);
  }
  if (!Array.isArray(def.steps) || def.steps.length === 0) fail(name, 'needs at least one step');
  def.steps.forEach((s, i) => checkStep(name, s, i));
  const seen = new Set<string>();
  for (const s of def.steps) {
    if (seen.has(s.name)) fail(name, `duplicate step name "${s.name}"`);
    seen.add(s.name);
  }
  if (def.key !== undefined && typeof def.key !== 'function') fail(name, 'key must be a function of the run input');
  if (def.startRoles !== undefined && (!Array.isArray(def.startRoles) || def.startRoles.some((r) => typeof r !== 'string' || r === ''))) {
    fail(name, 'startRoles must be a list of role names (omit it to let every role with USAGE on schema walflow start runs)');
  }
  const src = def.source;
  if (src) {
    if (typeof src.table !== 'string' || src.table.trim() === '') fail(name, 'source.table must name a table');
    for (const op of src.events ?? []) if (!OPS.includes(op)) fail(name, `source.events: unknown event "${op}" (use ${OPS.join(', ')})`);
    if (src.columns && (!Array.isArray(src.columns) || src.columns.some((c) => typeof c !== 'string' || !c))) fail(name, 'source.columns must be a list of column names');
    if (src.key && (!Array.isArray(src.key) || src.key.length === 0)) fail(name, 'source.key must be a non-empty list of column names');
    if (src.where !== undefined && typeof src.where !== 'function') fail(name, 'source.where must be a function of the row');
    try {
      parseTableName(src.table);
    } catch (err) {
      fail(name, `source.table: ${(err as Error).message}`);
    }
    if (src.backfill !== undefined && src.backfill !== true && src.backfill !== false && src.backfill !== 'on-version-change') {
      fail(name, `source.backfill must be true, false or 'on-version-change' (got ${JSON.stringify(src.backfill)})`);
    }
    if (def.input !== undefined) fail(name, 'a source pipeline cannot declare input: its runs get the source\'s shape (see "Run input" in the README)');
  }
  if (def.input !== undefined && (def.input === null || typeof (def.input as InputSchema<unknown>).parse !== 'function')) {
    fail(name, 'input must have a parse(value) function (a zod schema, for example)');
  }
  const schedules = declaredSchedules(name, def);
  const stepNames = def.steps.map((s) => s.name);
  const version = def.version ?? createHash('sha256').update(stepNames.join('\n')).digest('hex').slice(0, 12);
  const checkInput = src ? sourceInputCheck(name, src) : def.input ? declaredInputCheck(name, def.input) : undefined;
  return Object.freeze({ ...def, version, stepNames, schedules, ...(checkInput ? { checkInput } : {}) });
}

/**
 * Defines a pipeline, checking it now so that mistakes surface at load time. With a source,
 * `definePipeline<Row>({ source: { table, events: ['insert'] }, ... })` types `ctx.runInput` as the
 * SourceRunInput variants of those events and backfill.
 */
export const definePipeline: DefinePipeline = define as DefinePipeline;

/** Typed helper for a single step: `step<Input, Output>({ name, run })`. */
export function step<I = unknown, O = unknown, TRunInput = any>(def: SingleStep<I, O, TRunInput>): SingleStep<I, O, TRunInput> {
  return def;
}

/** Typed helper for a batched step: `batchStep<Input, Output>({ name, batch, run: async (items) => … })`. */
export function batchStep<I = unknown, O = unknown, TRunInput = any>(def: BatchStep<I, O, TRunInput>): BatchStep<I, O, TRunInput> {
  return def;
}

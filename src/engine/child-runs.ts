// Children steps: start child runs and park until they finish (join: all) or one completes (race).
// The children are started in the same transaction that parks the parent; each child's end is
// counted by a trigger on walflow.runs (sql/definitions/functions/child_finished.sql), which wakes
// the parent when its join can decide. The parent then reads its children and decides here.
import type { ChildRun, ChildrenStep, ChildResult, Json } from '../pipeline/types.js';
import { parseDuration } from '../util/duration.js';
import { NonRetryableError } from './retry.js';
import { inRunTransaction } from './run-transaction.js';
import { cancelChildren, insertChildren, readChildren, type ChildState } from './sql/children.js';
import { isDue, parkRun, readWait, type ParkSpec } from './sql/waits.js';
import type pg from 'pg';
import { finished, finishWait, parkSpec, type WaitArgs, type WaitOutcome } from './wait-common.js';

const UNFINISHED = new Set(['queued', 'waiting', 'running']);

function mode(step: ChildrenStep): string {
  return `${step.join ?? 'all'}/${step.onChildFailure ?? 'fail'}`;
}

function checkChildren(value: unknown): ChildRun[] {
  if (!Array.isArray(value)) throw new NonRetryableError('children: the function must return an array of { pipeline, input, key? }');
  value.forEach((c: unknown, i) => {
    const ok = typeof c === 'object' && c !== null && typeof (c as ChildRun).pipeline === 'string'
      && typeof (c as ChildRun).input === 'object' && (c as ChildRun).input !== null && !Array.isArray((c as ChildRun).input)
      && ((c as ChildRun).key === undefined || (c as ChildRun).key === null || typeof (c as ChildRun).key === 'string');
    if (!ok) throw new NonRetryableError(`children: item ${i} must be { pipeline: string, input: object, key?: string } (got ${JSON.stringify(c)?.slice(0, 200)})`);
  });
  return value as ChildRun[];
}

export async function startChildren(a: WaitArgs, step: ChildrenStep): Promise<WaitOutcome> {
  const made = await a.call((ctx, input) => step.children(ctx, input));
  if (!made.ok) return { kind: 'failed', error: made.error, retryable: true };
  let children: ChildRun[];
  try {
    children = checkChildren(made.value);
  } catch (error) {
    return { kind: 'failed', error, retryable: false };
  }
  const timeout = step.timeout === undefined ? null : { inMs: parseDuration(step.timeout, 'timeout') };
  const r = await inRunTransaction(a.pool, a.run.id, a.owner, async (tx) => {
    if (children.length === 0) {
      const output: Json = (step.join ?? 'all') === 'race' ? null : [];
      return finished(await finishWait(tx, a, output), output);
    }
    const { unknown } = await insertChildren(tx, a.run.id, a.ord, children);
    if (unknown.length > 0) {
      const error = new NonRetryableError(`children: unknown pipeline${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')} (see SELECT name FROM walflow.pipelines)`);
      return { commit: false, value: { kind: 'failed', error, retryable: false } as WaitOutcome };
    }
    // Children that already ended (the step run again after a cancel and a retry, or after a
    // crash) may decide the join now: nothing else would wake the parent for them.
    return settle(tx, a, step, await readChildren(tx, a.run.id, a.ord), timeout);
  });
  return afterCommit(a, r);
}

/**
 * Decides the join from the children's rows, inside the parent's run transaction: finish the step,
 * fail it, or park (again) for the children still running. Children to cancel (a race's losers, the
 * rest of a failed join) are cancelled after this transaction commits (afterCommit), never inside
 * it: a child's end locks its parent's row (child_finished.sql), so a parent locking its children
 * while holding its own row could deadlock with it.
 */
async function settle(tx: pg.PoolClient, a: WaitArgs, step: ChildrenStep, states: ChildState[], until: ParkSpec['until'], timedOut = false): Promise<{ commit: boolean; value: WaitOutcome }> {
  const d = decide(step, states);
  if (d.kind === 'done') {
    const r = finished(await finishWait(tx, a, d.output), d.output);
    return { ...r, value: withCancel(r.value, d.cancel) };
  }
  const unfinished = states.filter((c) => UNFINISHED.has(c.status)).map((c) => c.id);
  if (d.kind === 'fail' || timedOut) {
    const error = d.kind === 'fail' ? d.error : new NonRetryableError(`children: ${unfinished.length} of ${states.length} children had not finished at the step's timeout; they were cancelled`);
    return { commit: true, value: withCancel({ kind: 'failed', error, retryable: false }, unfinished) };
  }
  const at = await parkRun(tx, parkSpec(a, 'children', until, { children: states.length, childrenLeft: unfinished.length, mode: mode(step) }));
  return { commit: true, value: { kind: 'parked', until: at } };
}

type Settled = WaitOutcome & { cancel?: string[] };

function withCancel(o: WaitOutcome, cancel: string[]): Settled {
  return cancel.length > 0 ? { ...o, cancel } : o;
}

/** Cancels what the committed decision left over (each child with its descendants, children first). */
async function afterCommit(a: WaitArgs, r: { owned: true; value: Settled } | { owned: false }): Promise<WaitOutcome> {
  if (!r.owned) return { kind: 'lost' };
  const { cancel, ...outcome } = r.value;
  if (cancel && cancel.length > 0) await cancelChildren(a.pool, cancel);
  return outcome as WaitOutcome;
}

type Decision = { kind: 'wait' } | { kind: 'done'; output: Json; cancel: string[] } | { kind: 'fail'; error: Error; cancel: string[] };

export function decide(step: Pick<ChildrenStep, 'join' | 'onChildFailure'>, children: ChildState[]): Decision {
  const unfinished = children.filter((c) => UNFINISHED.has(c.status)).map((c) => c.id);
  const failed = children.filter((c) => !UNFINISHED.has(c.status) && c.status !== 'completed');
  const collect = step.onChildFailure === 'collect';
  const result = (c: ChildState): ChildResult => (c.status === 'completed'
    ? { ok: true, output: c.output }
    : { ok: false, status: c.status === 'failed' ? 'failed' : 'cancelled', error: c.error });
  if (step.join === 'race') {
    const winner = children.filter((c) => c.status === 'completed').sort((x, y) => (x.finished_at ?? '').localeCompare(y.finished_at ?? '') || x.child_index - y.child_index)[0];
    if (winner) return { kind: 'done', output: { index: winner.child_index, runId: winner.id, output: winner.output } as unknown as Json, cancel: unfinished };
    if (unfinished.length > 0) return { kind: 'wait' };
    if (collect) return { kind: 'done', output: { index: null, runId: null, output: null, results: children.map(result) } as unknown as Json, cancel: [] };
    return { kind: 'fail', error: new NonRetryableError(`race: none of the ${children.length} children completed (${describe(failed)})`), cancel: [] };
  }
  if (!collect && failed.length > 0) {
    return { kind: 'fail', error: new NonRetryableError(`join: ${failed.length} of ${children.length} children did not complete (${describe(failed)})`), cancel: unfinished };
  }
  if (unfinished.length > 0) return { kind: 'wait' };
  return { kind: 'done', output: (collect ? children.map(result) : children.map((c) => c.output)) as unknown as Json, cancel: [] };
}

function describe(failed: ChildState[]): string {
  return failed.slice(0, 3).map((c) => `child ${c.child_index} (run ${c.id}) ${c.status}${c.error && typeof c.error === 'object' && 'message' in c.error ? `: ${String((c.error as { message: unknown }).message)}` : ''}`).join('; ') + (failed.length > 3 ? '; …' : '');
}

export async function continueChildren(a: WaitArgs, step: ChildrenStep): Promise<WaitOutcome> {
  const r = await inRunTransaction(a.pool, a.run.id, a.owner, async (tx) => {
    // The run's row lock (taken by inRunTransaction) holds back any child's end until this
    // transaction commits: a child that ends meanwhile then counts against the new wait and wakes
    // the parked parent (child_finished.sql), rather than finding it running and not waking it.
    const states = await readChildren(tx, a.run.id, a.ord);
    const wait = await readWait(tx, a.run.id);
    const mine = wait?.step_index === a.ord ? wait : undefined;
    const timedOut = decide(step, states).kind === 'wait' && mine !== undefined && (await isDue(tx, mine.until));
    return settle(tx, a, step, states, mine?.until ? { at: mine.until } : null, timedOut);
  });
  return afterCommit(a, r);
}

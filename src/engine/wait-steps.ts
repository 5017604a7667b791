// Executing the waits: sleep, signal and children steps (docs/waits.md). A wait step either
// finishes now (its checkpoint written in a run transaction, together with consuming the signal or
// clearing the wait) or parks the run ('waiting', run_at = wake time or timeout) and returns; the
// worker then holds nothing for it. Waking is the ordinary claim: due runs are claimed first.
import { isChildrenStep, isSignalStep, isSleepStep } from '../pipeline/step-kinds.js';
import type { Json, SignalResult, SleepStep, WakeTime } from '../pipeline/types.js';
import { isDurationText, parseDuration } from '../util/duration.js';
import { inRunTransaction } from './run-transaction.js';
import { consumeSignal, isDue, parkRun, readWait, type ParkSpec } from './sql/waits.js';
import { continueChildren, startChildren } from './child-runs.js';
import { finished, finishWait, parkSpec, type WaitArgs, type WaitOutcome } from './wait-common.js';

export type { SleepGroups, WaitArgs, WaitOutcome } from './wait-common.js';

export async function executeWait(a: WaitArgs): Promise<WaitOutcome> {
  if (isSleepStep(a.step)) return sleepStep(a, a.step.sleep);
  if (isSignalStep(a.step)) return signalStep(a, a.step.waitFor.signal, a.step.waitFor.timeout);
  if (isChildrenStep(a.step)) return a.parked ? continueChildren(a, a.step) : startChildren(a, a.step);
  throw new Error(`step "${(a.step as { name: string }).name}" is not a wait`);
}

function toUntil(wake: WakeTime): ParkSpec['until'] {
  if (wake instanceof Date) {
    if (Number.isNaN(wake.getTime())) throw new Error('sleep: the function returned an invalid Date');
    return { at: wake.toISOString() };
  }
  if (typeof wake === 'string' && !isDurationText(wake)) {
    if (Number.isNaN(Date.parse(wake))) throw new Error(`sleep: ${JSON.stringify(wake)} is neither a duration ('10m') nor an instant (ISO 8601)`);
    return { at: new Date(wake).toISOString() };
  }
  return { inMs: parseDuration(wake, 'sleep') };
}

async function sleepStep(a: WaitArgs, sleep: SleepStep['sleep']): Promise<WaitOutcome> {
  // The wake time is fixed when the run first reaches the step (a resumed run keeps it).
  let until: ParkSpec['until'] | undefined;
  if (!a.parked) {
    const wake = typeof sleep === 'function' ? await a.call((ctx, input) => sleep(ctx, input)) : { ok: true as const, value: sleep };
    if (!wake.ok) return { kind: 'failed', error: wake.error, retryable: true };
    try {
      until = toUntil(wake.value);
    } catch (error) {
      return { kind: 'failed', error, retryable: false };
    }
  }
  if (a.sleeps) {
    // Nothing but time ends a sleep: no row lock is needed, and parks and wakes group-commit.
    const item = { run_id: a.run.id, step_index: a.ord, step: a.step.name, output: (a.input ?? null) as Json, attempts: a.attempt, duration_ms: 0, final: a.final };
    if (a.parked?.kind === 'sleep' && a.parked.until !== null && Date.parse(a.parked.until) <= a.run.claimed_at.getTime()) {
      return (await a.sleeps.wakes.submit(item)) ? { kind: 'done', output: item.output } : { kind: 'lost' };
    }
    if (!a.parked && until) {
      const at = 'at' in until ? until.at : null;
      const inMs = 'inMs' in until ? until.inMs : null;
      const parked = await a.sleeps.parks.submit({ run_id: a.run.id, pipeline: a.run.pipeline, step_index: a.ord, step: a.step.name, at, in_ms: inMs });
      return parked ? { kind: 'parked', until: at ? new Date(at) : new Date(Date.now() + inMs!) } : { kind: 'lost' };
    }
  }
  const r = await inRunTransaction(a.pool, a.run.id, a.owner, async (tx) => {
    const current = a.parked ? await readWait(tx, a.run.id) : undefined;
    if (current && current.step_index === a.ord && (await isDue(tx, current.until))) {
      return finished(await finishWait(tx, a, (a.input ?? null) as Json), (a.input ?? null) as Json);
    }
    const spec = parkSpec(a, 'sleep', current && current.step_index === a.ord ? { at: current.until! } : until ?? { inMs: 0 });
    return { commit: true, value: { kind: 'parked', until: await parkRun(tx, spec) } as WaitOutcome };
  });
  return r.owned ? r.value : { kind: 'lost' };
}

async function signalStep(a: WaitArgs, signal: string, timeout: string | number | undefined): Promise<WaitOutcome> {
  const timeoutMs = timeout === undefined ? null : parseDuration(timeout, 'waitFor.timeout');
  const r = await inRunTransaction(a.pool, a.run.id, a.owner, async (tx) => {
    const got = await consumeSignal(tx, a.run.id, signal, a.ord);
    if (got) {
      const output: SignalResult = { signal, payload: got.payload, timedOut: false, receivedAt: got.sent_at };
      return finished(await finishWait(tx, a, output as unknown as Json), output as unknown as Json);
    }
    const current = await readWait(tx, a.run.id);
    const mine = current && current.step_index === a.ord ? current : undefined;
    if (mine && (await isDue(tx, mine.until))) {
      const output: SignalResult = { signal, payload: null, timedOut: true, receivedAt: null };
      return finished(await finishWait(tx, a, output as unknown as Json), output as unknown as Json);
    }
    const until = mine ? (mine.until ? { at: mine.until } : null) : timeoutMs === null ? null : { inMs: timeoutMs };
    return { commit: true, value: { kind: 'parked', until: await parkRun(tx, parkSpec(a, 'signal', until, { signal })) } as WaitOutcome };
  });
  return r.owned ? r.value : { kind: 'lost' };
}

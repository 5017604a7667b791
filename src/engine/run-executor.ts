// Drives one claimed run through its remaining steps: each step's output is checkpointed before
// the next step starts, so a crash resumes after the last committed step and never repeats it.
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Pipeline } from '../pipeline/define.js';
import type { Json, StepDefinition } from '../pipeline/types.js';
import type { StepBatcher } from './batcher.js';
import type { GroupWriter } from './group-writer.js';
import { isRetryable, maxAttempts, NonRetryableError, OutputNotJsonError, retryDelayMs, RunInputError, StepTimeoutError, toStoredError } from './retry.js';
import type { RunControl } from './run-control.js';
import { finishTx, invokeStep } from './step-invoker.js';
import { completeRuns, type CheckpointItem } from './sql/checkpoint.js';
import type { ClaimedRun } from './sql/claim.js';
import type { FailureItem } from './sql/fail.js';
import { releaseRuns } from './sql/lease.js';
import { checkpointInTx, DEFAULT_MAX_REPEATS, parkForRepeat, resumeAt, skipStep } from './run-progress.js';
import { executeWait, type SleepGroups } from './wait-steps.js';
import { isWaitStep } from '../pipeline/step-kinds.js';
import { isFinish, stepControl } from '../pipeline/step-control.js';
import { endRunSpan, endStepSpan, startRunSpan, startStepSpan, withContext } from './tracing.js';
import type { Span } from '@opentelemetry/api';

export interface ExecutorDeps {
  pool: pg.Pool;
  owner: string;
  leaseMs: number;
  log: Logger;
  checkpoints: GroupWriter<CheckpointItem>;
  failures: GroupWriter<FailureItem>;
  /** Group-committed parks and wakes of sleeps; without them, each goes through its own run transaction. */
  sleeps?: SleepGroups;
  batcherFor: (pipeline: string, step: StepDefinition) => StepBatcher | undefined;
  /** Waits for a slot of a step with a concurrency limit (steps without one never call it). */
  acquireSlot: (pipeline: string, step: StepDefinition, control: RunControl) => Promise<() => void>;
  /** Called when a run waits for a retry, so the worker can wake up in time for it. */
  onRetryScheduled: (at: Date) => void;
  onStepDone?: (pipeline: string, step: string, ok: boolean, ms: number) => void;
}

export type RunEnd = 'completed' | 'failed' | 'waiting' | 'lost';

export async function executeRun(run: ClaimedRun, pipeline: Pipeline, control: RunControl, deps: ExecutorDeps): Promise<RunEnd> {
  const span = startRunSpan(run); // undefined unless the application registered an OpenTelemetry SDK
  if (!span) return execute(run, pipeline, control, deps, undefined);
  try {
    const end = await execute(run, pipeline, control, deps, span);
    endRunSpan(span, end);
    return end;
  } catch (err) {
    endRunSpan(span, 'error', err);
    throw err;
  }
}

async function execute(run: ClaimedRun, pipeline: Pipeline, control: RunControl, deps: ExecutorDeps, span: Span | undefined): Promise<RunEnd> {
  // Child loggers cost a few microseconds each: build them only when a step or an error needs one.
  let runLog: Logger | undefined;
  const log = (): Logger => (runLog ??= deps.log.child({ pipeline: run.pipeline, run: run.id }));
  const stepLog = (name: string) => (): Logger => log().child({ step: name });
  // ctx.attempt counts every execution of the step; its retry budget counts from the last manual retry.
  let attempt = run.attempt;
  let base = run.retry_base;
  const steps = pipeline.steps;

  // A resumed run continues after its last checkpointed step, found by name in the loaded version
  // (docs/waits.md, "Runs meet new versions"): steps may have been added, removed or reordered.
  const resumed = resumeAt(run, pipeline);
  if ('error' in resumed) return fail(run, { name: run.prev_step ?? run.wait?.step ?? steps[0]!.name }, run.step_index, resumed.error, attempt, base, Date.now(), deps, false);
  const pos = resumed.index;
  if (pos === steps.length) {
    // Every step is checkpointed; only the completion is missing (see completeRuns).
    return (await completeRuns(deps.pool, [run.id], deps.owner)).has(run.id) ? 'completed' : 'lost';
  }
  // The pipeline's input check (its source's shape, or its declared `input`), before any step sees
  // the input: a run started with input that does not fit fails now, with the shape it needed,
  // rather than in a step, retried, with a TypeError. Every execution checks (a resumed run too),
  // so that ctx.runInput is always the checked value.
  let runInput: unknown = run.input;
  if (pipeline.checkInput) {
    try {
      runInput = pipeline.checkInput(run.input);
    } catch (err) {
      const error = new RunInputError(err instanceof Error ? err.message : String(err));
      return fail(run, steps[pos]!, run.step_index, error, attempt, base, Date.now(), deps, false);
    }
  }
  let input: unknown = run.prev_step === null ? runInput : run.prev_output;

  for (let i = pos, ord = run.step_index; i < steps.length; i++, ord++) {
    const step = steps[i]!;
    const started = Date.now();
    if (attempt - base > maxAttempts(step.retry)) {
      const last = run.attempt === attempt ? ' (the last attempt ended without a result: its worker crashed or lost its lease)' : '';
      return fail(run, step, ord, new NonRetryableError(`step "${step.name}" exhausted its ${maxAttempts(step.retry)} attempts${last}`), attempt - 1, base, started, deps, false);
    }
    // The wait this run was parked in, if it was parked in this step.
    const parked = i === pos && run.wait?.step_index === ord ? run.wait : undefined;
    const final = i === steps.length - 1;
    const args = {
      step, pool: deps.pool, runId: run.id, pipeline: run.pipeline, key: run.key, attempt,
      runInput, input, control, log: stepLog(step.name), repeats: parked?.kind === 'repeat' ? parked.repeats : 0,
      batcher: step.batch ? deps.batcherFor(run.pipeline, step) : undefined,
    };

    // A condition is evaluated once, when the run reaches the step (not again when a wait resumes).
    if (step.when && !parked) {
      const when = step.when;
      const cond = await invokeStep({ ...args, batcher: undefined, step: { name: step.name, timeoutMs: step.timeoutMs, run: (ctx, inp) => when(ctx, inp) } });
      if (cond.tx) await finishTx(cond.tx, false, !cond.ok).catch(() => undefined);
      if (!cond.ok) {
        if (control.aborted) return 'lost';
        return fail(run, step, ord, cond.error, attempt, base, started, deps, isRetryable(cond.error, step.retry));
      }
      if (!cond.output) {
        const skipped = await skipStep(deps, run, step.name, ord, input, attempt, final);
        if (skipped !== 'ok') return skipped;
        if (final) return 'completed';
        attempt = 1;
        base = 0;
        continue;
      }
    }

    if (isWaitStep(step)) {
      const w = await executeWait({
        pool: deps.pool, owner: deps.owner, run, step, ord, final, input, attempt, parked, sleeps: deps.sleeps,
        call: async (fn) => {
          const o = await invokeStep({ ...args, batcher: undefined, step: { name: step.name, timeoutMs: step.timeoutMs, run: fn } });
          if (o.tx) await finishTx(o.tx, false, !o.ok).catch(() => undefined);
          return o.ok ? { ok: true, value: o.output as never } : { ok: false, error: o.error };
        },
      });
      if (w.kind === 'lost') return 'lost';
      if (w.kind === 'failed') {
        if (control.aborted) return 'lost';
        return fail(run, step, ord, w.error, attempt, base, started, deps, w.retryable && isRetryable(w.error, step.retry));
      }
      if (w.kind === 'parked') {
        if (w.until) deps.onRetryScheduled(w.until);
        return 'waiting';
      }
      if (final) return 'completed';
      input = w.output;
      attempt = 1;
      base = 0;
      continue;
    }

    const release = step.concurrency && !step.batch ? await deps.acquireSlot(run.pipeline, step, control) : undefined;
    let outcome;
    const traced = span && startStepSpan(span, step.name, attempt, run.id, run.pipeline);
    try {
      outcome = await (traced ? withContext(traced.ctx, () => invokeStep(args)) : invokeStep(args));
    } finally {
      release?.();
    }
    if (traced) endStepSpan(traced.span, outcome.ok, outcome.ok ? undefined : outcome.error);
    const durationMs = Date.now() - started;
    deps.onStepDone?.(run.pipeline, step.name, outcome.ok, durationMs);

    if (!outcome.ok) {
      if (outcome.tx) await finishTx(outcome.tx, false, control.aborted || outcome.error instanceof StepTimeoutError).catch(() => undefined);
      if (control.aborted) return 'lost'; // cancelled, lease lost, or shutdown: nothing to record
      return fail(run, step, ord, outcome.error, attempt, base, started, deps, isRetryable(outcome.error, step.retry));
    }

    const ctl = stepControl(outcome.output);
    if (ctl && !isFinish(ctl)) {
      // again(): not done yet. What it wrote through ctx.tx is rolled back (it commits with a checkpoint).
      if (outcome.tx) await finishTx(outcome.tx, false, false).catch(() => undefined);
      const repeats = (parked?.kind === 'repeat' ? parked.repeats : 0) + 1;
      const limit = step.maxRepeats ?? DEFAULT_MAX_REPEATS;
      if (repeats > limit) return fail(run, step, ord, new NonRetryableError(`step "${step.name}" asked to run again more than its maxRepeats (${limit}) times`), attempt, base, started, deps, false);
      const until = await parkForRepeat(deps, run, step.name, ord, ctl.afterMs, repeats);
      if (until === 'lost') return 'lost';
      deps.onRetryScheduled(until);
      return 'waiting';
    }
    const output = ctl ? ctl.output : outcome.output;
    const item: CheckpointItem = {
      run_id: run.id, step_index: ord, step: step.name, output: output as Json, attempts: attempt,
      duration_ms: durationMs, final: final || !!ctl,
    };
    let owned: boolean;
    if (outcome.tx || parked) {
      // The step wrote through ctx.tx (its checkpoint goes into the same transaction), or it ends a
      // repeat (its wait row goes with the checkpoint).
      try {
        const applied = await checkpointInTx(deps, outcome.tx, item, parked !== undefined);
        const invalid = applied.errorOf?.(run.id);
        if (invalid) throw invalid;
        owned = applied.has(run.id);
        if (outcome.tx) await finishTx(outcome.tx, owned, false);
      } catch (err) {
        if (outcome.tx) await finishTx(outcome.tx, false, false).catch(() => undefined);
        if (control.aborted) return 'lost';
        return fail(run, step, ord, err, attempt, base, started, deps, !(err instanceof OutputNotJsonError));
      }
    } else {
      try {
        owned = await deps.checkpoints.submit(item);
      } catch (err) {
        if (!(err instanceof OutputNotJsonError)) throw err; // the database: the lease will expire and the run resume
        return fail(run, step, ord, err, attempt, base, started, deps, false);
      }
    }
    if (!owned) {
      // Cancelled, requeued after our lease expired, or another worker committed this step first.
      // Our result is discarded; if we still hold the run, hand it back so that it resumes at once
      // from whatever is committed.
      log().warn({ step: step.name }, 'checkpoint not taken (run cancelled or step committed by another worker); result discarded');
      await releaseRuns(deps.pool, [run.id], deps.owner);
      return 'lost';
    }
    if (ctl) return 'completed'; // finish(): the run ended early, with this step's output
    input = output;
    attempt = 1;
    base = 0;
  }
  return 'completed';
}

/** `base`: executions before the run's last manual retry; the budget and the backoff count from it. */
async function fail(run: ClaimedRun, step: Pick<StepDefinition, 'name' | 'retry'>, index: number, error: unknown, attempt: number, base: number, started: number, deps: ExecutorDeps, retryable: boolean): Promise<RunEnd> {
  const retry = retryable && attempt - base < maxAttempts(step.retry);
  const retryAt = retry ? new Date(Date.now() + retryDelayMs(step.retry, attempt - base + 1, Math.random, error)) : null;
  const stored = toStoredError(error, { step: step.name, attempt });
  const owned = await deps.failures.submit({
    run_id: run.id, step_index: index, step: step.name, error: stored, attempts: attempt,
    duration_ms: Date.now() - started, retry_at: retryAt?.toISOString() ?? null,
  });
  if (!owned) return 'lost';
  deps.log[retry ? 'warn' : 'error']({ pipeline: run.pipeline, run: run.id, step: step.name, attempt, err: stored.message, retryAt }, retry ? 'step failed; will retry' : 'run failed');
  if (retryAt) deps.onRetryScheduled(retryAt);
  return retry ? 'waiting' : 'failed';
}

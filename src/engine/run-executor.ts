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
import { completeRuns, writeCheckpoints, type CheckpointItem } from './sql/checkpoint.js';
import type { ClaimedRun } from './sql/claim.js';
import type { FailureItem } from './sql/fail.js';
import { releaseRuns } from './sql/lease.js';
import { endRunSpan, endStepSpan, startRunSpan, startStepSpan, withContext } from './tracing.js';
import type { Span } from '@opentelemetry/api';

export interface ExecutorDeps {
  pool: pg.Pool;
  owner: string;
  leaseMs: number;
  log: Logger;
  checkpoints: GroupWriter<CheckpointItem>;
  failures: GroupWriter<FailureItem>;
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

  if (run.step_index > 0 && run.step_index === pipeline.steps.length) {
    // Every step is checkpointed; only the completion is missing (see completeRuns).
    return (await completeRuns(deps.pool, [run.id], deps.owner)).has(run.id) ? 'completed' : 'lost';
  }
  if (run.step_index >= pipeline.steps.length) {
    const error = new NonRetryableError(`run is at step ${run.step_index} but pipeline "${pipeline.name}" now has ${pipeline.steps.length} steps (its definition changed while the run was in flight)`);
    return fail(run, pipeline.steps.at(-1)!, run.step_index, error, attempt, base, Date.now(), deps, false);
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
      return fail(run, pipeline.steps[run.step_index]!, run.step_index, error, attempt, base, Date.now(), deps, false);
    }
  }
  let input: unknown = run.step_index === 0 ? runInput : run.prev_output;

  for (let i = run.step_index; i < pipeline.steps.length; i++) {
    const step = pipeline.steps[i]!;
    const started = Date.now();
    if (attempt - base > maxAttempts(step.retry)) {
      const last = run.attempt === attempt ? ' (the last attempt ended without a result: its worker crashed or lost its lease)' : '';
      return fail(run, step, i, new NonRetryableError(`step "${step.name}" exhausted its ${maxAttempts(step.retry)} attempts${last}`), attempt - 1, base, started, deps, false);
    }
    const release = step.concurrency && !step.batch ? await deps.acquireSlot(run.pipeline, step, control) : undefined;
    let outcome;
    const args = {
      step, pool: deps.pool, runId: run.id, pipeline: run.pipeline, key: run.key, attempt,
      runInput, input, control, log: stepLog(step.name),
      batcher: step.batch ? deps.batcherFor(run.pipeline, step) : undefined,
    };
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
      return fail(run, step, i, outcome.error, attempt, base, started, deps, isRetryable(outcome.error, step.retry));
    }

    const item: CheckpointItem = {
      run_id: run.id, step_index: i, step: step.name, output: outcome.output as Json, attempts: attempt,
      duration_ms: durationMs, final: i === pipeline.steps.length - 1,
    };
    let owned: boolean;
    if (outcome.tx) {
      // The step wrote through ctx.tx: its checkpoint goes into the same transaction.
      try {
        const applied = await writeCheckpoints(outcome.tx, [item], true);
        const invalid = applied.errorOf?.(run.id);
        if (invalid) throw invalid;
        owned = applied.has(run.id);
        await finishTx(outcome.tx, owned, false);
      } catch (err) {
        await finishTx(outcome.tx, false, false).catch(() => undefined);
        if (control.aborted) return 'lost';
        return fail(run, step, i, err, attempt, base, started, deps, !(err instanceof OutputNotJsonError));
      }
    } else {
      try {
        owned = await deps.checkpoints.submit(item);
      } catch (err) {
        if (!(err instanceof OutputNotJsonError)) throw err; // the database: the lease will expire and the run resume
        return fail(run, step, i, err, attempt, base, started, deps, false);
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
    input = outcome.output;
    attempt = 1;
    base = 0;
  }
  return 'completed';
}

/** `base`: executions before the run's last manual retry; the budget and the backoff count from it. */
async function fail(run: ClaimedRun, step: StepDefinition, index: number, error: unknown, attempt: number, base: number, started: number, deps: ExecutorDeps, retryable: boolean): Promise<RunEnd> {
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

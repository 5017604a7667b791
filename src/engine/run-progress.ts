// Where a resumed run continues, and the checkpoints that need more than the group-committed path:
// a skipped step, a repeat's park, and a step ending a parked wait (docs/waits.md).
import type pg from 'pg';
import type { Pipeline } from '../pipeline/define.js';
import type { Json } from '../pipeline/types.js';
import { NonRetryableError } from './retry.js';
import { inRunTransaction } from './run-transaction.js';
import { writeCheckpoints, type Applied, type CheckpointItem } from './sql/checkpoint.js';
import type { ClaimedRun } from './sql/claim.js';
import { clearWait, markSkipped, parkRun } from './sql/waits.js';

export const DEFAULT_MAX_REPEATS = 1000;

interface Deps {
  pool: pg.Pool;
  owner: string;
}

/**
 * The position in the loaded definition where the run continues, found by name: the step it is
 * parked in, else the step after its last checkpointed one. A run whose step this version does not
 * have stops with an error that says what to do; `walflow retry` resumes it once the pipeline is
 * fixed. Never a silent skip.
 */
export function resumeAt(run: ClaimedRun, pipeline: Pipeline): { index: number } | { error: Error } {
  const names = pipeline.stepNames;
  const w = run.wait && run.wait.step_index === run.step_index ? run.wait : undefined;
  if (w) {
    // Parked in a wait: it continues in that step, wherever this version has it.
    const at = names.indexOf(w.step);
    if (at >= 0) return { index: at };
    return { error: new NonRetryableError(`the run is parked in step "${w.step}" (${w.kind}), which pipeline "${pipeline.name}" version ${pipeline.version} does not have (its steps: ${names.join(', ')}): the step was renamed or removed while the run waited. Give the pipeline that step again, then: walflow retry ${run.id}`) };
  }
  if (run.prev_step === null) return { index: 0 };
  const at = names.indexOf(run.prev_step);
  if (at >= 0) return { index: at + 1 };
  return { error: new NonRetryableError(`the run's last completed step "${run.prev_step}" is not a step of pipeline "${pipeline.name}" version ${pipeline.version} (its steps: ${names.join(', ')}): it was renamed or removed while the run was in flight. Give the pipeline a step of that name again (or finish the run by hand), then: walflow retry ${run.id}`) };
}

/** A step whose condition was false: checkpointed with its input as output, marked skipped. */
export async function skipStep(d: Deps, run: ClaimedRun, step: string, ord: number, input: unknown, attempt: number, final: boolean): Promise<'ok' | 'lost'> {
  const item: CheckpointItem = { run_id: run.id, step_index: ord, step, output: (input ?? null) as Json, attempts: attempt, duration_ms: 0, final };
  const r = await inRunTransaction(d.pool, run.id, d.owner, async (tx) => {
    const ok = (await writeCheckpoints(tx, [item], true)).has(run.id);
    if (ok) await markSkipped(tx, run.id, ord);
    return { commit: ok, value: ok };
  });
  return r.owned && r.value ? 'ok' : 'lost';
}

/** again(): parks the run to execute this step again after `afterMs`. */
export async function parkForRepeat(d: Deps, run: ClaimedRun, step: string, ord: number, afterMs: number, repeats: number): Promise<Date | 'lost'> {
  const r = await inRunTransaction(d.pool, run.id, d.owner, async (tx) => ({
    commit: true,
    value: await parkRun(tx, { runId: run.id, pipeline: run.pipeline, stepIndex: ord, step, kind: 'repeat', until: { inMs: afterMs }, repeats }),
  }));
  return r.owned && r.value ? r.value : 'lost';
}

/**
 * A checkpoint written in a transaction: the step's own (ctx.tx, which the caller then finishes), or
 * a run transaction of its own. `clear`: the run was parked in this step (a repeat); its wait goes.
 */
export async function checkpointInTx(d: Deps, stepTx: pg.PoolClient | undefined, item: CheckpointItem, clear: boolean): Promise<Applied> {
  if (stepTx) {
    if (clear) await clearWait(stepTx, item.run_id);
    return writeCheckpoints(stepTx, [item], true);
  }
  const r = await inRunTransaction(d.pool, item.run_id, d.owner, async (tx) => {
    if (clear) await clearWait(tx, item.run_id);
    const applied = await writeCheckpoints(tx, [item], true);
    return { commit: applied.has(item.run_id), value: applied };
  });
  return r.owned ? r.value : { has: () => false };
}

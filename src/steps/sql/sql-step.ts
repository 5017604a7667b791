// A SQL step of a pipeline defined from SQL (walflow.sql_step): it calls the step's function in
// schema walflow_steps — created by walflow.create_pipeline, owned by the pipeline's definer and
// SECURITY DEFINER, so the statement runs with the definer's privileges, never with walflow's — in
// the step's ctx.tx: its effect commits together with the checkpoint, exactly once.
import type { SingleStep, StepContext } from '../../pipeline/types.js';
import { runContext } from './run-context.js';

export interface SqlStepOptions {
  name: string;
  /** The step function, schema-qualified and quoted (walflow.sql_step_function). */
  fn: string;
}

/**
 * SQLSTATE classes that no retry can fix: 42 (syntax, permission denied, undefined object) and 22
 * (data: a cast of a placeholder that does not parse). The run fails at once with the error;
 * `walflow retry` runs it again once the cause is fixed. One exception: the step's own function
 * gone (42883) means walflow.drop_pipeline committed while this process still had the pipeline
 * loaded; the attempt is retried, and once the process has picked up the drop the run waits, like
 * the pipeline's other unfinished runs, instead of failing for a race.
 */
function retryable(fn: string): (err: unknown) => boolean {
  const name = fn.replace(/^walflow_steps\./, '').replace(/^"(.*)"$/, '$1').replaceAll('""', '"');
  return (err) => {
    const { code, message } = err as { code?: unknown; message?: unknown };
    if (code === '42883' && typeof message === 'string' && message.includes(name)) return true;
    return !(typeof code === 'string' && /^(42|22)/.test(code));
  };
}

export function sqlStep(o: SqlStepOptions): SingleStep<unknown, unknown> {
  return {
    name: o.name,
    retry: { maxAttempts: 5, initialDelayMs: 500, retryable: retryable(o.fn) },
    run: async (ctx: StepContext, prev: unknown) => {
      const tx = await ctx.tx();
      // Earlier steps' outputs are their checkpoints (committed; this step's own is not yet).
      const call = await runContext(tx, ctx, prev);
      const { rows: out } = await tx.query<{ r: unknown }>(`SELECT ${o.fn}($1::jsonb) AS r`, [JSON.stringify(call)]);
      return out[0]?.r ?? null;
    },
  };
}

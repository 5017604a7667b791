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
 * `walflow retry` runs it again once the cause is fixed.
 */
function retryable(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return !(typeof code === 'string' && /^(42|22)/.test(code));
}

export function sqlStep(o: SqlStepOptions): SingleStep<unknown, unknown> {
  return {
    name: o.name,
    retry: { maxAttempts: 5, initialDelayMs: 500, retryable },
    run: async (ctx: StepContext, prev: unknown) => {
      const tx = await ctx.tx();
      // Earlier steps' outputs are their checkpoints (committed; this step's own is not yet).
      const call = await runContext(tx, ctx, prev);
      const { rows: out } = await tx.query<{ r: unknown }>(`SELECT ${o.fn}($1::jsonb) AS r`, [JSON.stringify(call)]);
      return out[0]?.r ?? null;
    },
  };
}

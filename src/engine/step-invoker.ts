// Calls a step's function for one run: applies its timeout, races it against the run's abort, and
// owns the lazily opened ctx.tx transaction. This is the hottest path of the engine (a no-op step
// costs little more than this file), so the context is a class whose expensive parts (the
// AbortSignal, the child logger, the transaction) are built only when a step asks for them.
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Json, SingleStep, StepContext, StepDefinition, TxClient } from '../pipeline/types.js';
import type { StepBatcher } from './batcher.js';
import { StepTimeoutError } from './retry.js';
import { RunControl } from './run-control.js';

export interface InvokeArgs {
  step: StepDefinition;
  pool: pg.Pool;
  runId: string;
  pipeline: string;
  key: string | null;
  attempt: number;
  runInput: unknown;
  input: unknown;
  control: RunControl;
  /** Built on first use of ctx.log. */
  log: () => Logger;
  /** Times this step returned again(...) before (0 unless it is being repeated). */
  repeats?: number;
  batcher: StepBatcher | undefined;
}

export type Outcome = { ok: true; output: unknown; tx?: pg.PoolClient } | { ok: false; error: unknown; tx?: pg.PoolClient };

class Context implements StepContext {
  readonly runId: string;
  readonly pipeline: string;
  readonly key: string | null;
  readonly attempt: number;
  readonly runInput: unknown;
  readonly repeats: number;
  readonly db: pg.Pool;
  /** The open transaction, once its BEGIN succeeded. */
  client: pg.PoolClient | undefined;
  opening: Promise<pg.PoolClient> | undefined;
  private logger: Logger | undefined;
  private boundTx: (() => Promise<TxClient>) | undefined;

  constructor(
    a: InvokeArgs,
    readonly control: RunControl,
  ) {
    this.runId = a.runId;
    this.pipeline = a.pipeline;
    this.key = a.key;
    this.attempt = a.attempt;
    this.runInput = a.runInput;
    this.repeats = a.repeats ?? 0;
    this.db = a.pool;
    this.makeLog = a.log;
  }

  private readonly makeLog: () => Logger;

  get signal(): AbortSignal {
    return this.control.signal;
  }

  get log(): Logger {
    return (this.logger ??= this.makeLog());
  }

  /** Bound on first read, so `const { tx } = ctx` works too. */
  get tx(): () => Promise<TxClient> {
    return (this.boundTx ??= this.openTx.bind(this));
  }

  async output(step: string): Promise<Json | undefined> {
    const { rows } = await this.db.query<{ output: Json }>(
      'SELECT output FROM walflow.steps WHERE run_id = $1 AND step = $2 ORDER BY step_index DESC LIMIT 1', [this.runId, step]);
    return rows[0]?.output;
  }

  private openTx(): Promise<TxClient> {
    this.opening ??= this.begin();
    return this.opening;
  }

  private async begin(): Promise<pg.PoolClient> {
    const client = await this.db.connect();
    // A checked-out client has no pool listener: if its connection dies while the step holds it (a
    // server restart), the 'error' event would be uncaught and kill the process. The step's next
    // query, or its checkpoint, fails instead and reports it.
    client.on('error', ignoreClientError);
    try {
      await client.query('BEGIN');
    } catch (err) {
      client.removeListener('error', ignoreClientError);
      client.release(err as Error);
      throw err;
    }
    this.client = client;
    return client;
  }
}

function abortError(reason: unknown, step: StepDefinition): unknown {
  if (reason instanceof DOMException && reason.name === 'TimeoutError') {
    return new StepTimeoutError(`step "${step.name}" timed out after ${step.timeoutMs} ms`);
  }
  return reason ?? new Error('aborted');
}

/** Settles with the step's result, or with the abort reason as soon as the control aborts. */
function raceAbort<T>(work: Promise<T>, control: RunControl, step: StepDefinition): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (reason: unknown): void => reject(abortError(reason, step));
    control.onAbort(onAbort);
    work.then(
      (v) => {
        control.offAbort(onAbort);
        resolve(v);
      },
      (e: unknown) => {
        control.offAbort(onAbort);
        reject(e);
      },
    );
  });
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

export async function invokeStep(a: InvokeArgs): Promise<Outcome> {
  const control = a.step.timeoutMs && !a.step.batch ? RunControl.child(a.control, a.step.timeoutMs) : a.control;
  const ctx = new Context(a, control);
  try {
    if (control.aborted) throw abortError(control.reason, a.step);
    let output: unknown = a.batcher
      ? a.batcher.submit({ ctx, input: a.input })
      : (a.step as SingleStep).run(ctx, a.input);
    // A step that returned a value is done; only a pending one is raced against the abort. (One
    // that ignores its signal keeps running in the background; its late result is dropped.)
    if (isThenable(output)) {
      const work = Promise.resolve(output);
      work.catch(ignore);
      output = await raceAbort(work, control, a.step);
    }
    if (ctx.opening && !ctx.client) await ctx.opening.catch(ignore);
    return ctx.client ? { ok: true, output: output ?? null, tx: ctx.client } : { ok: true, output: output ?? null };
  } catch (error) {
    if (ctx.opening && !ctx.client) await ctx.opening.catch(ignore);
    return ctx.client ? { ok: false, error, tx: ctx.client } : { ok: false, error };
  } finally {
    if (control !== a.control) control.dispose();
  }
}

function ignore(): void {
  /* the outcome is reported elsewhere */
}

function ignoreClientError(): void {
  /* reported by the failing query */
}

/** Ends a step's transaction: commit after its checkpoint, or roll back. */
export async function finishTx(tx: pg.PoolClient, commit: boolean, stillInUse: boolean): Promise<void> {
  try {
    await tx.query(commit ? 'COMMIT' : 'ROLLBACK');
    // If the step may still be issuing queries (it timed out but ignored its signal), the
    // connection must not go back to the pool, where its stray writes would escape the rollback.
    tx.release(stillInUse ? new Error('step abandoned its transaction') : undefined);
  } catch (err) {
    tx.release(err as Error);
    throw err;
  } finally {
    tx.removeListener('error', ignoreClientError);
  }
}

// Calls a step's function for one run: applies its timeout, races it against the run's abort
// signal, and owns the lazily opened ctx.tx transaction.
import type pg from 'pg';
import type { Logger } from 'pino';
import type { StepContext, StepDefinition, TxClient } from '../pipeline/types.js';
import { StepTimeoutError } from './retry.js';
import type { StepBatcher } from './batcher.js';

export interface InvokeArgs {
  step: StepDefinition;
  pool: pg.Pool;
  runId: string;
  pipeline: string;
  key: string | null;
  attempt: number;
  runInput: unknown;
  input: unknown;
  runSignal: AbortSignal;
  /** Built on first use of ctx.log. */
  log: () => Logger;
  batcher?: StepBatcher;
}

export type Outcome = { ok: true; output: unknown; tx?: pg.PoolClient } | { ok: false; error: unknown; tx?: pg.PoolClient };

function abortError(signal: AbortSignal, step: StepDefinition): unknown {
  const reason: unknown = signal.reason;
  if (reason instanceof DOMException && reason.name === 'TimeoutError') {
    return new StepTimeoutError(`step "${step.name}" timed out after ${step.timeoutMs} ms`);
  }
  return reason ?? new Error('aborted');
}

/** Settles with the step's result, or with the abort reason as soon as the signal fires. */
function raceAbort<T>(work: Promise<T>, signal: AbortSignal, step: StepDefinition): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal, step));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal, step));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export async function invokeStep(a: InvokeArgs): Promise<Outcome> {
  const signal = a.step.timeoutMs && !a.step.batch ? AbortSignal.any([a.runSignal, AbortSignal.timeout(a.step.timeoutMs)]) : a.runSignal;
  let tx: pg.PoolClient | undefined;
  let txOpening: Promise<pg.PoolClient> | undefined;
  const openTx = async (): Promise<TxClient> => {
    txOpening ??= (async () => {
      const client = await a.pool.connect();
      // A checked-out client has no pool listener: if its connection dies while the step holds it
      // (a server restart), the 'error' event would be uncaught and kill the process. The step's
      // next query, or its checkpoint, fails instead and reports it.
      client.on('error', ignoreClientError);
      try {
        await client.query('BEGIN');
      } catch (err) {
        client.release(err as Error);
        throw err;
      }
      tx = client;
      return client;
    })();
    return txOpening;
  };
  let log: Logger | undefined;
  const ctx: StepContext = {
    runId: a.runId,
    pipeline: a.pipeline,
    key: a.key,
    attempt: a.attempt,
    runInput: a.runInput,
    signal,
    get log() {
      return (log ??= a.log());
    },
    db: a.pool,
    tx: openTx,
  };
  try {
    const work = a.batcher
      ? a.batcher.submit({ ctx, input: a.input })
      : Promise.resolve().then(() => (a.step as Extract<StepDefinition, { batch?: undefined }>).run(ctx, a.input));
    // A step that ignores its signal keeps running in the background; its late result is dropped.
    work.catch(() => undefined);
    const output = await raceAbort(work, signal, a.step);
    if (txOpening && !tx) await txOpening.catch(() => undefined);
    return { ok: true, output: output === undefined ? null : output, ...(tx ? { tx } : {}) };
  } catch (error) {
    if (txOpening && !tx) await txOpening.catch(() => undefined);
    return { ok: false, error, ...(tx ? { tx } : {}) };
  }
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

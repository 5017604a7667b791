// Retries, non-retryable errors, timeouts, cancel and retry-from-failed-step.
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { NonRetryableError } from '../../../src/engine/retry.js';
import { definePipeline, type Pipeline } from '../../../src/pipeline/define.js';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';

const db = useTestDatabase();
let engine: Engine | undefined;
afterEach(async () => {
  await engine?.stop();
  engine = undefined;
});

async function run(pipelines: Pipeline[]): Promise<Engine> {
  engine = new Engine({ url: db.url, pipelines, pollIntervalMs: 50, leaseMs: 2000 });
  await engine.register();
  await engine.runWorkers();
  return engine;
}

async function runRow(id: string): Promise<{ status: string; attempt: number; error: { message: string; step?: string } | null }> {
  const { rows } = await db.pool.query('SELECT status, attempt, error FROM walflow.runs WHERE id = $1', [id]);
  return rows[0];
}

const until = (id: string, status: string, ms = 15_000) => waitFor(`run ${id} ${status}`, async () => (await runRow(id)).status === status, ms, 20);

describe('step failures', () => {
  it('retries with backoff and succeeds; each failed attempt is on the timeline', async () => {
    let calls = 0;
    const e = await run([definePipeline({ name: 'flaky', steps: [{ name: 'f', retry: { maxAttempts: 4, initialDelayMs: 100 }, run: (ctx) => {
      calls++;
      if (ctx.attempt < 3) throw new Error(`boom ${ctx.attempt}`);
      return { attempt: ctx.attempt };
    } }] })]);
    const id = await e.start('flaky', {});
    await until(id, 'completed');
    expect(calls).toBe(3);
    const { rows } = await db.pool.query(`SELECT outcome, attempt, error->>'message' AS msg FROM walflow.run_timeline WHERE run_id = $1 ORDER BY attempt`, [id]);
    expect(rows).toEqual([
      { outcome: 'failed', attempt: 1, msg: 'boom 1' },
      { outcome: 'failed', attempt: 2, msg: 'boom 2' },
      { outcome: 'completed', attempt: 3, msg: null },
    ]);
    expect((await db.pool.query('SELECT walflow.result($1) AS r', [id])).rows[0].r).toEqual({ attempt: 3 });
  });

  it('fails the run after maxAttempts with the real error (the dead-letter state)', async () => {
    const e = await run([definePipeline({ name: 'doomed', steps: [{ name: 'd', retry: { maxAttempts: 2, initialDelayMs: 10 }, run: () => { throw new Error('upstream said no'); } }] })]);
    const id = await e.start('doomed', {});
    await until(id, 'failed');
    expect(await runRow(id)).toMatchObject({ attempt: 2, error: { message: 'upstream said no', step: 'd' } });
  });

  it('does not retry a non-retryable error, nor one the policy rejects', async () => {
    let calls = 0;
    const e = await run([definePipeline({ name: 'fatal', steps: [{ name: 'x', retry: { maxAttempts: 5, initialDelayMs: 10, retryable: (err) => !(err instanceof TypeError) }, run: (ctx) => {
      calls++;
      if ((ctx.runInput as { kind: string }).kind === 'typed') throw new TypeError('bad shape');
      throw new NonRetryableError('invalid document');
    } }] })]);
    const a = await e.start('fatal', { kind: 'typed' });
    const b = await e.start('fatal', { kind: 'nonretryable' });
    await until(a, 'failed');
    await until(b, 'failed');
    expect(calls).toBe(2);
    expect((await runRow(b)).error?.message).toBe('invalid document');
  });

  it('times out a step that runs too long, aborts its signal, and retries it', async () => {
    let aborted = 0;
    const e = await run([definePipeline({ name: 'slow', steps: [{ name: 's', timeoutMs: 100, retry: { maxAttempts: 2, initialDelayMs: 10 }, run: (ctx) => new Promise((resolve) => {
      ctx.signal.addEventListener('abort', () => aborted++);
      if (ctx.attempt === 2) resolve('fast enough');
    }) }] })]);
    const id = await e.start('slow', {});
    await until(id, 'completed');
    expect(aborted).toBe(1);
    const { rows } = await db.pool.query(`SELECT error->>'name' AS name, error->>'message' AS msg FROM walflow.step_errors WHERE run_id = $1`, [id]);
    expect(rows).toEqual([{ name: 'StepTimeoutError', msg: 'step "s" timed out after 100 ms' }]);
  });

  it('retry() re-runs a failed run from its failed step, keeping earlier checkpoints', async () => {
    const calls: string[] = [];
    let healthy = false;
    const e = await run([definePipeline({ name: 'resumable', steps: [
      { name: 'one', run: () => { calls.push('one'); return 1; } },
      { name: 'two', retry: { maxAttempts: 1 }, run: () => { calls.push('two'); if (!healthy) throw new Error('not yet'); return 2; } },
      { name: 'three', run: (_c, i: number) => { calls.push('three'); return i + 1; } },
    ] })]);
    const id = await e.start('resumable', {});
    await until(id, 'failed');
    healthy = true;
    expect((await db.pool.query('SELECT walflow.retry($1) AS ok', [id])).rows[0].ok).toBe(true);
    await until(id, 'completed');
    expect(calls).toEqual(['one', 'two', 'two', 'three']);
    expect((await db.pool.query('SELECT walflow.result($1) AS r', [id])).rows[0].r).toBe(3);
    // Retrying a run that did not fail is a no-op that says so.
    expect((await db.pool.query('SELECT walflow.retry($1) AS ok', [id])).rows[0].ok).toBe(false);
  });

  it('cancel() stops a queued run before it starts, and a running one at its next checkpoint', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const seen: string[] = [];
    const e = await run([definePipeline({ name: 'cancellable', steps: [
      { name: 'wait', run: async (ctx) => { seen.push(`wait:${ctx.key}`); await gate; return 1; } },
      { name: 'after', run: (ctx) => void seen.push(`after:${ctx.key}`) },
    ] })]);
    const running = await e.start('cancellable', {}, { key: 'r' });
    await waitFor('first step running', async () => seen.includes('wait:r'));
    // A second run of the same key waits its turn (queued, not begun): cancel it there.
    const queued = await e.start('cancellable', { second: true }, { key: 'r' });
    expect((await db.pool.query('SELECT walflow.cancel($1) AS ok', [queued])).rows[0].ok).toBe(true);
    expect((await db.pool.query('SELECT walflow.cancel($1) AS ok', [running])).rows[0].ok).toBe(true);
    release();
    await new Promise((r) => setTimeout(r, 300));
    expect(seen).toEqual(['wait:r']);
    expect((await runRow(running)).status).toBe('cancelled');
    expect((await runRow(queued)).status).toBe('cancelled');
    const steps = await db.pool.query('SELECT count(*)::int AS n FROM walflow.steps WHERE run_id = $1', [running]);
    expect(steps.rows[0].n).toBe(0);
  });
});

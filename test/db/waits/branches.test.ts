// Conditions, early finish and repeats: the run's shape decided by what it has seen so far.
import { describe, expect, it } from 'vitest';
import { again, finish } from '../../../src/pipeline/step-control.js';
import { definePipeline } from '../../../src/pipeline/define.js';
import { useWaitEngine } from './support.js';

const t = useWaitEngine();

describe('branches and loops', () => {
  it('a step whose condition is false is skipped, on the timeline, and passes its input on', async () => {
    const e = await t.run([definePipeline({ name: 'triage', steps: [
      { name: 'classify', run: (ctx) => ({ spam: (ctx.runInput as { text: string }).text.includes('buy') }) },
      { name: 'flag', when: (_ctx, c: { spam: boolean }) => c.spam, run: () => ({ flagged: true }) },
      { name: 'report', run: (_ctx, input: unknown) => ({ got: input }) },
    ] })]);
    const ham = await e.start('triage', { text: 'hello' });
    const spam = await e.start('triage', { text: 'buy now' });
    await t.until(ham, 'completed');
    await t.until(spam, 'completed');
    expect(await t.timeline(ham)).toEqual([{ step: 'classify', outcome: 'completed' }, { step: 'flag', outcome: 'skipped' }, { step: 'report', outcome: 'completed' }]);
    expect(await t.result(ham)).toEqual({ got: { spam: false } });
    expect(await t.result(spam)).toEqual({ got: { flagged: true } });
  });

  it('finish() ends the run early with a result; later steps do not run', async () => {
    let later = 0;
    const e = await t.run([definePipeline({ name: 'early', steps: [
      { name: 'check', run: (ctx) => ((ctx.runInput as { cached: boolean }).cached ? finish({ from: 'cache' }) : { from: 'work' }) },
      { name: 'work', run: () => { later++; return { from: 'work' }; } },
    ] })]);
    const id = await e.start('early', { cached: true });
    await t.until(id, 'completed');
    expect(await t.result(id)).toEqual({ from: 'cache' });
    expect(later).toBe(0);
    expect((await t.timeline(id)).map((s) => s.step)).toEqual(['check']);
  });

  it('again() runs the step later until it reports done, without spending its retry budget', async () => {
    const seen: number[] = [];
    const e = await t.run([definePipeline({ name: 'poll', steps: [
      { name: 'job', retry: { maxAttempts: 1 }, run: (ctx) => {
        seen.push(ctx.repeats);
        return ctx.repeats < 3 ? again('100ms') : { done: true, polls: ctx.repeats };
      } },
      { name: 'after', run: (_ctx, input: unknown) => input },
    ] })]);
    const id = await e.start('poll', {});
    await t.until(id, 'completed');
    expect(seen).toEqual([0, 1, 2, 3]);
    expect(await t.result(id)).toEqual({ done: true, polls: 3 });
    expect(await t.q('SELECT count(*)::int AS n FROM walflow.step_errors WHERE run_id = $1', [id])).toEqual([{ n: 0 }]);
    expect(await t.q('SELECT * FROM walflow.waits WHERE run_id = $1', [id])).toEqual([]);
  });

  it('a step that asks to run again more than maxRepeats times fails the run, saying so', async () => {
    const e = await t.run([definePipeline({ name: 'forever', steps: [{ name: 'spin', maxRepeats: 2, run: () => again(10) }] })]);
    const id = await e.start('forever', {});
    await t.until(id, 'failed');
    const [r] = await t.q('SELECT error FROM walflow.runs WHERE id = $1', [id]);
    expect(r.error.message).toBe('step "spin" asked to run again more than its maxRepeats (2) times');
  });
});

import { describe, expect, it } from 'vitest';
import { RunControl } from '../../src/engine/run-control.js';

describe('RunControl (a run\'s cancellation)', () => {
  it('a signal read before or after the abort reports the same reason', () => {
    const before = new RunControl();
    const signal = before.signal;
    before.abort(new Error('cancelled'));
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).message).toBe('cancelled');

    const after = new RunControl();
    after.abort(new Error('lease lost'));
    expect(after.signal.aborted).toBe(true);
    expect((after.signal.reason as Error).message).toBe('lease lost');
    expect(() => after.throwIfAborted()).toThrow('lease lost');
  });

  it('a step\'s child aborts with its parent, and with a TimeoutError after its limit', async () => {
    const run = new RunControl();
    const step = RunControl.child(run, 20);
    run.abort(new Error('shutdown'));
    expect((step.reason as Error).message).toBe('shutdown');

    const run2 = new RunControl();
    const timed = RunControl.child(run2, 20);
    await new Promise((r) => setTimeout(r, 60));
    expect(timed.aborted).toBe(true);
    expect((timed.reason as DOMException).name).toBe('TimeoutError');
    expect(run2.aborted).toBe(false); // a step timeout fails the attempt, not the run
  });

  it('a disposed child no longer hears its parent nor times out', async () => {
    const run = new RunControl();
    const step = RunControl.child(run, 20);
    step.dispose();
    await new Promise((r) => setTimeout(r, 50));
    run.abort(new Error('cancelled'));
    expect(step.aborted).toBe(false);
  });

  it('listeners hear the abort once, and removed ones not at all', () => {
    const c = new RunControl();
    const heard: string[] = [];
    const a = (): void => void heard.push('a');
    const b = (): void => void heard.push('b');
    c.onAbort(a);
    c.onAbort(b);
    c.offAbort(a);
    c.abort('x');
    c.abort('y');
    expect(heard).toEqual(['b']);
    expect(c.reason).toBe('x');
  });
});

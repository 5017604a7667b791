// The fault-injection suite (bench/chaos, `npm run chaos`) at small sizes, inside `npm test`: every
// scenario on its own throwaway cluster with real `walflow run` processes, ending with the same
// invariant checks (bench/chaos/lib.ts): a run for every committed change and no more, ctx.tx
// effects exactly once, every row's current version applied, no run stuck, failures only where a
// fault was meant to cause them, and the slot caught up with the last write.
import { describe, expect, it } from 'vitest';
import { backlogScenario, failoverScenario, sigkillScenario, type ScenarioResult } from '../../../bench/chaos/scenarios.js';
import { SMALL } from './support/sizes.js';

function expectClean(r: ScenarioResult): void {
  expect(r.problems, JSON.stringify(r.metrics)).toEqual([]);
  expect(r.lost).toBe(0);
  expect(r.duplicated).toBe(0);
  expect(r.stuck).toBe(0);
}

describe('fault injection (npm run chaos, small): processes killed, leaders failing over, a backlog', () => {
  it('SIGKILL of walflow run at random moments: one run per committed change, ctx.tx effects exactly once, no committed step re-executed', async () => {
    const r = await sigkillScenario(SMALL);
    expectClean(r);
    expect(r.faults).toBeGreaterThanOrEqual(SMALL.kills);
    expect(r.metrics.reexecuted).toBe(0);
    expect(r.slotCaughtUp).toBe(true);
  }, 120_000);

  it('two, then three walflow processes with the leader SIGKILLed: one consumer at a time, a standby takes over within seconds', async () => {
    const r = await failoverScenario(SMALL);
    expectClean(r);
    expect(r.metrics.maxStreamingWalsenders).toBe(1);
    expect(r.metrics.maxLockHolders).toBe(1);
    expect(Number(r.metrics.maxTakeoverMs)).toBeLessThan(10_000);
  }, 120_000);

  it('a backlog queued while no worker ran drains with bounded memory and a claim rate that does not collapse', async () => {
    const r = await backlogScenario(SMALL);
    expectClean(r);
    expect(r.completed).toBe(SMALL.backlog);
  }, 120_000);
});

// The fault-injection suite (bench/chaos, `npm run chaos`) at small sizes, inside `npm test`: every
// scenario on its own throwaway cluster with real `walflow run` processes, ending with the same
// invariant checks (bench/chaos/lib.ts): a run for every committed change and no more, ctx.tx
// effects exactly once, every row's current version applied, no run stuck, failures only where a
// fault was meant to cause them, and the slot caught up with the last write.
import { describe, expect, it } from 'vitest';
import { pgRestartScenario, poisonScenario, providerFaultsScenario, type ScenarioResult } from '../../../bench/chaos/scenarios.js';
import { SMALL } from './support/sizes.js';

function expectClean(r: ScenarioResult): void {
  expect(r.problems, JSON.stringify(r.metrics)).toEqual([]);
  expect(r.lost).toBe(0);
  expect(r.duplicated).toBe(0);
  expect(r.stuck).toBe(0);
}

describe('fault injection (npm run chaos, small): PostgreSQL crashes, provider faults, poison rows', () => {
  it('PostgreSQL restarted with -m immediate mid-stream: the runner rides it out, nothing lost or applied twice', async () => {
    const r = await pgRestartScenario(SMALL);
    expectClean(r);
    expect(r.faults).toBe(1);
    expect(r.slotCaughtUp).toBe(true);
  }, 120_000);

  it('provider faults (429 + Retry-After, 500, hang, truncated JSON, wrong dimensions): runs fail only with the real reason, and walflow retry --failed completes them; the API key leaks nowhere', async () => {
    const r = await providerFaultsScenario(SMALL);
    expectClean(r);
    expect(r.faults).toBeGreaterThan(5);
    expect(r.metrics.apiKeyLeaks).toBe(0);
    expect(r.failedUnexpected).toBe(0);
  }, 120_000);

  it('poison rows fail with their error after their attempts; every other row flows and the slot keeps advancing', async () => {
    const r = await poisonScenario(SMALL);
    expectClean(r);
    expect(r.failedExpected).toBeGreaterThan(0);
    expect(r.slotCaughtUp).toBe(true);
  }, 120_000);
});

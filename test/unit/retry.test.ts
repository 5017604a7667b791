import { describe, expect, it } from 'vitest';
import { isRetryable, NonRetryableError, retryDelayMs, toStoredError } from '../../src/engine/retry.js';
import { UserError } from '../../src/errors.js';

describe('retry policy', () => {
  it('backs off exponentially up to the ceiling, with full jitter', () => {
    const policy = { initialDelayMs: 100, maxDelayMs: 1000 };
    expect([2, 3, 4, 5, 6].map((n) => retryDelayMs(policy, n, () => 1))).toEqual([100, 200, 400, 800, 1000]);
    expect(retryDelayMs(policy, 4, () => 0)).toBe(0);
    expect(retryDelayMs(policy, 4, () => 0.5)).toBe(200);
  });

  it("waits at least an error's retryAfterMs hint, but never past maxDelayMs (the policy wins)", () => {
    const policy = { initialDelayMs: 100, maxDelayMs: 5000 };
    const hinted = (retryAfterMs: unknown) => Object.assign(new Error('429'), { retryAfterMs });
    expect(retryDelayMs(policy, 2, () => 1, hinted(2000))).toBe(2000);
    expect(retryDelayMs(policy, 6, () => 1, hinted(50))).toBe(1600); // the backoff is longer: it stands
    expect(retryDelayMs(policy, 2, () => 1, hinted(60_000))).toBe(5000);
    expect(retryDelayMs(policy, 2, () => 1, hinted('soon'))).toBe(100);
    expect(retryDelayMs(policy, 2, () => 1, new Error('plain'))).toBe(100);
  });

  it('never retries NonRetryableError or errors marked retryable=false; otherwise asks the policy', () => {
    expect(isRetryable(new NonRetryableError('x'), undefined)).toBe(false);
    expect(isRetryable(new UserError('run input lacks key column(s) id'), undefined)).toBe(false);
    expect(isRetryable(Object.assign(new Error('x'), { retryable: false }), undefined)).toBe(false);
    expect(isRetryable(new Error('x'), undefined)).toBe(true);
    expect(isRetryable(new TypeError('x'), { retryable: (e) => !(e instanceof TypeError) })).toBe(false);
  });

  it('stores errors with their stack and without secrets', () => {
    const stored = toStoredError(new Error('connect postgres://app:hunter2@db/x failed'), { step: 's' });
    expect(stored.message).toBe('connect postgres://app:***@db/x failed');
    expect(stored.stack).not.toContain('hunter2');
    expect(stored.step).toBe('s');
    expect(toStoredError('plain').message).toBe('plain');
  });
});

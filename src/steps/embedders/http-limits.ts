/**
 * Small building blocks for HTTP clients that must be polite to a remote API: a FIFO semaphore
 * (requests in flight), a token bucket (requests per minute) and Retry-After parsing (the sleep and
 * the backoff are src/util's). No dependencies; every wait can be cut short by an AbortSignal.
 */

import { abortableSleep } from '../../util/sleep.js';

interface Waiter {
  grant: () => void;
}

/** At most `limit` holders at once; waiters are served first come, first served. */
export class Semaphore {
  private held = 0;
  private readonly queue: Waiter[] = [];

  constructor(readonly limit: number) {}

  get active(): number {
    return this.held;
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** Resolves with a release function (idempotent); rejects with `signal.reason` if aborted while waiting. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason as unknown);
    if (this.held < this.limit) {
      this.held++;
      return Promise.resolve(this.releaser());
    }
    return new Promise<() => void>((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.releaser()); // the slot is handed over: `held` is unchanged
        },
      };
      const onAbort = (): void => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        reject(signal!.reason as unknown);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.queue.shift();
      if (next) next.grant();
      else this.held--;
    };
  }
}

/**
 * Token bucket for a requests-per-minute limit. Refills continuously at perMinute/60 000 tokens per
 * ms; holds at most `burst` tokens (default: one second's worth, at least 1), so a fresh bucket does
 * not fire a whole minute's budget at once. acquire() reserves a token (the balance may go negative,
 * which queues callers fairly) and waits until it is due; an aborted wait gives its token back.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly perMs: number;
  readonly burst: number;

  constructor(perMinute: number, burst?: number, private readonly now: () => number = () => performance.now()) {
    if (!(perMinute > 0)) throw new RangeError(`requests per minute must be positive, got ${perMinute}`);
    this.perMs = perMinute / 60_000;
    this.burst = burst ?? Math.max(1, Math.ceil(perMinute / 60));
    this.tokens = this.burst;
    this.last = this.now();
  }

  async acquire(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.perMs);
    this.last = now;
    this.tokens -= 1;
    if (this.tokens >= 0) return;
    try {
      await abortableSleep(Math.ceil(-this.tokens / this.perMs), signal);
    } catch (err) {
      this.tokens += 1;
      throw err;
    }
  }
}

/**
 * The delay a server asks for, in ms: `retry-after-ms` (OpenAI, Azure; milliseconds, may be
 * fractional) wins over `retry-after` (seconds, or an HTTP date). Undefined when absent or unparsable.
 */
export function parseRetryAfterMs(headers: Headers, now: number = Date.now()): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && ms.trim() !== '') {
    const value = Number(ms);
    if (Number.isFinite(value) && value >= 0) return Math.ceil(value);
  }
  const after = headers.get('retry-after');
  if (after === null || after.trim() === '') return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(after)) return Math.ceil(Number(after) * 1000);
  const date = Date.parse(after);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

import { Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { writeCoalesced } from '../../../src/replication/operators/write-coalesced.js';

describe('writeCoalesced', () => {
  it('writes at once when idle, merges batches that queue up behind a write (up to maxItems), keeps order', async () => {
    const writes: number[][] = [];
    const releases: (() => void)[] = [];
    const input = new Subject<number[]>();
    const results: number[] = [];
    let completed = false;
    input
      .pipe(writeCoalesced(5, (items: number[]) => {
        writes.push(items);
        return new Promise<number>((resolve) => releases.push(() => resolve(items.length)));
      }))
      .subscribe({ next: (n) => results.push(n), complete: () => (completed = true) });
    input.next([1, 2]);
    expect(writes).toEqual([[1, 2]]); // idle: written at once
    input.next([3]);
    input.next([4, 5]);
    input.next([6, 7, 8]);
    input.complete();
    releases[0]!();
    await new Promise((r) => setTimeout(r, 0));
    expect(writes).toEqual([[1, 2], [3, 4, 5]]); // [6,7,8] would pass maxItems
    releases[1]!();
    await new Promise((r) => setTimeout(r, 0));
    releases[2]!();
    await new Promise((r) => setTimeout(r, 0));
    expect(writes.at(-1)).toEqual([6, 7, 8]);
    expect(results).toEqual([2, 3, 3]);
    expect(completed).toBe(true);
  });

  it('fails the stream when a write fails (the session then reconnects from the durable position)', async () => {
    const input = new Subject<number[]>();
    let error: unknown;
    input.pipe(writeCoalesced(5, () => Promise.reject(new Error('boom')))).subscribe({ error: (e: unknown) => (error = e) });
    input.next([1]);
    await new Promise((r) => setTimeout(r, 0));
    expect((error as Error).message).toBe('boom');
  });
});

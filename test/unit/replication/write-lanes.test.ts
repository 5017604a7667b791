import { Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { laneOf, writeInLanes, type CommittedBatch } from '../../../src/replication/writing/write-lanes.js';
import type { WriteItem } from '../../../src/replication/types.js';

const start = (key: string, n: number): WriteItem => ({
  kind: 'start', pipeline: 'p', runKey: key, dedupeId: `0/1:${n}`,
  event: { table: 'public.t', op: 'insert', row: { id: key }, old: null, lsn: '0/1', index: n } as never,
});
const boundary = (endLsn: string): WriteItem => ({ kind: 'boundary', endLsn } as WriteItem);

/** Two keys that land in different lanes of 2. */
function keysInTwoLanes(): [string, string] {
  const a = 'k0';
  for (let i = 1; i < 100; i++) if (laneOf(`p\u0000k${i}`, 2) !== laneOf(`p\u0000${a}`, 2)) return [a, `k${i}`];
  throw new Error('no second lane');
}

describe('writeInLanes', () => {
  it('writes lanes in parallel but reports a batch committed only once it and every earlier batch are', async () => {
    const [a, b] = keysInTwoLanes();
    const writes: { keys: string[]; release: () => void }[] = [];
    const input = new Subject<WriteItem[]>();
    const committed: CommittedBatch[] = [];
    input
      .pipe(writeInLanes(2, 100, (items) => new Promise<void>((release) => writes.push({ keys: items.map((i) => (i.kind === 'start' ? i.runKey! : '?')), release }))))
      .subscribe((c) => committed.push(c));
    input.next([start(a, 1), boundary('0/10')]);
    input.next([start(b, 2), boundary('0/20')]);
    expect(writes.map((w) => w.keys)).toEqual([[a], [b]]); // both lanes busy at once
    writes[1]!.release(); // the second batch commits first...
    await new Promise((r) => setTimeout(r, 0));
    expect(committed).toEqual([]); // ...but its position may not be acknowledged before the first's
    writes[0]!.release();
    await new Promise((r) => setTimeout(r, 0));
    expect(committed.map((c) => c.boundary)).toEqual(['0/10', '0/20']);
  });

  it('keeps the changes of one key in one lane, in order, merging what queues up behind a write', async () => {
    const [a] = keysInTwoLanes();
    const writes: string[][] = [];
    const releases: (() => void)[] = [];
    const input = new Subject<WriteItem[]>();
    const committed: CommittedBatch[] = [];
    input
      .pipe(writeInLanes(2, 3, (items) => {
        writes.push(items.map((i) => (i.kind === 'start' ? i.dedupeId : '?')));
        return new Promise<void>((r) => releases.push(r));
      }))
      .subscribe((c) => committed.push(c));
    input.next([start(a, 1)]);
    input.next([start(a, 2)]);
    input.next([start(a, 3), start(a, 4)]);
    input.next([start(a, 5), boundary('0/50')]);
    releases[0]!();
    await new Promise((r) => setTimeout(r, 0));
    releases[1]!();
    await new Promise((r) => setTimeout(r, 0));
    releases[2]!();
    await new Promise((r) => setTimeout(r, 0));
    expect(writes).toEqual([['0/1:1'], ['0/1:2', '0/1:3', '0/1:4'], ['0/1:5']]);
    expect(committed.map((c) => c.boundary)).toEqual([null, null, null, '0/50']);
  });

  it('a batch with nothing to write (a heartbeat) is committed as soon as the batches before it are', async () => {
    const input = new Subject<WriteItem[]>();
    const committed: CommittedBatch[] = [];
    let release!: () => void;
    input.pipe(writeInLanes(2, 10, () => new Promise<void>((r) => (release = r)))).subscribe((c) => committed.push(c));
    input.next([start('x', 1)]);
    input.next([boundary('0/99')]);
    expect(committed).toEqual([]);
    release();
    await new Promise((r) => setTimeout(r, 0));
    expect(committed.map((c) => c.boundary)).toEqual([null, '0/99']);
  });

  it('fails the stream when a write fails (the session then reconnects from the durable position)', async () => {
    const input = new Subject<WriteItem[]>();
    let error: unknown;
    input.pipe(writeInLanes(2, 5, () => Promise.reject(new Error('boom')))).subscribe({ error: (e: unknown) => (error = e) });
    input.next([start('x', 1)]);
    await new Promise((r) => setTimeout(r, 0));
    expect((error as Error).message).toBe('boom');
  });
});

import { Subject } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { batchByCountAndTime } from '../../../src/replication/operators/batch.js';
import { extractKeys } from '../../../src/replication/operators/extract-keys.js';
import { runKeyOf } from '../../../src/pipeline/run-identity.js';
import { filterByDeclaration } from '../../../src/replication/operators/filter-declaration.js';
import { filterByPredicate } from '../../../src/replication/operators/filter-where.js';
import { fillUnchangedToast } from '../../../src/replication/operators/fill-toast.js';
import { routeToPipelines } from '../../../src/replication/operators/route.js';
import type { RawChange } from '../../../src/replication/types.js';
import { change, commit, route, routed } from './support/fixtures.js';

const scheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

describe('routeToPipelines', () => {
  it('fans a change out to each pipeline of its table, passes positions through, reports unrouted changes', () => {
    const a = route('a');
    const b = route('b');
    const other = change('insert', { id: 9 }, { table: 'public.other' });
    const c = change('insert', { id: 1 });
    const unrouted: unknown[] = [];
    scheduler().run(({ cold, expectObservable }) => {
      const src = cold('c-o-x|', { c, o: other, x: commit('0/20') });
      expectObservable(src.pipe(routeToPipelines(new Map([['public.t', [a, b]]]), (u) => unrouted.push(u)))).toBe('(ab)x|', {
        a: routed(c, a), b: routed(c, b), x: commit('0/20'),
      });
    });
    expect(unrouted).toEqual([other]);
  });
});

describe('filterByDeclaration', () => {
  it('drops events a pipeline does not react to and updates that touch none of its columns, counting them', () => {
    const onlyInsert = route('p', { events: new Set(['insert']) });
    const titled = route('q', { columns: ['title'] });
    const ins = routed(change('insert', { id: 1 }), onlyInsert);
    const del = routed(change('delete', null), onlyInsert);
    const fullOld = { oldIsFull: true, old: { id: 1, title: 'a', n: 1 } };
    const sameTitle = routed(change('update', { id: 1, title: 'a', n: 2 }, fullOld), titled);
    const newTitle = routed(change('update', { id: 1, title: 'b', n: 2 }, fullOld), titled);
    // Without the full old row only unchanged-TOAST columns are known to be unchanged.
    const toastOnly = routed(change('update', { id: 1, n: 2 }, { unchangedToast: ['title'] }), titled);
    const unknown = routed(change('update', { id: 1, title: 'a', n: 2 }), titled);
    const dropped: string[] = [];
    scheduler().run(({ cold, expectObservable }) => {
      const src = cold('abcdef|', { a: ins, b: del, c: sameTitle, d: newTitle, e: toastOnly, f: unknown });
      expectObservable(src.pipe(filterByDeclaration((_i, reason) => dropped.push(reason)))).toBe('a--d-f|', { a: ins, d: newTitle, f: unknown });
    });
    expect(dropped).toEqual(['event', 'columns', 'columns']);
  });
});

describe('filterByPredicate', () => {
  it('keeps rows the predicate accepts, counts the rest, and turns a throwing predicate into an error item', () => {
    const r = route('p', { where: (row) => (row.n as { v: number }).v > 1 });
    const yes = routed(change('insert', { id: 1, n: { v: 2 } }), r);
    const no = routed(change('insert', { id: 2, n: { v: 0 } }), r);
    const boom = routed(change('insert', { id: 3, n: null }, { index: 7 }), r);
    const del = routed(change('delete', null), r); // key-only old row: not judged
    const gone = routed(change('update', { id: 4 }, { toast: 'gone' }), r);
    const dropped: string[] = [];
    scheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('abcde|', { a: yes, b: no, c: boom, d: del, e: gone }).pipe(filterByPredicate((_i, reason) => dropped.push(reason)))).toBe('a-cd-|', {
        a: yes,
        c: expect.objectContaining({ kind: 'error', errorKind: 'predicate_failed', pipeline: 'p', lsn: '0/10', index: 7 }),
        d: del,
      });
    });
    expect(dropped).toEqual(['where', 'row-gone']);
  });
});

describe('extractKeys', () => {
  it('builds the run: ChangeEvent input, table key as run key, (commit LSN, index) as dedupe id', () => {
    const r = route('p');
    const two = route('p2', { keyColumns: ['a', 'b'] });
    const ins = routed(change('insert', { id: 5, x: 1 }, { index: 3 }), r);
    const del = routed(change('delete', null, { old: { a: 1, b: 'z' } }), two);
    const trunc = routed(change('truncate', null, { old: null }), r);
    const nokey = routed(change('delete', null, { old: { id: 1 } }), two);
    scheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('abcdx|', { a: ins, b: del, c: trunc, d: nokey, x: commit('0/20') }).pipe(extractKeys())).toBe('abcdx|', {
        a: { kind: 'start', pipeline: 'p', runKey: '5', dedupeId: '0/10/0000000003', event: { op: 'insert', table: 'public.t', key: { id: 5 }, row: { id: 5, x: 1 }, old: null, lsn: '0/10', index: 3 } },
        b: expect.objectContaining({ kind: 'start', runKey: '[1,"z"]', event: expect.objectContaining({ key: { a: 1, b: 'z' }, row: null }) }),
        c: expect.objectContaining({ kind: 'start', runKey: null, event: expect.objectContaining({ op: 'truncate', key: null }) }),
        d: expect.objectContaining({ kind: 'error', errorKind: 'key_missing' }),
        x: commit('0/20'),
      });
    });
    expect(runKeyOf({ d: new Date('2024-01-02T03:04:05Z') }, ['d'])).toBe('2024-01-02T03:04:05.000Z');
  });
});

describe('batchByCountAndTime', () => {
  it('closes a batch at maxItems (by weight) or maxWaitMs after its first item, and on completion', () => {
    scheduler().run(({ cold, expectObservable }) => {
      // maxItems 3 (x weighs 0), maxWait 5 ms.
      const src = cold('abc 10ms dx 10ms e 2ms f|');
      const out = src.pipe(batchByCountAndTime(3, 5, (v) => (v === 'x' ? 0 : 1)));
      expectObservable(out).toBe('--a 15ms b 10ms (c|)', { a: ['a', 'b', 'c'], b: ['d', 'x'], c: ['e', 'f'] });
    });
  });

  it('emits nothing for silence', () => {
    scheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('20ms |').pipe(batchByCountAndTime(3, 5))).toBe('20ms |');
    });
  });
});

describe('fillUnchangedToast', () => {
  it('holds order while a re-read is in flight and re-reads everything pending in one call', async () => {
    const r = route('p');
    const plain = routed(change('insert', { id: 1 }), r);
    const t1 = routed(change('update', { id: 2 }, { unchangedToast: ['body'], toast: 'pending' }), r);
    const t2 = routed(change('update', { id: 3 }, { unchangedToast: ['body'], toast: 'pending', index: 1 }), r);
    const gone = routed(change('update', { id: 5 }, { unchangedToast: ['body'], toast: 'pending', index: 2 }), r);
    const after = routed(change('insert', { id: 4 }, { index: 3 }), r);
    const calls: number[][] = [];
    const releases: (() => void)[] = [];
    const fill = (cs: RawChange[]) => {
      calls.push(cs.map((c) => c.row!.id as number));
      return new Promise<void>((resolve) =>
        releases.push(() => {
          for (const c of cs) if (c.row!.id !== 5) Object.assign(c, { toast: 'filled', row: { ...c.row, body: `b${String(c.row!.id)}` } });
          resolve();
        }),
      );
    };
    const queued: number[] = [];
    const input = new Subject<typeof plain>();
    const out: unknown[] = [];
    let completed = false;
    input.pipe(fillUnchangedToast(fill, (d) => queued.push(d))).subscribe({ next: (v) => out.push(v), complete: () => (completed = true) });
    input.next(plain);
    input.next(t1);
    expect(out).toEqual([plain]); // t1 waits for its re-read
    input.next(t2);
    input.next(gone);
    input.next(after);
    input.complete();
    expect(calls).toEqual([[2]]);
    releases[0]!();
    await new Promise((r) => setTimeout(r, 0));
    expect(out).toEqual([plain, t1]);
    expect(calls).toEqual([[2], [3, 5]]); // everything pending by then, in one call
    releases[1]!();
    await new Promise((r) => setTimeout(r, 0));
    expect(out).toEqual([plain, t1, t2, gone, after]);
    expect((t1.change.row as { body: string }).body).toBe('b2');
    expect(gone.change.toast).toBe('gone'); // not found by the re-read
    expect(completed).toBe(true);
    expect(queued.reduce((a, b) => a + b, 0)).toBe(0);
  });
});

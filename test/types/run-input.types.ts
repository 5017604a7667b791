// Type-level tests of ctx.runInput (compiled by `npm run typecheck`, never run): every
// `@ts-expect-error` line must stay an error, so a regression that lets it compile fails the build.
import { z } from 'zod';
import { definePipeline, type Pipeline } from '../../src/pipeline/define.js';
import type { SourceRunInput, SourceRunInputFor } from '../../src/pipeline/types.js';

type User = { email: string; name: string };
const noop = { name: 'noop', run: () => null };

// The README's example, untyped: row is a Record of unknowns, readable on an insert-only source.
definePipeline({
  name: 'readme', source: { table: 'users', events: ['insert'] },
  steps: [{ name: 'render', run: (ctx) => ({ to: ctx.runInput.row.email, id: ctx.runInput.key.id }) }],
});

// The README's example as it stands there (keep the two in step).
declare function sendMail(mail: { to: string }, opts: { signal: AbortSignal }): Promise<void>;
definePipeline<{ id: number; email: string }>({   // the row type: optional
  name: 'welcome-email',
  source: { table: 'users', events: ['insert'] },          // runs start from WAL; omit for SQL/TS-started runs
  steps: [
    // ctx.runInput is an insert or a backfill here: both carry the row (see "Run input" below).
    { name: 'render', run: (ctx) => ({ to: ctx.runInput.row.email }) },
    { name: 'send', retry: { maxAttempts: 8 }, timeoutMs: 10_000,
      run: async (ctx, mail) => sendMail(mail, { signal: ctx.signal }) },
    { name: 'record', run: async (ctx) => {
        const tx = await ctx.tx();                            // commits atomically with this checkpoint
        await tx.query('UPDATE users SET welcomed = true WHERE id = $1', [ctx.runInput.key.id]);
      } },
  ],
});

// A typed row, insert only: row.email is a string (inserts and backfills both carry the row).
export const typed = definePipeline<User>({
  name: 'typed', source: { table: 'users', events: ['insert'] },
  steps: [{ name: 'render', run: (ctx) => {
    const email: string = ctx.runInput.row.email;
    // @ts-expect-error no such column on User
    void ctx.runInput.row.phone;
    // @ts-expect-error an insert-only pipeline never gets a delete
    if (ctx.runInput.op === 'delete') return null;
    return email;
  } }],
});
export const typedInput: Pipeline<SourceRunInputFor<User, 'insert'>> = typed;

// Inserts and deletes: reading row without narrowing on op does not compile; after narrowing it does.
definePipeline<User>({
  name: 'with-deletes', source: { table: 'users', events: ['insert', 'delete'] },
  steps: [{ name: 's', run: (ctx) => {
    // @ts-expect-error row is null on a delete
    void ctx.runInput.row.email;
    const input = ctx.runInput;
    if (input.op === 'delete') return input.old.email ?? input.key;
    return input.row.email;
  } }],
});

// The same with inferred (untyped) rows, events in another order.
definePipeline({
  name: 'untyped-deletes', source: { table: 'users', events: ['delete', 'insert'] },
  steps: [{ name: 's', run: (ctx) => {
    // @ts-expect-error row is null on a delete
    void ctx.runInput.row.email;
    return ctx.runInput.op === 'backfill' ? ctx.runInput.backfill : ctx.runInput.lsn;
  } }],
});

// events omitted: all four, and truncate has no key.
definePipeline({
  name: 'all', source: { table: 'users' },
  steps: [{ name: 's', run: (ctx) => {
    // @ts-expect-error key is null on a truncate
    void ctx.runInput.key.id;
    return ctx.runInput.op === 'truncate' ? null : ctx.runInput.key.id;
  } }],
});

// A pipeline without a source declares its input schema: runInput is what the schema parses to.
definePipeline({
  name: 'jobs', input: z.object({ id: z.number() }),
  steps: [{ name: 's', run: (ctx) => {
    const id: number = ctx.runInput.id;
    // @ts-expect-error not in the schema
    void ctx.runInput.other;
    return id;
  } }],
});

// Without either, the run input is what the type argument says (or any).
definePipeline<{ n: number }>({ name: 'plain', steps: [{ name: 's', run: (ctx) => ctx.runInput.n + 1 }] });

// @ts-expect-error a source pipeline's input is its source's shape
definePipeline({ name: 'both', source: { table: 'users' }, input: z.object({}), steps: [noop] });

// The union itself: a delete has no row, a backfill no lsn.
declare const any: SourceRunInput<User>;
if (any.op === 'delete') {
  // @ts-expect-error row is null on a delete
  void any.row.email;
}
if (any.op === 'backfill') {
  const lsn: null = any.lsn;
  void lsn;
}

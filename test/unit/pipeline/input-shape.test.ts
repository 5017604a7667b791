import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { UserError } from '../../../src/errors.js';
import { definePipeline } from '../../../src/pipeline/define.js';

const noop = { name: 'noop', run: () => null };
const welcome = definePipeline({ name: 'welcome', source: { table: 'users', events: ['insert', 'delete'] }, steps: [noop] });
const keyed = definePipeline({ name: 'keyed', source: { table: 'app."Users"', key: ['id'] }, steps: [noop] });

function refusal(check: (v: unknown) => unknown, input: unknown): string {
  try {
    check(input);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(input)}`);
}

describe('run input check of a source pipeline', () => {
  it('refuses what is not its shape, naming the pipeline, its table, the expected shape, what it got and why', () => {
    expect(refusal(welcome.checkInput!, { row: { email: 'a@b.c' } })).toBe(
      'run input does not fit pipeline "welcome" (source public.users): expected {op: "insert"|"delete"|"backfill", table: "public.users", '
        + 'key: {<primary key columns>}, row: {...}} — got {"row":{"email":"a@b.c"}} (op: expected "insert"|"delete"|"backfill")',
    );
    expect(refusal(welcome.checkInput!, 42)).toMatch(/— got 42 \(not an object\)$/);
    expect(refusal(welcome.checkInput!, [1])).toMatch(/\(not an object\)$/);
    // An op the source does not declare is not its shape either.
    expect(refusal(welcome.checkInput!, { op: 'update', table: 'public.users', key: { id: 1 }, row: {} })).toMatch(/\(op: expected "insert"\|"delete"\|"backfill", got "update"\)$/);
    expect(refusal(welcome.checkInput!, { op: 'insert', table: 'public.users', key: { id: 1 } })).toMatch(/\(row: expected an object\)$/);
    expect(refusal(welcome.checkInput!, { op: 'insert', table: 'users', key: { id: 1 }, row: {} })).toMatch(/\(table: expected "public.users"\)$/);
    expect(refusal(welcome.checkInput!, { op: 'insert', table: 'public.users', key: {}, row: {} })).toMatch(/\(key: expected the key column\(s\), not \{\}\)$/);
    expect(refusal(welcome.checkInput!, { op: 'delete', table: 'public.users', key: { id: 1 } })).toMatch(/\(old: expected an object\)$/);
    // Declared key columns are required by name; a backfill carries its row and its backfill id.
    expect(refusal(keyed.checkInput!, { op: 'backfill', table: 'app.Users', key: { x: 1 }, row: {}, backfill: 1 }))
      .toMatch(/^run input does not fit pipeline "keyed" \(source app\.Users\): expected \{op: "insert"\|"update"\|"delete"\|"truncate"\|"backfill", table: "app.Users", key: \{id\}, row: \{...\}\} — got .* \(key: expected the key column\(s\) id\)$/);
    expect(refusal(keyed.checkInput!, { op: 'backfill', table: 'app.Users', key: { id: 1 }, row: {} })).toMatch(/\(backfill: .*expected number/);
  });

  it('accepts every variant, keeps extra fields, and fills in the fields that may be left out as null', () => {
    const t = 'app.Users';
    expect(keyed.checkInput!({ op: 'insert', table: t, key: { id: 1 }, row: { id: 1 }, note: 'kept' }))
      .toEqual({ op: 'insert', table: t, key: { id: 1 }, row: { id: 1 }, old: null, lsn: null, index: null, note: 'kept' });
    const wal = { op: 'update', table: t, key: { id: 1 }, row: { id: 1, v: 2 }, old: { id: 1 }, lsn: '0/16B3748', index: 3 };
    expect(keyed.checkInput!(wal)).toEqual(wal);
    expect(keyed.checkInput!({ op: 'update', table: t, key: { id: 1 }, row: { id: 1 } })).toMatchObject({ old: null });
    expect(keyed.checkInput!({ op: 'delete', table: t, key: { id: 1 }, old: { id: 1 } })).toMatchObject({ row: null });
    expect(keyed.checkInput!({ op: 'truncate', table: t })).toEqual({ op: 'truncate', table: t, key: null, row: null, old: null, lsn: null, index: null });
    const backfill = { op: 'backfill', table: t, key: { id: 1 }, row: { id: 1 }, old: null, lsn: null, index: null, backfill: 7 };
    expect(keyed.checkInput!(backfill)).toEqual(backfill);
  });
});

describe('declared input of a pipeline without a source', () => {
  it('is parsed (its result is the run input); what does not parse is refused with the pipeline named', () => {
    const jobs = definePipeline({ name: 'jobs', input: z.object({ id: z.number(), n: z.number().default(1) }), steps: [noop] });
    expect(jobs.checkInput!({ id: 3 })).toEqual({ id: 3, n: 1 });
    expect(refusal(jobs.checkInput!, { id: 'x' })).toBe('run input does not fit pipeline "jobs": id: Invalid input: expected number, received string — got {"id":"x"}');
    // Anything with parse() will do.
    const custom = definePipeline({ name: 'custom', input: { parse: (v: unknown) => { if (typeof v !== 'number') throw new Error('a number, please'); return v; } }, steps: [noop] });
    expect(refusal(custom.checkInput!, 'x')).toBe('run input does not fit pipeline "custom": a number, please — got "x"');
  });

  it('is refused at definition when it is not a schema, or declared beside a source; no check when neither', () => {
    expect(() => definePipeline({ name: 'p', input: 5 as never, steps: [noop] })).toThrow(/^pipeline "p": input must have a parse\(value\) function/);
    expect(() => definePipeline({ name: 'p', source: { table: 't' }, input: z.object({}) } as never)).toThrow();
    expect(() => definePipeline({ name: 'p', source: { table: 't' }, input: z.object({}), steps: [noop] } as never)).toThrow(/^pipeline "p": a source pipeline cannot declare input/);
    expect(definePipeline({ name: 'free', steps: [noop] }).checkInput).toBeUndefined();
  });
});

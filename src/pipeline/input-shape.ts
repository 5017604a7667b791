// The check every run's input passes before a step sees it. For a source pipeline it is derived
// from the definition (the SourceRunInput variants of its declared events, plus backfill, for its
// table and key columns); a pipeline without a source may declare `input` (a zod schema or anything
// with parse()). A run whose input does not fit fails at once and is not retried: retrying cannot
// change its input, and a step would only fail later with a less helpful error.
import { z } from 'zod';
import { UserError } from '../errors.js';
import { parseTableName, qualified } from './table-name.js';
import type { ChangeOp, InputSchema, SourceDefinition, SourceRunInput, SourceRunOp } from './types.js';

export type InputCheck<T> = (input: unknown) => T;

const ALL_EVENTS: readonly ChangeOp[] = ['insert', 'update', 'delete', 'truncate'];

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const object = z.custom<Record<string, unknown>>(isPlainObject, { message: 'expected an object' });

/** `got …` in a message: the input as JSON, cut short so that a large row does not flood the log. */
function shown(v: unknown, max = 200): string {
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = String(v);
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** `path: message` of a parse error's first issues (zod errors carry `issues`; others their message). */
function describeError(err: unknown): string {
  const issues = (err as { issues?: unknown }).issues;
  if (Array.isArray(issues) && issues.length > 0) {
    return (issues as { path?: PropertyKey[]; message?: string }[])
      .slice(0, 3)
      .map((i) => `${i.path && i.path.length > 0 ? `${i.path.map(String).join('.')}: ` : ''}${i.message ?? 'invalid'}`)
      .join('; ');
  }
  return err instanceof Error ? err.message : String(err);
}

function sourceSchema(table: string, events: readonly ChangeOp[], keyColumns: readonly string[] | undefined) {
  const key = keyColumns
    ? object.refine((k) => keyColumns.every((c) => k[c] !== undefined && k[c] !== null), { message: `expected the key column(s) ${keyColumns.join(', ')}` })
    : object.refine((k) => Object.keys(k).length > 0, { message: 'expected the key column(s), not {}' });
  // Fields that are null in some cases may be left out of an input started from SQL.
  const absentNull = z.null().default(null);
  const common = {
    table: z.literal(table, { message: `expected "${table}"` }),
    lsn: z.string().nullable().default(null),
    index: z.number().int().nullable().default(null),
  };
  const variants = {
    insert: z.looseObject({ op: z.literal('insert'), ...common, key, row: object, old: absentNull }),
    update: z.looseObject({ op: z.literal('update'), ...common, key, row: object, old: object.nullable().default(null) }),
    delete: z.looseObject({ op: z.literal('delete'), ...common, key, row: absentNull, old: object }),
    truncate: z.looseObject({ op: z.literal('truncate'), ...common, key: absentNull, row: absentNull, old: absentNull }),
    backfill: z.looseObject({
      op: z.literal('backfill'), table: common.table, key, row: object, old: absentNull, lsn: absentNull, index: absentNull,
      backfill: z.number().int(),
    }),
  };
  const chosen = [...events.map((e) => variants[e]), variants.backfill];
  return z.discriminatedUnion('op', chosen as [typeof chosen[number], ...typeof chosen]);
}

/** The shape a source pipeline's run input must have, as error messages and docs show it. */
export function describeSourceShape(source: SourceDefinition<unknown, ChangeOp>): string {
  const ops: SourceRunOp[] = [...(source.events ?? ALL_EVENTS), 'backfill'];
  const key = source.key ? `{${source.key.join(', ')}}` : '{<primary key columns>}';
  return `{op: ${ops.map((o) => `"${o}"`).join('|')}, table: "${qualified(parseTableName(source.table))}", key: ${key}, row: {...}}`;
}

/**
 * The check of a source pipeline's run input: returns the input as steps see it (fields that may be
 * null and were left out are null) or throws a UserError naming the expected shape.
 */
export function sourceInputCheck(pipeline: string, source: SourceDefinition<unknown, ChangeOp>): InputCheck<SourceRunInput> {
  const table = qualified(parseTableName(source.table));
  const events = [...new Set(source.events ?? ALL_EVENTS)];
  const schema = sourceSchema(table, events, source.key);
  const allowed = new Set<unknown>([...events, 'backfill']);
  const refuse = (input: unknown, why: string): never => {
    throw new UserError(`run input does not fit pipeline "${pipeline}" (source ${table}): expected ${describeSourceShape(source)} — got ${shown(input)} (${why})`);
  };
  return (input) => {
    if (!isPlainObject(input)) return refuse(input, 'not an object');
    // The op first: its message is the one to read when a pipeline was started with the wrong kind of input.
    if (!allowed.has(input.op)) {
      return refuse(input, `op: expected ${[...allowed].map((o) => `"${String(o)}"`).join('|')}${input.op === undefined ? '' : `, got ${shown(input.op)}`}`);
    }
    const parsed = schema.safeParse(input);
    if (!parsed.success) return refuse(input, describeError(parsed.error));
    return parsed.data as SourceRunInput;
  };
}

/** The check of a pipeline's declared `input` schema: its parse() result, or a UserError naming the pipeline. */
export function declaredInputCheck<T>(pipeline: string, schema: InputSchema<T>): InputCheck<T> {
  return (input) => {
    try {
      return schema.parse(input);
    } catch (err) {
      throw new UserError(`run input does not fit pipeline "${pipeline}": ${describeError(err)} — got ${shown(input)}`);
    }
  };
}

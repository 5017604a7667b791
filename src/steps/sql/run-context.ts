// What the :placeholders of steps defined in SQL read: the run's input, earlier steps' outputs (their
// checkpoints), the previous step's output and the run's identity. SQL steps bind them inside the
// statement (walflow.compile_sql_step, in SQL); HTTP steps defined in SQL substitute them here, with
// the same grammar: :input.row.id  :steps.fetch.body.id  :steps."my-step".status  :prev.rows  :run.key
import type { Queryable, StepContext } from '../../pipeline/types.js';

export interface RunContext {
  input: unknown;
  steps: Record<string, unknown>;
  prev: unknown;
  run: { id: string; key: string | null; pipeline: string };
}

export async function runContext(db: Queryable, ctx: StepContext, prev: unknown): Promise<RunContext> {
  const { rows } = await db.query<{ step: string; output: unknown }>(`SELECT step, output FROM walflow.steps WHERE run_id = $1 ORDER BY step_index`, [ctx.runId]);
  return {
    input: ctx.runInput,
    steps: Object.fromEntries(rows.map((r) => [r.step, r.output])),
    prev: prev ?? null,
    run: { id: ctx.runId, key: ctx.key, pipeline: ctx.pipeline },
  };
}

const PLACEHOLDER = /(?<!:):(input|steps|prev|run)((?:\.(?:[A-Za-z0-9_]+|"(?:[^"]|"")+"))*)/g;
const SEGMENT = /\.([A-Za-z0-9_]+|"(?:[^"]|"")+")/g;

function valueAt(c: RunContext, root: string, rest: string): unknown {
  let v: unknown = (c as unknown as Record<string, unknown>)[root];
  for (const m of rest.matchAll(SEGMENT)) {
    const seg = m[1]!.startsWith('"') ? m[1]!.slice(1, -1).replace(/""/g, '"') : m[1]!;
    if (v === null || typeof v !== 'object') return null;
    v = (v as Record<string, unknown>)[seg];
  }
  return v ?? null;
}

const asText = (v: unknown): string => (v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v));

/** `text` with each placeholder replaced by its value as text (`encode` applied: a URL's encodeURIComponent). */
export function substitute(text: string, c: RunContext, encode: (s: string) => string = (s) => s): string {
  return text.replace(PLACEHOLDER, (_, root: string, rest: string) => encode(asText(valueAt(c, root, rest))));
}

/** True when `text` has placeholders and every one of them is empty or null (an embedding step then has nothing to embed). */
export function allPlaceholdersEmpty(text: string, c: RunContext): boolean {
  const found = [...text.matchAll(PLACEHOLDER)];
  return found.length > 0 && found.every((m) => asText(valueAt(c, m[1]!, m[2]!)).trim() === '');
}

/** A JSON template: a string that is exactly one placeholder becomes that value (any JSON type); other strings are substituted. */
export function fillJson(template: unknown, c: RunContext): unknown {
  if (typeof template === 'string') {
    const whole = new RegExp(`^${PLACEHOLDER.source}$`).exec(template);
    return whole ? valueAt(c, whole[1]!, whole[2]!) : substitute(template, c);
  }
  if (Array.isArray(template)) return template.map((t) => fillJson(t, c));
  if (template && typeof template === 'object') return Object.fromEntries(Object.entries(template).map(([k, v]) => [k, fillJson(v, c)]));
  return template;
}

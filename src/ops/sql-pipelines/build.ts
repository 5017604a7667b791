// Pipelines defined from SQL (walflow.sql_pipelines) as the Pipeline objects file pipelines are:
// an embedding pipeline is the flagship createEmbeddingPipeline with the stored options; a pipeline
// of steps gets one step per stored step (SQL steps: src/steps/sql/sql-step.ts). A definition this
// process cannot build is a load error of "sql:<name>", reported like a pipeline file's.
import pg from 'pg';
import { UserError } from '../../errors.js';
import { definePipeline, type Pipeline } from '../../pipeline/define.js';
import type { Duration, PipelineHookContext, Queryable, SourceDefinition, StepDefinition, WakeTime } from '../../pipeline/types.js';
import { createEmbeddingPipeline } from '../../steps/embedding/pipeline.js';
import type { HostPolicy } from '../../steps/http/host-policy.js';
import { fillJson, runContext } from '../../steps/sql/run-context.js';
import { sqlHttpStep } from '../../steps/sql/sql-http-step.js';
import { sqlStep } from '../../steps/sql/sql-step.js';
import { sqlEmbedStep } from '../../steps/sql/sql-embed-step.js';
import type { EmbedderSpec } from '../../steps/embedding/embedder-spec.js';

export interface BuildOptions {
  /** The operator's outbound-host policy for HTTP steps (httpHostPolicyFromConfig). */
  hostPolicy: HostPolicy;
}

export interface SqlPipelineRow {
  name: string;
  version: number;
  kind: 'steps' | 'embedding';
  definition: Record<string, unknown>;
  definer: string;
  /** walflow.sql_step_function of each SQL step of this version, by step name. */
  functions: Record<string, string>;
}

/** The rows of walflow.sql_pipelines with their step functions' names. */
export async function readSqlPipelines(db: Queryable): Promise<SqlPipelineRow[]> {
  const { rows } = await db.query<SqlPipelineRow>(
    `SELECT p.name, p.version, p.kind, p.definition, p.definer,
            coalesce((SELECT jsonb_object_agg(s->>'name', walflow.sql_step_function(p.name, s->>'name', p.version))
                        FROM jsonb_array_elements(p.definition->'steps') s WHERE s->>'kind' = 'sql'), '{}')
            || CASE WHEN p.definition ? 'row_filter' THEN jsonb_build_object('row_filter', walflow.sql_step_function(p.name, 'row_filter', p.version)) ELSE '{}' END
            AS functions
       FROM walflow.sql_pipelines p ORDER BY p.name`,
  );
  return rows;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const int = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const strs = (v: unknown): string[] | undefined => (Array.isArray(v) ? (v as string[]) : undefined);

function embeddingPipeline(row: SqlPipelineRow): Pipeline {
  const d = row.definition;
  const openai = d.embedder === 'openai';
  const p = createEmbeddingPipeline({
    name: row.name,
    table: str(d.source_table)!,
    textColumn: str(d.text_column)!,
    target: str(d.target_table)!,
    ...(str(d.template) !== undefined ? { template: str(d.template)! } : {}),
    ...(strs(d.template_columns) ? { templateColumns: strs(d.template_columns)! } : {}),
    ...(int(d.chunk_size) !== undefined ? { chunkSize: int(d.chunk_size)! } : {}),
    ...(int(d.chunk_overlap) !== undefined ? { chunkOverlap: int(d.chunk_overlap)! } : {}),
    ...(strs(d.separators) ? { separators: strs(d.separators)! } : {}),
    ...(int(d.index_min_rows) !== undefined ? { indexMinRows: int(d.index_min_rows)! } : {}),
    ...(typeof d.backfill === 'boolean' ? { backfill: d.backfill } : {}),
    ...(row.functions.row_filter ? { rowFilterFunction: row.functions.row_filter } : {}),
    embedder: openai
      ? { provider: 'openai', baseURL: str(d.base_url)!, model: str(d.model)!, dimensions: int(d.dimensions)!, ...(str(d.api_key_env) ? { apiKeyEnv: str(d.api_key_env)! } : {}) }
      : { provider: 'local' },
  });
  // walflow's role creates the target when it is missing: its definer may read what it asked for.
  const target = `${pg.escapeIdentifier(p.target.schema)}.${pg.escapeIdentifier(p.target.name)}`;
  return Object.freeze({
    ...p,
    setup: async (ctx: PipelineHookContext) => {
      await checkStepFunctions(ctx.db, row);
      await p.setup?.(ctx);
      const { rows } = await ctx.db.query<{ own: boolean }>(`SELECT pg_has_role(current_user, relowner, 'USAGE') AS own FROM pg_class WHERE oid = $1::regclass`, [target]);
      if (rows[0]?.own) await ctx.db.query(`GRANT SELECT ON ${target} TO ${pg.escapeIdentifier(row.definer)}`);
    },
  });
}

function step(row: SqlPipelineRow, s: Record<string, unknown>, o: BuildOptions): StepDefinition {
  const name = String(s.name);
  if (s.kind === 'sql') return sqlStep({ name, fn: row.functions[name]! });
  if (s.kind === 'http') {
    return sqlHttpStep({
      name, url: String(s.url), hostPolicy: o.hostPolicy,
      ...(str(s.method) ? { method: str(s.method)! } : {}),
      ...(s.headers && typeof s.headers === 'object' ? { headers: s.headers as Record<string, string> } : {}),
      ...(s.body !== undefined && s.body !== null ? { body: s.body } : {}),
      ...(int(s.timeoutMs) ? { timeoutMs: int(s.timeoutMs)! } : {}),
    });
  }
  if (s.kind === 'embed') {
    const spec: EmbedderSpec = s.embedder === 'openai'
      ? { provider: 'openai', baseURL: str(s.baseUrl)!, model: str(s.model)!, dimensions: int(s.dimensions)!, ...(str(s.apiKeyEnv) ? { apiKeyEnv: str(s.apiKeyEnv)! } : {}) }
      : { provider: 'local' };
    return sqlEmbedStep({ name, text: String(s.text), spec });
  }
  if (s.sleep !== undefined) {
    const sleep = s.sleep as Duration;
    // A placeholder (':input.row.due_at') is a wake time from the run; anything else a literal duration.
    if (typeof sleep === 'string' && sleep.startsWith(':')) {
      return { name, sleep: async (ctx, input) => fillJson(sleep, await runContext(ctx.db, ctx, input)) as WakeTime };
    }
    return { name, sleep };
  }
  const w = s.waitFor as { signal: string; timeout?: Duration };
  return { name, waitFor: { signal: w.signal, ...(w.timeout !== undefined ? { timeout: w.timeout } : {}) } };
}

/**
 * Checks, before the first run, that each SQL step's (and a row filter's) function is still the
 * definer's own, and that this process's role may call it: a role that may not is this pipeline's
 * load error with the grant to give, not a permission error in every run.
 */
async function checkStepFunctions(db: Queryable, row: SqlPipelineRow): Promise<void> {
  if (Object.keys(row.functions).length === 0) return;
  const grant = (role: string) => `the operator grants it: GRANT USAGE ON SCHEMA walflow_steps TO ${role}; GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA walflow_steps TO ${role}; `
    + `and, for the functions each defining role creates later, ALTER DEFAULT PRIVILEGES FOR ROLE ${row.definer} IN SCHEMA walflow_steps GRANT EXECUTE ON FUNCTIONS TO ${role} (README, "From SQL")`;
  const { rows: [me] } = await db.query<{ role: string; usage: boolean }>(`SELECT current_user AS role, has_schema_privilege('walflow_steps', 'USAGE') AS usage`);
  if (!me?.usage) throw new UserError(`pipeline "${row.name}": this process's role "${me?.role}" may not use schema walflow_steps, where its SQL steps are: ${grant(me?.role ?? '<role>')}`);
  for (const [step, fn] of Object.entries(row.functions)) {
    const { rows } = await db.query<{ owner: string | null; execute: boolean | null }>(
      `SELECT pg_get_userbyid(proowner)::text AS owner, has_function_privilege(oid, 'EXECUTE') AS execute FROM pg_proc WHERE oid = to_regprocedure($1 || '(jsonb)')`, [fn],
    );
    const owner = rows[0]?.owner;
    if (owner === null || owner === undefined) throw new UserError(`pipeline "${row.name}": step "${step}": its function ${fn} is missing (alter or re-create the pipeline)`);
    if (owner !== row.definer) throw new UserError(`pipeline "${row.name}": step "${step}": its function ${fn} belongs to "${owner}", not to the pipeline's definer "${row.definer}"; refusing to run it`);
    if (!rows[0]!.execute) throw new UserError(`pipeline "${row.name}": step "${step}": this process's role "${me.role}" may not EXECUTE ${fn}: ${grant(me.role)}`);
  }
}

function stepsPipeline(row: SqlPipelineRow, o: BuildOptions): Pipeline {
  const d = row.definition;
  const steps = (d.steps as Record<string, unknown>[]).map((s) => step(row, s, o));
  const source = d.source as SourceDefinition | undefined;
  return definePipeline({
    name: row.name,
    version: `sql-v${row.version}`,
    ...(source ? { source } : {}),
    ...(strs(d.startRoles) ? { startRoles: strs(d.startRoles)! } : {}),
    setup: async ({ db }) => checkStepFunctions(db, row),
    // Embedding steps hold a model (shared per process) until the pipeline is closed.
    close: async () => {
      for (const st of steps) if ('release' in st && typeof st.release === 'function') await (st as { release: () => Promise<void> }).release();
    },
    steps,
  } as Parameters<typeof definePipeline>[0]);
}

/** The Pipeline of one row; throws a UserError naming the pipeline. */
export function buildSqlPipeline(row: SqlPipelineRow, o: BuildOptions): Pipeline {
  return row.kind === 'embedding' ? embeddingPipeline(row) : stepsPipeline(row, o);
}

// The flagship: keep a pgvector table of embeddings in sync with a text table, row by row.
//   sync   — re-read the source row (its current version, whatever the run input carries: a row
//            changed or deleted since its change or backfill read it is embedded as it is now;
//            TOAST-safe), chunk it, and note which
//            chunks already have a vector in the target (same text hash and model: not re-embedded)
//   embed  — a batched step: the new chunks of many rows in one provider call
//   upsert — replace the row's chunks in ctx.tx, atomically with the checkpoint; never lets an
//            older version of a row overwrite a newer one
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { UserError } from '../../errors.js';
import { definePipeline, type Pipeline } from '../../pipeline/define.js';
import type { BatchItem, Queryable, SourceRunInput, StepContext } from '../../pipeline/types.js';
import { loadSourceTables, parseTableName, type TableName } from '../../pipeline/source-tables.js';
import { chunkText, type ChunkOptions } from '../chunk/splitter.js';
import type { EmbedObserver } from '../embedders/embedder.js';
import { acquireEmbedder, describeSpec, type Embedder, type EmbedderSpec } from './embedder-spec.js';
import { checkTemplateColumns, columnList, resolveTemplateColumns } from './template-columns.js';
import { ensureTarget, maybeBuildIndex, qualifiedIdent, truncateTarget, writeChunks } from './target.js';
import { decodeVector, encodeVector, fromPgVector, toPgVector } from './vectors.js';

export interface EmbeddingPipelineOptions {
  name: string;
  /** Source table, e.g. "documents" or "public.documents". */
  table: string;
  textColumn: string;
  /** Columns available to the template as {column} (default: the columns its placeholders name). */
  templateColumns?: string[];
  /**
   * e.g. "{title}: {chunk}". A placeholder names a column exactly as PostgreSQL stores it (any
   * name: "{Заголовок 📌}: {chunk}"); "{{" and "}}" are literal braces, and in a placeholder a
   * backslash escapes "{", "}" or "\\". Syntax: src/steps/chunk/template.ts.
   */
  template?: string;
  /** Key columns of the source (default: its primary key, found at startup). */
  key?: string[];
  /** The automatic initial backfill (SourceDefinition.backfill): default true, once per new pipeline. */
  backfill?: boolean | 'on-version-change';
  /** Target table; default "<table>_embeddings" in the source's schema. */
  target?: string;
  embedder?: EmbedderSpec;
  /** Tokens per chunk; default: 100 for the local model (it reads only 128), 512 otherwise. */
  chunkSize?: number;
  chunkOverlap?: number;
  separators?: string[];
  /** Chunks embedded per provider call, and how long a call waits to fill up. */
  batch?: { maxItems: number; maxWaitMs: number };
  /** Source columns to watch: an UPDATE that changes none of them starts no run (source.columns). Default: any column. */
  columns?: string[];
  /**
   * The HNSW index is built (CONCURRENTLY) once the target has this many rows, or as soon as the
   * pipeline has no unfinished runs, whichever comes first. Default 100,000: below that an exact
   * scan answers quickly, and an index built after a bulk load costs far less than inserting every
   * vector of the load into the graph one by one.
   */
  indexMinRows?: number;
  /**
   * Rows to embed: a function (schema-qualified, quoted) taking the row as jsonb and returning
   * boolean, read with the row at sync (and before the upsert): a row it refuses is embedded as a
   * deleted row (its chunks go). Pipelines defined in SQL get their row_filter as such a function,
   * owned by their definer.
   */
  rowFilterFunction?: string;
}

/** A run's input: a WAL change or a backfill of one row (checked by the engine before sync runs). */
type SyncInput = SourceRunInput;

interface PlannedChunk { i: number; text: string; hash: string; vec?: string }
/** `source`: a hash of the text (and template fields) the chunks were made from. */
interface Planned { truncate?: boolean; version: string; chunks: PlannedChunk[]; embedded?: number; source?: string }

const ident = (s: string) => pg.escapeIdentifier(s);

export interface SearchHit {
  source_key: string;
  chunk_index: number;
  chunk_text: string;
  distance: number;
}

/** Counters for metrics: provider calls, texts embedded, their tokens, chunks reused, errors. */
export interface EmbeddingStats {
  calls: number;
  items: number;
  tokens: number;
  reused: number;
  /** Embed calls that failed (after the provider's own retries), by HTTP status or kind. */
  errorsByStatus: Record<string, number>;
  /** Every failed provider attempt, retried inside the provider or not, by reason. */
  faultsByReason: Record<string, number>;
}

export interface EmbeddingPipeline extends Pipeline<SyncInput> {
  readonly target: TableName;
  stats(): EmbeddingStats;
  /** Embeds `query` with this pipeline's model; nearest chunks of the current version (cosine distance). */
  search(db: Queryable, query: string, k?: number): Promise<SearchHit[]>;
}

export function isEmbeddingPipeline(p: Pipeline): p is EmbeddingPipeline {
  return typeof (p as Partial<EmbeddingPipeline>).search === 'function';
}

export function createEmbeddingPipeline(o: EmbeddingPipelineOptions): EmbeddingPipeline {
  const spec: EmbedderSpec = o.embedder ?? { provider: 'local' };
  const model = describeSpec(spec);
  const source: TableName = parseTableName(o.table);
  const target: TableName = o.target ? parseTableName(o.target) : { schema: source.schema, name: `${source.name}_embeddings` };
  const chunking: ChunkOptions = {
    chunkSize: o.chunkSize ?? (spec.provider === 'local' ? 100 : 512),
    chunkOverlap: o.chunkOverlap ?? (spec.provider === 'local' ? 20 : 64),
    ...(o.separators ? { separators: o.separators } : {}),
    ...(o.template ? { template: o.template } : {}),
  };
  if (chunking.chunkSize > model.maxInputTokens) {
    throw new UserError(`pipeline "${o.name}": chunkSize ${chunking.chunkSize} exceeds what ${model.model} reads (${model.maxInputTokens} tokens); the rest of each chunk would be silently ignored`);
  }
  // The columns the template reads. A placeholder that names no column would otherwise fail every
  // run, or (before placeholders could name any column) be embedded as literal text: refuse the
  // definition now, and at setup a placeholder that is not a column of the source table.
  const templateColumns = resolveTemplateColumns(o.name, o.template, o.templateColumns);
  const targetSpec = { table: target, dimensions: model.dimensions };
  // What the vectors mean: a change here is a new version, and search never mixes versions.
  const configVersion = createHash('sha256')
    .update(JSON.stringify({ model: model.model, dims: model.dimensions, chunking, text: o.textColumn, tpl: templateColumns }))
    .digest('hex')
    .slice(0, 12);

  const stats: EmbeddingStats = { calls: 0, items: 0, tokens: 0, reused: 0, errorsByStatus: {}, faultsByReason: {} };
  let lease: ReturnType<typeof acquireEmbedder> | undefined;
  const embedder = (): Promise<Embedder> => (lease ??= acquireEmbedder(spec)).embedder;
  let keyColumns = o.key;

  async function resolveKey(db: Queryable): Promise<string[]> {
    if (keyColumns) return keyColumns;
    const { rows } = await db.query<{ cols: string[] }>(
      `SELECT ARRAY(SELECT a.attname::text FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(n, ord)
                     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n
                    WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY k.ord) AS cols`,
      [qualifiedIdent(source)],
    );
    const cols = rows[0]?.cols ?? [];
    if (cols.length === 0) throw new UserError(`pipeline "${o.name}": ${source.schema}.${source.name} has no primary key; declare key columns`);
    return (keyColumns = cols);
  }

  /** Fails at startup, naming what is wrong, rather than on every run. */
  async function checkSource(db: Queryable): Promise<void> {
    const name = `${source.schema}.${source.name}`;
    const table = (await loadSourceTables(db, [source])).get(name);
    if (!table) throw new UserError(`pipeline "${o.name}": source table ${name} does not exist (create it, or fix "table")`);
    const { rows } = await db.query<{ attname: string; type: string }>(
      `SELECT attname::text, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`,
      [table.oid],
    );
    const types = new Map(rows.map((r) => [r.attname, r.type]));
    checkTemplateColumns(o.name, o.template, name, types);
    for (const col of [o.textColumn, ...templateColumns, ...(o.key ?? [])]) {
      if (!types.has(col)) throw new UserError(`pipeline "${o.name}": ${name} has no column ${JSON.stringify(col)} (columns: ${columnList(types)})`);
    }
    const textType = types.get(o.textColumn)!;
    if (!/^(text|character varying|character|citext|json|jsonb)/.test(textType)) {
      throw new UserError(`pipeline "${o.name}": textColumn "${o.textColumn}" of ${name} is ${textType}; the chunker needs text (text, varchar, json/jsonb)`);
    }
  }

  async function readRow(db: Queryable, key: Record<string, unknown>) {
    const cols = await resolveKey(db);
    const missing = cols.filter((c) => !(c in key));
    if (missing.length) throw new UserError(`run input does not fit pipeline "${o.name}" (source ${source.schema}.${source.name}): its key lacks column(s) ${missing.join(', ')} — got key ${JSON.stringify(key)}`);
    const extra = templateColumns.map((c, i) => `, ${ident(c)}::text AS f${i}`).join('');
    const where = cols.map((c, i) => `${ident(c)} = $${i + 1}`).join(' AND ');
    const { rows } = await db.query<Record<string, string | null>>(
      `SELECT ${ident(o.textColumn)}::text AS body${extra}, pg_current_wal_lsn()::text AS version${o.rowFilterFunction ? `, ${o.rowFilterFunction}(to_jsonb(t)) AS keep` : ''}
         FROM ${qualifiedIdent(source)} t WHERE ${where}`,
      cols.map((c) => key[c]),
    );
    const row = rows[0];
    // A row the filter refuses reads as deleted: its chunks are removed (and stay away).
    if (row && o.rowFilterFunction && (row as Record<string, unknown>).keep !== true) return { version: row.version, body: null } as Record<string, string | null>;
    return row;
  }

  /** What the chunks of a row are made from: its text and template fields. */
  function sourceHash(row: Record<string, string | null>): string {
    return createHash('sha256').update(JSON.stringify([row.body, ...templateColumns.map((_, i) => row[`f${i}`] ?? '')])).digest('hex');
  }

  /**
   * Counts every provider fault by reason and logs it at warn: a fault retried inside the provider
   * is otherwise invisible (the call succeeds), and one that fails the call is logged again by the
   * engine with the step's retry time. Messages come redacted from the provider.
   */
  function faultObserver(log: Logger | undefined): EmbedObserver {
    return {
      onFault(f) {
        stats.faultsByReason[f.reason] = (stats.faultsByReason[f.reason] ?? 0) + 1;
        const next = f.retryInMs !== undefined ? `retrying in ${f.retryInMs} ms` : 'the call fails; the embed step retries per its retry policy';
        log?.warn(
          { reason: f.reason, status: f.status, attempt: f.attempt, retryInMs: f.retryInMs, serverDelayMs: f.serverDelayMs, inputs: f.inputs, err: f.message },
          `embedding provider fault (${f.reason}): ${next}`,
        );
      },
    };
  }

  async function currentLsn(db: Queryable): Promise<string> {
    return (await db.query<{ v: string }>('SELECT pg_current_wal_lsn()::text AS v')).rows[0]!.v;
  }

  const pipeline = definePipeline({
    name: o.name,
    version: configVersion,
    source: { table: o.table, ...(o.columns ? { columns: o.columns } : {}), ...(o.key ? { key: o.key } : {}), ...(o.backfill !== undefined ? { backfill: o.backfill } : {}) },
    targets: [`${target.schema}.${target.name}`],
    setup: async ({ db }) => {
      // A remote embedder's settings (URL, size, API key variable) are checked at startup, not by
      // the first run; building it sends nothing. The local model still loads on first use.
      if (spec.provider !== 'local') await embedder();
      await checkSource(db);
      await ensureTarget(db, targetSpec);
      await resolveKey(db);
    },
    maintenance: { everyMs: 15_000, run: async ({ url, log }) => void (await maybeBuildIndex(url, targetSpec, log, { pipeline: o.name, minRows: o.indexMinRows ?? 100_000 })) },
    close: async () => {
      const l = lease;
      lease = undefined;
      await l?.release();
    },
    steps: [
      {
        name: 'sync',
        retry: { maxAttempts: 5, initialDelayMs: 500 },
        run: async (ctx: StepContext<SyncInput>, input: SyncInput): Promise<Planned> => {
          // A TRUNCATE started from SQL has no LSN: everything written before now goes.
          if (input.op === 'truncate') return { truncate: true, version: input.lsn ?? (await currentLsn(ctx.db)), chunks: [] };
          const row = await readRow(ctx.db, input.key);
          if (!row || row.body === null) return { version: row?.version ?? (await currentLsn(ctx.db)), chunks: [] }; // deleted or empty
          const fields = Object.fromEntries(templateColumns.map((c, i) => [c, row[`f${i}`] ?? '']));
          const e = await embedder();
          const chunks = await chunkText(row.body, (s) => e.countTokens(s), chunking, fields);
          return { version: row.version!, chunks: chunks.map((c) => ({ i: c.index, text: c.text, hash: c.hash })), source: sourceHash(row) };
        },
      },
      {
        name: 'embed',
        batch: o.batch ?? { maxItems: 64, maxWaitMs: 50 },
        retry: { maxAttempts: 6, initialDelayMs: 1000, maxDelayMs: 60_000 },
        timeoutMs: 300_000,
        run: async (items: BatchItem<Planned>[], signal: AbortSignal): Promise<(Planned | Error)[]> => {
          const db = items[0]!.ctx.db;
          // Vectors we already have for identical text under this model are reused, not recomputed.
          const hashes = [...new Set(items.flatMap((it) => it.input.chunks.map((c) => c.hash)))];
          const known = new Map<string, string>();
          if (hashes.length > 0) {
            const { rows } = await db.query<{ h: string; v: string }>(
              `SELECT DISTINCT ON (content_hash) content_hash AS h, embedding::text AS v FROM ${qualifiedIdent(target)}
                WHERE content_hash = ANY($1) AND model = $2`,
              [hashes, model.model],
            );
            for (const r of rows) known.set(r.h, encodeVector(fromPgVector(r.v)));
          }
          const todo = new Map<string, string>(); // hash → text, each distinct text embedded once
          for (const it of items) for (const c of it.input.chunks) if (!known.has(c.hash)) todo.set(c.hash, c.text);
          const fresh = new Set(todo.keys());
          const e = await embedder();
          const texts = [...todo.values()];
          let vectors: Float32Array[] = [];
          if (texts.length > 0) {
            stats.calls++;
            try {
              // ctx.log names the pipeline and the batch's first run.
              vectors = await e.embed(texts, signal, faultObserver(items[0]!.ctx.log.child({ batchRuns: items.length })));
            } catch (err) {
              const status = String((err as { status?: unknown; kind?: unknown }).status ?? (err as { kind?: unknown }).kind ?? 'error');
              stats.errorsByStatus[status] = (stats.errorsByStatus[status] ?? 0) + 1;
              throw err;
            }
            stats.items += texts.length;
            for (const t of texts) stats.tokens += e.countTokens(t);
          }
          stats.reused += items.reduce((n, it) => n + it.input.chunks.length, 0) - texts.length;
          [...todo.keys()].forEach((h, i) => known.set(h, encodeVector(vectors[i]!)));
          return items.map((it) => ({
            ...it.input,
            // How many of this row's chunks needed the model (the rest reused stored vectors).
            embedded: it.input.chunks.filter((c) => fresh.has(c.hash)).length,
            chunks: it.input.chunks.map((c) => ({ ...c, vec: known.get(c.hash)! })),
          }));
        },
      },
      {
        name: 'upsert',
        retry: { maxAttempts: 5, initialDelayMs: 500 },
        run: async (ctx: StepContext<SyncInput>, input: Planned) => {
          const tx = await ctx.tx();
          if (input.truncate) {
            await truncateTarget(tx, targetSpec, input.version);
            return { truncated: true };
          }
          const rows = input.chunks.map((c) => ({ index: c.i, text: c.text, hash: c.hash, vector: toPgVector(decodeVector(c.vec!)) }));
          // An older run re-queued after newer ones completed (walflow retry) must not write back
          // text the row no longer has: a delete or a NULL body leaves no newer version in the
          // target for writeChunks to see. Write only if the row still reads as it did at sync.
          if (input.source !== undefined && rows.length > 0 && ctx.runInput.key) {
            const now = await readRow(tx, ctx.runInput.key);
            if (!now || now.body === null || sourceHash(now) !== input.source) return { chunks: rows.length, embedded: input.embedded ?? 0, written: false, stale: true };
          }
          const written = await writeChunks(tx, targetSpec, ctx.key ?? '', input.version, model.model, configVersion, rows);
          return { chunks: rows.length, embedded: input.embedded ?? 0, written };
        },
      },
    ],
  });

  return Object.freeze({
    ...pipeline,
    target,
    stats: () => ({ ...stats, errorsByStatus: { ...stats.errorsByStatus }, faultsByReason: { ...stats.faultsByReason } }),
    async search(db: Queryable, query: string, k = 5): Promise<SearchHit[]> {
      if (!Number.isInteger(k) || k < 1 || k > 1000) throw new UserError(`k must be a whole number from 1 to 1000 (got ${k})`);
      const e = await embedder();
      const [vec] = await e.embed([query], undefined, faultObserver(undefined));
      // Same model *and* chunking version only: results never mix old and new embeddings.
      const { rows } = await db.query<SearchHit>(
        `SELECT source_key, chunk_index, chunk_text, (embedding <=> $1::vector)::float8 AS distance
           FROM ${qualifiedIdent(target)} WHERE model = $2 AND version = $3
          ORDER BY embedding <=> $1::vector LIMIT $4`,
        [toPgVector(vec!), model.model, configVersion, k],
      );
      return rows;
    },
  });
}

// The embeddings table a pipeline keeps in sync: created if missing, written per source row in the
// upsert step's transaction, and indexed (HNSW, cosine) once a load is done or it is large.
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { UserError } from '../../errors.js';
import type { Queryable, TxClient } from '../../pipeline/types.js';
import type { TableName } from '../../pipeline/source-tables.js';

const ident = (s: string) => pg.escapeIdentifier(s);
export const qualifiedIdent = (t: TableName) => `${ident(t.schema)}.${ident(t.name)}`;

export interface TargetSpec {
  table: TableName;
  dimensions: number;
}

/** Creates the target table (and pgvector) if missing; refuses one whose vector size differs. */
export async function ensureTarget(db: Queryable, t: TargetSpec): Promise<void> {
  const { rows: ext } = await db.query<{ ok: boolean }>(`SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') AS ok`);
  if (!ext[0]?.ok) await db.query('CREATE EXTENSION IF NOT EXISTS vector').catch((err: Error) => {
    throw new UserError(`pgvector is not available on this server (${err.message}): install it (scripts/setup-postgres.sh on Debian/Ubuntu) and run CREATE EXTENSION vector`);
  });
  const q = qualifiedIdent(t.table);
  // DDL only for what is missing: CREATE ... IF NOT EXISTS still needs CREATE on the schema (and
  // ownership for an index) when everything exists, and a least-privilege worker role has neither.
  const { rows: present } = await db.query<{ table: boolean; hash_index: boolean }>(
    `SELECT to_regclass($1) IS NOT NULL AS table,
            EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                     WHERE i.indrelid = to_regclass($1) AND c.relname = $2) AS hash_index`,
    [q, truncateIdentifier(`${t.table.name}_hash`)],
  );
  if (!present[0]?.table) await db.query(`CREATE TABLE IF NOT EXISTS ${q} (
    source_key     text NOT NULL,
    chunk_index    integer NOT NULL,
    chunk_text     text NOT NULL,
    content_hash   text NOT NULL,
    embedding      vector(${Number(t.dimensions)}) NOT NULL,
    model          text NOT NULL,
    version        text NOT NULL,
    source_version pg_lsn NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_key, chunk_index)
  )`);
  const { rows } = await db.query<{ typmod: number }>(
    `SELECT a.atttypmod AS typmod FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attname = 'embedding'`,
    [q],
  );
  if (rows[0] && rows[0].typmod !== t.dimensions) {
    throw new UserError(`${q}.embedding is vector(${rows[0].typmod}) but the model makes ${t.dimensions}-dim vectors: use another target table, or drop this one to re-embed`);
  }
  if (!present[0]?.hash_index) await db.query(`CREATE INDEX IF NOT EXISTS ${ident(`${t.table.name}_hash`)} ON ${q} (content_hash, model)`);
  await db.query(
    `INSERT INTO walflow.embedding_targets (target, dimensions) VALUES ($1, $2) ON CONFLICT (target) DO NOTHING`,
    [`${t.table.schema}.${t.table.name}`, t.dimensions],
  );
}

/** PostgreSQL truncates identifiers to 63 bytes; a name we look up later must fit as written. */
const MAX_IDENTIFIER_BYTES = 63;

/** The longest prefix of `s` that fits in `maxBytes` of UTF-8, cut on a character boundary. */
function cutToBytes(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s, 'utf8') <= maxBytes) return s;
  let out = '';
  for (const ch of s) {
    if (Buffer.byteLength(out + ch, 'utf8') > maxBytes) break;
    out += ch;
  }
  return out;
}

/** The name PostgreSQL stores for `name`: cut to 63 bytes on a character boundary. */
export function truncateIdentifier(name: string): string {
  return cutToBytes(name, MAX_IDENTIFIER_BYTES);
}

/**
 * The target's HNSW index name: `<table>_embedding_hnsw`, or, when that would not fit in 63 bytes,
 * the table name cut on a character boundary plus a hash of the whole name (distinct tables
 * sharing a long prefix keep distinct indexes).
 */
export function hnswIndexName(table: string): string {
  const full = `${table}_embedding_hnsw`;
  if (Buffer.byteLength(full, 'utf8') <= MAX_IDENTIFIER_BYTES) return full;
  const suffix = `_${createHash('sha256').update(full).digest('hex').slice(0, 8)}_hnsw`;
  return cutToBytes(table, MAX_IDENTIFIER_BYTES - suffix.length) + suffix;
}

export interface IndexPolicy {
  /** Whose backlog to wait for. */
  pipeline: string;
  /** Build at this many rows even while runs are still queued. */
  minRows: number;
}

/** Indexes a role that does not own them could not build: reported once per process. */
const notOwnerWarned = new Set<string>();

/**
 * Builds the HNSW index CONCURRENTLY (outside any transaction, on its own connection) once the
 * table has `minRows` rows, or has rows and the pipeline has no unfinished run (a backfill or a
 * burst is done): bulk-building after a load is much cheaper than growing the graph vector by
 * vector while the load runs. One process does it at a time.
 */
export async function maybeBuildIndex(url: string, t: TargetSpec, log: Logger, policy: IndexPolicy): Promise<boolean> {
  const name = hnswIndexName(t.table.name);
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined); // a server restart mid-build: the failing query reports it, the process lives
  await c.connect();
  try {
    const { rows } = await c.query<{ valid: boolean | null; rows: number; busy: boolean; owner: boolean }>(
      `SELECT (SELECT i.indisvalid FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                WHERE i.indrelid = $1::regclass AND ic.relname = $2) AS valid,
              (SELECT count(*)::int FROM (SELECT 1 FROM ${qualifiedIdent(t.table)} LIMIT $3) x) AS rows,
              EXISTS (SELECT 1 FROM walflow.runs WHERE pipeline = $4 AND status IN ('queued', 'waiting'))
                OR EXISTS (SELECT 1 FROM walflow.runs WHERE pipeline = $4 AND status = 'running') AS busy,
              pg_has_role((SELECT relowner FROM pg_class WHERE oid = $1::regclass), 'USAGE') AS owner`,
      [qualifiedIdent(t.table), name, Math.max(1, policy.minRows), policy.pipeline],
    );
    const state = rows[0]!;
    if (state.valid === true || state.rows === 0) return false;
    if (state.rows < policy.minRows && state.busy) return false; // after the load
    if (!state.owner) {
      // A least-privilege worker role may write the target but not index it: say so once.
      if (!notOwnerWarned.has(name)) {
        notOwnerWarned.add(name);
        log.warn({ index: name }, `cannot build the HNSW index: this role does not own ${qualifiedIdent(t.table)}; as its owner run CREATE INDEX CONCURRENTLY ${ident(name)} ON ${qualifiedIdent(t.table)} USING hnsw (embedding vector_cosine_ops)`);
      }
      return false;
    }
    const { rows: lock } = await c.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtext('walflow:hnsw:' || $1)) AS ok`, [name]);
    if (!lock[0]?.ok) return false;
    // An invalid index is what a CONCURRENTLY build leaves behind when interrupted: start over.
    if (state.valid === false) await c.query(`DROP INDEX CONCURRENTLY IF EXISTS ${ident(t.table.schema)}.${ident(name)}`);
    log.info({ index: name }, 'building HNSW index (concurrently)');
    const t0 = Date.now();
    await c.query(`CREATE INDEX CONCURRENTLY IF NOT EXISTS ${ident(name)} ON ${qualifiedIdent(t.table)} USING hnsw (embedding vector_cosine_ops)`);
    await c.query(`UPDATE walflow.embedding_targets SET index_built_at = now() WHERE target = $1`, [`${t.table.schema}.${t.table.name}`]);
    log.info({ index: name, ms: Date.now() - t0 }, 'HNSW index ready');
    return true;
  } finally {
    await c.end();
  }
}

export interface ChunkRow {
  index: number;
  text: string;
  hash: string;
  vector: string; // pgvector text form
}

/**
 * Replaces the chunks of one source row, in the step's transaction. Skips (returns false) when the
 * table already holds a newer version of the row, or was truncated after this version was read.
 */
export async function writeChunks(tx: TxClient, t: TargetSpec, key: string, version: string, model: string, configVersion: string, chunks: ChunkRow[]): Promise<boolean> {
  const q = qualifiedIdent(t.table);
  const target = `${t.table.schema}.${t.table.name}`;
  await tx.query(`SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))`, [target, key]);
  const { rows } = await tx.query<{ newer: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM ${q} WHERE source_key = $1 AND source_version > $2::pg_lsn)
         OR EXISTS (SELECT 1 FROM walflow.embedding_targets WHERE target = $3 AND truncated_at >= $2::pg_lsn) AS newer`,
    [key, version, target],
  );
  if (rows[0]?.newer) return false;
  await tx.query(`DELETE FROM ${q} WHERE source_key = $1`, [key]);
  if (chunks.length > 0) {
    await tx.query(
      `INSERT INTO ${q} (source_key, chunk_index, chunk_text, content_hash, embedding, model, version, source_version)
       SELECT $1, c.i, c.t, c.h, c.v::vector, $2, $3, $4::pg_lsn
         FROM unnest($5::int[], $6::text[], $7::text[], $8::text[]) AS c(i, t, h, v)`,
      [key, model, configVersion, version, chunks.map((c) => c.index), chunks.map((c) => c.text), chunks.map((c) => c.hash), chunks.map((c) => c.vector)],
    );
  }
  return true;
}

/** A TRUNCATE of the source empties the target; versions read before it can no longer write. */
export async function truncateTarget(tx: TxClient, t: TargetSpec, version: string): Promise<void> {
  await tx.query(`TRUNCATE ${qualifiedIdent(t.table)}`);
  await tx.query(`UPDATE walflow.embedding_targets SET truncated_at = greatest(coalesce(truncated_at, '0/0'), $2::pg_lsn) WHERE target = $1`, [`${t.table.schema}.${t.table.name}`, version]);
}

// Bad input: every one gets a clear, specific error, and nothing is lost or half-done. Malformed
// pipeline definitions, bad sources, bad walflow.start calls, hostile identifiers, huge rows and
// NULLs, invalid configuration, a server without wal_level=logical or pgvector, a role without
// REPLICATION.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/config.js';
import { EmbeddedCluster } from '../../../src/db/embedded-cluster.js';
import { migrate } from '../../../src/db/migrate.js';
import { assertPgvectorInstalled, findPgBinaries } from '../../../src/db/pg-binaries.js';
import { Engine } from '../../../src/engine/engine.js';
import { UserError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { startWalflow } from '../../../src/ops/runner.js';
import { definePipeline } from '../../../src/pipeline/define.js';
import type { SourceDefinition, SourceRunInput } from '../../../src/pipeline/types.js';
import { dropPublication } from '../../../src/replication/setup/publication.js';
import { dropSlot } from '../../../src/replication/setup/slot.js';
import { ReplicationSource } from '../../../src/replication/replication-source.js';
import { resolveSources } from '../../../src/replication/setup/validate.js';
import { chunkText } from '../../../src/steps/chunk/splitter.js';
import { estimateTokens } from '../../../src/steps/embedders/openai-provider.js';
import { createEmbeddingPipeline } from '../../../src/steps/embedding/pipeline.js';
import { ensureTarget } from '../../../src/steps/embedding/target.js';
import { createCountedSchema } from '../../fixtures/chaos/schema.js';
import { startFakeEmbeddingsServer, type FakeEmbeddingsServer } from '../../fixtures/fake-embeddings-server.js';
import { databaseUrl, useTestDatabase, withAdmin } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';

const db = useTestDatabase();
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
const q = pg.escapeIdentifier;
let server: FakeEmbeddingsServer;

beforeAll(async () => {
  server = await startFakeEmbeddingsServer({ dimensions: 8 });
});
afterAll(async () => {
  await server?.stop();
});

interface CliResult { code: number; stdout: string; stderr: string }

/** Runs the real CLI (bin/walflow.js) with a clean walflow environment. */
function cli(args: string[], env: Record<string, string>): Promise<CliResult> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WALFLOW_') && !k.startsWith('CHAOS_') && k !== 'DATABASE_URL'));
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin/walflow.js'), ...args], { cwd: ROOT, env: { ...base, WALFLOW_LOG_LEVEL: 'warn', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const noop = { name: 'a', run: () => null };
const openai = () => ({ provider: 'openai' as const, baseURL: server.baseURL, model: 'fake', dimensions: 8 });

async function unfinished(pool: pg.Pool | pg.Client, pipeline: string): Promise<number> {
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE pipeline = $1 AND status IN ('queued', 'running', 'waiting')`, [pipeline]);
  return rows[0].n;
}

describe('bad input: a clear, specific error, and nothing lost', () => {
  it('malformed pipeline definitions are refused when defined, naming the pipeline and the step', () => {
    const cases: [() => unknown, RegExp][] = [
      [() => definePipeline({ name: 'p', steps: [noop, { ...noop }] }), /^pipeline "p": duplicate step name "a"$/],
      [() => definePipeline({ steps: [noop] } as never), /^a pipeline needs a name/],
      [() => definePipeline({ name: 'p; DROP TABLE x', steps: [noop] }), /^a pipeline needs a name of letters, digits, _ \. -/],
      [() => definePipeline({ name: 'p', steps: [] }), /^pipeline "p": needs at least one step$/],
      [() => definePipeline({ name: 'p', steps: [{ run: () => null } as never] }), /^pipeline "p": step 0 needs a name/],
      [() => definePipeline({ name: 'p', steps: [{ name: 'a' } as never] }), /^pipeline "p": step "a" has no run function \(or one of sleep, waitFor, children\)$/],
      [() => definePipeline({ name: 'p', source: { table: 't', key: [] }, steps: [noop] }), /^pipeline "p": source.key must be a non-empty list/],
      [() => definePipeline({ name: 'p', source: { table: ' ' }, steps: [noop] }), /^pipeline "p": source.table must name a table$/],
      [() => definePipeline({ name: 'p', source: { table: 't', events: ['upsert' as never] }, steps: [noop] }), /^pipeline "p": source.events: unknown event "upsert"/],
      [() => definePipeline({ name: 'p', key: 'id' as never, steps: [noop] }), /^pipeline "p": key must be a function/],
      [() => definePipeline({ name: 'p', steps: [{ ...noop, retry: { maxAttempts: 0 } }] }), /^pipeline "p": step "a": retry.maxAttempts must be a positive integer$/],
      [() => createEmbeddingPipeline({ name: 'e', table: 't', textColumn: 'b', template: '{title}: {chunk}', templateColumns: ['b'], embedder: openai() }), /^pipeline "e": template placeholder\(s\) \{title\} not in templateColumns/],
      [() => createEmbeddingPipeline({ name: 'e', table: 't', textColumn: 'b', template: '{title: {chunk}', embedder: openai() }), /^pipeline "e": template: "\{" inside a placeholder at character 9/],
      [() => createEmbeddingPipeline({ name: 'e', table: 't', textColumn: 'b', template: '{chunk} }', embedder: openai() }), /^pipeline "e": template: unmatched "\}" at character 9/],
      [() => createEmbeddingPipeline({ name: 'e', table: 't', textColumn: 'b', template: '{chunk} {Заголовок', embedder: openai() }), /^pipeline "e": template: placeholder opened at character 9 .* is never closed/],
      [() => createEmbeddingPipeline({ name: 'e', table: 't', textColumn: 'b', template: 'no chunk', embedder: openai() }), /^pipeline "e": template must contain \{chunk\}$/],
      [() => createEmbeddingPipeline({ name: 'e', table: 't', textColumn: 'b', chunkSize: 9000, embedder: openai() }), /^pipeline "e": chunkSize 9000 exceeds what fake reads \(8191 tokens\)/],
    ];
    for (const [define, message] of cases) {
      let err: unknown;
      try {
        define();
      } catch (e) {
        err = e;
      }
      expect(err, String(message)).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('walflow run with a malformed pipeline file: exit 2, one line naming the file, nothing started', async () => {
    const r = await cli(['run', '--pipelines', path.join(ROOT, 'test/fixtures/chaos/bad-pipelines')], { DATABASE_URL: db.url });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual(['walflow: dup.ts: pipeline "dup": duplicate step name "a"']);
    expect(r.stdout).toBe('');
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM walflow.pipelines WHERE name = 'dup'`);
    expect(rows[0].n).toBe(0);
  });

  it('sources: an unknown table or column, no primary key or replica identity, walflow\'s own tables — refused at startup in one line', async () => {
    await db.pool.query(`CREATE TABLE bi_nokey (a int, b text);
      CREATE TABLE bi_full (a int, b text); ALTER TABLE bi_full REPLICA IDENTITY FULL;
      CREATE TABLE bi_pk (id int PRIMARY KEY, body text)`);
    const P = (name: string, source: SourceDefinition) => definePipeline({ name, source, steps: [noop] });
    const cases: [ReturnType<typeof P>, RegExp][] = [
      [P('s1', { table: 'bi_missing' }), /^pipeline "s1": source table public\.bi_missing does not exist/],
      [P('s2', { table: 'bi_pk', columns: ['nope'] }), /^pipeline "s2": source table public\.bi_pk has no column "nope"/],
      [P('s3', { table: 'bi_pk', key: ['nope'] }), /^pipeline "s3": source table public\.bi_pk has no column "nope"/],
      [P('s4', { table: 'bi_nokey' }), /^pipeline "s4": source table public\.bi_nokey has no primary key or replica identity, so its updates and deletes cannot be replicated/],
      [P('s5', { table: 'bi_full' }), /^pipeline "s5": source table public\.bi_full has no primary key: declare source\.key/],
      [P('s6', { table: 'walflow.runs' }), /^pipeline "s6": source table walflow\.runs is in walflow's own schema/],
    ];
    for (const [p, message] of cases) {
      const err = await resolveSources(db.pool, [p]).then(() => undefined, (e: unknown) => e);
      expect(err, String(message)).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(message);
    }
    // REPLICA IDENTITY FULL with a declared key is fine.
    await expect(resolveSources(db.pool, [P('s7', { table: 'bi_full', key: ['a'] })])).resolves.toMatchObject({ routes: [{ keyColumns: ['a'] }] });

    // The real process: exit 2, one line, and no slot or publication left behind.
    await createCountedSchema(db.pool);
    await db.pool.query('ALTER TABLE chaos_items DROP CONSTRAINT chaos_items_pkey');
    const r = await cli(['run', '--pipelines', path.join(ROOT, 'test/fixtures/chaos/pipelines'), '--only', 'chaos-counted'],
      { DATABASE_URL: db.url, WALFLOW_SLOT_NAME: 'bi_slot', WALFLOW_PUBLICATION_NAME: 'bi_pub' });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n').filter((l) => !l.startsWith('{'))).toEqual([expect.stringMatching(/^walflow: pipeline "chaos-counted": source table public\.chaos_items has no primary key or replica identity/)]);
    const left = await db.pool.query(`SELECT (SELECT count(*)::int FROM pg_replication_slots WHERE slot_name = 'bi_slot') AS slots, (SELECT count(*)::int FROM pg_publication WHERE pubname = 'bi_pub') AS pubs`);
    expect(left.rows[0]).toEqual({ slots: 0, pubs: 0 });
  });

  it('the embedding pipeline: an unknown table, an unknown or non-text textColumn, an unknown template column or placeholder — refused at setup, before any run', async () => {
    await db.pool.query(`CREATE TABLE bi_docs (id int PRIMARY KEY, n int, body text, title text)`);
    const E = (o: Partial<Parameters<typeof createEmbeddingPipeline>[0]>) => createEmbeddingPipeline({ name: 'bi-embed', table: 'bi_docs', textColumn: 'body', embedder: openai(), ...o });
    const cases: [ReturnType<typeof E>, RegExp][] = [
      [E({ table: 'bi_nodocs' }), /^pipeline "bi-embed": source table public\.bi_nodocs does not exist/],
      [E({ textColumn: 'nope' }), /^pipeline "bi-embed": public\.bi_docs has no column "nope"/],
      [E({ textColumn: 'n' }), /^pipeline "bi-embed": textColumn "n" of public\.bi_docs is integer; the chunker needs text/],
      [E({ templateColumns: ['nope'] }), /^pipeline "bi-embed": public\.bi_docs has no column "nope"/],
      [E({ template: '{nope}: {chunk}' }), /^pipeline "bi-embed": template placeholder \{nope\} names no column of public\.bi_docs \(columns: "id", "n", "body", "title"/],
      [E({ template: '{Title}: {chunk}' }), /^pipeline "bi-embed": template placeholder \{Title\} names no column of public\.bi_docs/],
      [E({ template: '{Заголовок 📌}: {chunk}' }), /^pipeline "bi-embed": template placeholder \{Заголовок 📌\} names no column of public\.bi_docs/],
    ];
    for (const [p, message] of cases) {
      const engine = new Engine({ url: db.url, pipelines: [p] });
      try {
        const err = await engine.register().then(() => undefined, (e: unknown) => e);
        expect(err, String(message)).toBeInstanceOf(UserError);
        expect((err as Error).message).toMatch(message);
      } finally {
        await engine.stop();
      }
    }
  });

  it('walflow.start and start_batch: unknown pipeline, invalid JSON, NULL input, malformed items — a specific SQLSTATE and message, and no run', async () => {
    await db.pool.query(`INSERT INTO walflow.pipelines (name, version, steps) VALUES ('bi-p', 'v1', '{a}') ON CONFLICT DO NOTHING`);
    await db.pool.query(`CREATE TABLE bi_orders (id int)`);
    const before = (await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs`)).rows[0].n;
    const hostile = `x'); DROP TABLE walflow.runs; --`;
    const cases: [string, unknown[], { code: string; message: RegExp }][] = [
      [`SELECT walflow.start('bi-nope', '{}')`, [], { code: 'WF001', message: /^walflow: unknown pipeline "bi-nope"$/ }],
      [`SELECT walflow.start($1, '{}')`, [hostile], { code: 'WF001', message: /^walflow: unknown pipeline "x'\); DROP TABLE walflow\.runs; --"$/ }],
      [`SELECT walflow.start('bi-p', $1)`, ['{"a": '], { code: '22P02', message: /invalid input syntax for type json/ }],
      [`SELECT walflow.start('bi-p', NULL)`, [], { code: 'WF002', message: /input must not be NULL/ }],
      [`SELECT walflow.start_batch('bi-p', '{"input": {}}')`, [], { code: 'WF002', message: /items must be a JSON array/ }],
      [`SELECT walflow.start_batch('bi-p', '[{"key": "k"}]')`, [], { code: 'WF002', message: /every item needs an "input"/ }],
      [`SELECT walflow.start_batch('bi-p', '[1]')`, [], { code: 'WF002', message: /every item needs an "input"/ }],
      [`SELECT walflow.start_batch('bi-p', '[{"input": {}, "source_lsn": "nope"}]')`, [], { code: '22P02', message: /invalid input syntax for type pg_lsn/ }],
    ];
    for (const [sql, params, want] of cases) {
      const err = await db.pool.query(sql, params).then(() => undefined, (e: unknown) => e as { code: string; message: string });
      expect(err, sql).toBeDefined();
      expect(err!.code, sql).toBe(want.code);
      expect(err!.message, sql).toMatch(want.message);
    }
    // Inside the caller's transaction the error aborts it: the order and its run commit together or not at all.
    const c = await db.pool.connect();
    try {
      await c.query('BEGIN');
      await c.query(`INSERT INTO bi_orders VALUES (1)`);
      await expect(c.query(`SELECT walflow.start('bi-nope', '{"order": 1}')`)).rejects.toMatchObject({ code: 'WF001' });
      await c.query('ROLLBACK');
    } finally {
      c.release();
    }
    const after = await db.pool.query(`SELECT (SELECT count(*)::int FROM walflow.runs) AS runs, (SELECT count(*)::int FROM bi_orders) AS orders`);
    expect(after.rows[0]).toEqual({ runs: before, orders: 0 });
  });

  it('hostile identifiers (quotes, semicolons, Unicode) in schema, table, column and target names flow end to end, always quoted', async () => {
    const SCHEMA = 'sch ém;a';
    const TABLE = 'Wé"ird tbl; DROP TABLE bi_canary; --';
    const KEY = 'i"d';
    const BODY = 'bo dy;--';
    const TITLE = 'tï"tle ✓';
    const TARGET = 'tärget "x"; --';
    const EFFECTS = 'eff"ects; --';
    const table = `${q(SCHEMA)}.${q(TABLE)}`;
    await db.pool.query(`CREATE TABLE bi_canary (x int);
      CREATE SCHEMA ${q(SCHEMA)};
      CREATE TABLE ${table} (${q(KEY)} int PRIMARY KEY, ${q(BODY)} text, ${q(TITLE)} text);
      CREATE TABLE ${q(SCHEMA)}.${q(EFFECTS)} (${q(KEY)} int, ${q(BODY)} text, op text)`);
    const wal = definePipeline({
      name: 'hostile-wal',
      // The test counts the runs its own changes start: no automatic initial backfill racing them.
      source: { table, columns: [BODY], backfill: false },
      steps: [{
        name: 'apply',
        run: async (ctx, change: SourceRunInput) => {
          const tx = await ctx.tx();
          await tx.query(`INSERT INTO ${q(SCHEMA)}.${q(EFFECTS)} VALUES ($1, $2, $3)`, [change.key?.[KEY], change.row?.[BODY] ?? null, change.op]);
        },
      }],
    });
    const emb = createEmbeddingPipeline({
      name: 'hostile-embed', table, textColumn: BODY, templateColumns: [TITLE], target: `${q(SCHEMA)}.${q(TARGET)}`,
      embedder: openai(), chunkSize: 32, chunkOverlap: 0, batch: { maxItems: 8, maxWaitMs: 5 }, backfill: false,
    });
    const config = loadConfig({ databaseUrl: db.url, slotName: 'bi_hostile', publicationName: 'bi_hostile', workers: 1, pollIntervalMs: 100 }, {});
    const wf = await startWalflow({ url: db.url, config, pipelines: [wal, emb], log: silentLogger });
    try {
      const text = (n: number) => `it's "quoted"; DROP TABLE bi_canary; -- ünïcødé ✓ row ${n} `.repeat(6);
      for (let n = 1; n <= 4; n++) await db.pool.query(`INSERT INTO ${table} VALUES ($1, $2, $3)`, [n, text(n), `title ${n}; --`]);
      await db.pool.query(`UPDATE ${table} SET ${q(BODY)} = $2 WHERE ${q(KEY)} = $1`, [2, text(22)]);
      await db.pool.query(`DELETE FROM ${table} WHERE ${q(KEY)} = 3`);
      await waitFor('hostile runs', async () => {
        const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE pipeline IN ('hostile-wal', 'hostile-embed')`);
        return rows[0].n === 12 && (await unfinished(db.pool, 'hostile-wal')) + (await unfinished(db.pool, 'hostile-embed')) === 0;
      }, 60_000, 100);
      const failed = await db.pool.query(`SELECT pipeline, error->>'message' AS m FROM walflow.runs WHERE status = 'failed'`);
      expect(failed.rows).toEqual([]);
      // One effect per completed run (an insert still queued when its row changed again was
      // superseded by the newer change: latest wins), and every row's last change among them.
      const effects = await db.pool.query(`SELECT ${q(KEY)} AS k, op, ${q(BODY)} AS body FROM ${q(SCHEMA)}.${q(EFFECTS)} ORDER BY 1, op`);
      const completed = (await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE pipeline = 'hostile-wal' AND status = 'completed'`)).rows[0].n;
      expect(effects.rows).toHaveLength(completed);
      expect(effects.rows.map((r) => `${r.k}:${r.op}`)).toEqual(expect.arrayContaining(['1:insert', '2:update', '3:delete', '4:insert']));
      expect(effects.rows.find((r) => r.op === 'update').body).toBe(text(22));
      const chunks = await db.pool.query(`SELECT source_key, count(*)::int AS n, string_agg(chunk_text, '' ORDER BY chunk_index) AS t FROM ${q(SCHEMA)}.${q(TARGET)} GROUP BY 1 ORDER BY 1`);
      expect(chunks.rows.map((r) => r.source_key)).toEqual(['1', '2', '4']);
      for (const r of chunks.rows) {
        const want = await chunkText(text(r.source_key === '2' ? 22 : Number(r.source_key)), estimateTokens, { chunkSize: 32, chunkOverlap: 0 });
        expect(r.n).toBe(want.length);
        expect(r.t).toBe(want.map((c) => c.text).join(''));
      }
      // The canary survived every statement that named those identifiers.
      await expect(db.pool.query('SELECT count(*) FROM bi_canary')).resolves.toBeDefined();
    } finally {
      await wf.stop();
      await dropSlot(db.pool, 'bi_hostile');
      await dropPublication(db.pool, 'bi_hostile');
    }
    // Names walflow itself uses in SQL are validated instead: pipelines (above), slots and publications.
    expect(() => loadConfig({ slotName: 'x"; DROP TABLE y' }, {})).toThrow(/slotName.*lower-case letters, digits and _/);
    expect(() => loadConfig({}, { WALFLOW_PUBLICATION_NAME: 'Pub;--' })).toThrow(/publicationName \(WALFLOW_PUBLICATION_NAME\)/);
  }, 120_000);

  it('a 2 MB row (TOASTed, then updated without touching it) and NULLs: exact chunks, nothing dropped', async () => {
    await db.pool.query(`CREATE TABLE bi_big (id int PRIMARY KEY, title text, body text)`);
    const p = createEmbeddingPipeline({
      name: 'bi-big', table: 'bi_big', textColumn: 'body', templateColumns: ['title'], template: '{title}: {chunk}',
      embedder: { ...openai(), maxBatchItems: 512 }, batch: { maxItems: 4, maxWaitMs: 5 },
    });
    const config = loadConfig({ databaseUrl: db.url, slotName: 'bi_big', publicationName: 'bi_big', workers: 1, pollIntervalMs: 100 }, {});
    const wf = await startWalflow({ url: db.url, config, pipelines: [p], log: silentLogger });
    const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'];
    const huge = Array.from({ length: 2_000_000 / 8 }, (_, i) => `${words[i % 8]!.slice(0, 6)}${i % 10} `.padEnd(8, ' ')).join('');
    const expectChunks = async (id: number, body: string | null, title: string | null) => {
      const want = await chunkText(body, estimateTokens, { chunkSize: 512, chunkOverlap: 64, template: '{title}: {chunk}' }, { title: title ?? '' });
      const { rows } = await db.pool.query(`SELECT count(*)::int AS n, coalesce(bool_and(chunk_text = (c.want)[chunk_index + 1]), true) AS same
                                              FROM bi_big_embeddings, (SELECT $2::text[] AS want) c WHERE source_key = $1`, [String(id), want.map((w) => w.text)]);
      expect(rows[0], `doc ${id}`).toEqual({ n: want.length, same: true });
      return want.length;
    };
    const settled = () => waitFor('bi-big settled', async () => (await unfinished(db.pool, 'bi-big')) === 0 && (await db.pool.query(`SELECT 1 FROM walflow.runs WHERE pipeline = 'bi-big' AND status = 'failed'`)).rowCount === 0, 90_000, 100);
    try {
      await db.pool.query(`INSERT INTO bi_big VALUES (1, 'Huge', $1), (2, 'Empty', NULL), (3, NULL, 'a short body whose title is NULL')`, [huge]);
      await waitFor('3 runs', async () => (await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE pipeline = 'bi-big'`)).rows[0].n >= 3, 30_000);
      await settled();
      expect(await expectChunks(1, huge, 'Huge')).toBeGreaterThan(1000);
      expect(await expectChunks(2, null, 'Empty')).toBe(0);
      expect(await expectChunks(3, 'a short body whose title is NULL', null)).toBe(1);
      // Only the title changes: the 2 MB body arrives as "unchanged TOAST" and is read back, never lost.
      await db.pool.query(`UPDATE bi_big SET title = 'Renamed' WHERE id = 1`);
      await db.pool.query(`UPDATE bi_big SET body = 'now it has text' WHERE id = 2`);
      await db.pool.query(`UPDATE bi_big SET body = NULL WHERE id = 3`);
      await waitFor('6 runs', async () => (await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE pipeline = 'bi-big'`)).rows[0].n >= 6, 30_000);
      await settled();
      const { rows } = await db.pool.query(`SELECT length(input->'row'->>'body') AS len FROM walflow.runs WHERE pipeline = 'bi-big' AND key = '1' AND input->>'op' = 'update'`);
      expect(rows).toEqual([{ len: huge.length }]);
      await expectChunks(1, huge, 'Renamed');
      expect(await expectChunks(2, 'now it has text', 'Empty')).toBe(1);
      expect(await expectChunks(3, null, null)).toBe(0);
    } finally {
      await wf.stop();
      await dropSlot(db.pool, 'bi_big');
      await dropPublication(db.pool, 'bi_big');
    }
  }, 120_000);

  it('invalid configuration values: one line naming the key and its variable, exit 2, before anything starts', async () => {
    expect(() => loadConfig({}, { WALFLOW_WORKERS: 'lots' })).toThrow(/workers \(WALFLOW_WORKERS\)/);
    expect(() => loadConfig({}, { WALFLOW_LEASE_MS: '10' })).toThrow(/leaseMs \(WALFLOW_LEASE_MS\)/);
    expect(() => loadConfig({}, { WALFLOW_REPLICATION: 'maybe' })).toThrow(/WALFLOW_REPLICATION.*true or false/);
    expect(() => loadConfig({}, { WALFLOW_LOG_LEVEL: 'loud' })).toThrow(/logLevel \(WALFLOW_LOG_LEVEL\)/);
    const r = await cli(['run', '--pipelines', path.join(ROOT, 'test/fixtures/chaos/pipelines'), '--only', 'chaos-counted'],
      { DATABASE_URL: db.url, WALFLOW_MAX_IN_FLIGHT: '0', WALFLOW_SLOT_NAME: 'bi_cfg', WALFLOW_PUBLICATION_NAME: 'bi_cfg' });
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^walflow: invalid configuration: maxInFlight \(WALFLOW_MAX_IN_FLIGHT\)/);
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = 'bi_cfg'`)).rows[0].n).toBe(0);
    // An embedder's bad URL, size or missing API key variable: refused at startup (pipeline setup), not by the first run.
    await db.pool.query(`CREATE TABLE IF NOT EXISTS bi_cfg_docs (id int PRIMARY KEY, body text)`);
    const embedders: [Parameters<typeof createEmbeddingPipeline>[0]['embedder'], RegExp][] = [
      [{ provider: 'openai', baseURL: 'ftp://example.invalid', model: 'm', dimensions: 8 }, /^embedder baseURL must be an http\(s\) URL/],
      [{ provider: 'openai', baseURL: server.baseURL, model: 'm', dimensions: 0 }, /^openai embedder: dimensions must be a positive integer/],
      [{ provider: 'openai', baseURL: server.baseURL, model: 'm', dimensions: 8, apiKeyEnv: 'BI_UNSET_API_KEY' }, /^the embedding API key variable BI_UNSET_API_KEY is not set$/],
    ];
    for (const [embedder, message] of embedders) {
      const engine = new Engine({ url: db.url, pipelines: [createEmbeddingPipeline({ name: 'bi-cfg', table: 'bi_cfg_docs', textColumn: 'body', embedder })] });
      const err = await engine.register().then(() => undefined, (e: unknown) => e);
      await engine.stop().catch(() => undefined);
      expect(err, String(message)).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('a role without the REPLICATION attribute: refused in one line naming the role and the fix', async () => {
    await db.pool.query(`CREATE TABLE IF NOT EXISTS bi_repl (id int PRIMARY KEY)`);
    await withAdmin(async (a) => {
      await a.query(`DROP ROLE IF EXISTS bi_norepl`).catch(() => undefined);
      await a.query(`CREATE ROLE bi_norepl LOGIN PASSWORD 'bi-password'`);
    });
    await db.pool.query(`GRANT USAGE ON SCHEMA walflow TO bi_norepl; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA walflow TO bi_norepl; GRANT SELECT ON bi_repl TO bi_norepl`);
    const u = new URL(db.url);
    u.username = 'bi_norepl';
    u.password = 'bi-password';
    const src = new ReplicationSource({
      url: u.toString(), slotName: 'bi_norepl', publicationName: 'bi_norepl', logger: silentLogger,
      pipelines: [definePipeline({ name: 'bi-repl', source: { table: 'bi_repl' }, steps: [noop] })],
    });
    const err = await src.start().then(() => undefined, (e: unknown) => e);
    await src.stop();
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toBe('role "bi_norepl" may not use replication: as a superuser run ALTER ROLE "bi_norepl" WITH REPLICATION; or connect as a role that has it');
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = 'bi_norepl'`)).rows[0].n).toBe(0);
    await db.pool.query(`REVOKE ALL ON ALL TABLES IN SCHEMA walflow FROM bi_norepl; REVOKE ALL ON SCHEMA walflow FROM bi_norepl; REVOKE ALL ON bi_repl FROM bi_norepl`);
    await withAdmin((a) => a.query(`DROP ROLE bi_norepl`));
  });

  it('without pgvector: a missing install is refused in one line; a database where the extension cannot be created fails the embedding pipeline at setup; other pipelines do not need it', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'walflow-no-ext-'));
    try {
      expect(() => assertPgvectorInstalled({ ...findPgBinaries(), extensionDir: empty })).toThrow(/^pgvector is not installed for PostgreSQL \d+ \(no vector\.control in .*\): run `sudo bash scripts\/setup-postgres\.sh`/);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
    // A database without the extension (made from template0), and a role that may not create it.
    const name = `${db.name}_novec`;
    await withAdmin(async (a) => {
      await a.query(`CREATE DATABASE ${name} TEMPLATE template0`);
      await a.query(`DROP ROLE IF EXISTS bi_novec`).catch(() => undefined);
      await a.query(`CREATE ROLE bi_novec LOGIN PASSWORD 'bi-password'`);
    });
    const url = databaseUrl(db.adminUrl, name);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await migrate(c);
      expect((await c.query(`SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'vector'`)).rows[0].n).toBe(0);
      await c.query(`GRANT CREATE, USAGE ON SCHEMA public TO bi_novec`);
      const u = new URL(url);
      u.username = 'bi_novec';
      u.password = 'bi-password';
      const r = new pg.Client({ connectionString: u.toString() });
      await r.connect();
      const err = await ensureTarget(r, { table: { schema: 'public', name: 'novec_embeddings' }, dimensions: 8 }).then(() => undefined, (e: unknown) => e);
      await r.end();
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(/^pgvector is not available on this server \(permission denied to create extension "vector"\)/);
      // The engine itself needs no pgvector: a pipeline without vectors runs to completion.
      const engine = new Engine({ url, pipelines: [definePipeline({ name: 'novec', steps: [{ name: 'a', run: (_ctx, i: { n: number }) => i.n + 1 }] })], pollIntervalMs: 50 });
      await engine.register();
      await engine.runWorkers();
      const id = await engine.start('novec', { n: 41 });
      await waitFor('novec run', async () => (await c.query(`SELECT walflow.result($1) AS r`, [id])).rows[0].r === 42, 20_000);
      await engine.stop();
    } finally {
      await c.end();
      await withAdmin(async (a) => {
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await a.query(`DROP ROLE IF EXISTS bi_novec`);
      });
    }
  });
});

describe('bad input: a server without wal_level=logical', () => {
  let cluster: EmbeddedCluster | undefined;
  let dir = '';
  let url = '';
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walflow-replica-'));
    fs.chmodSync(dir, 0o755);
    cluster = new EmbeddedCluster({ dataDir: path.join(dir, 'data'), settings: { wal_level: 'replica', fsync: 'off' } });
    url = await cluster.start();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await createCountedSchema(c);
    await c.end();
  }, 120_000);
  afterAll(async () => {
    await cluster?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('walflow run refuses in one line with the fix; no slot, no publication, no run', async () => {
    const r = await cli(['run', '--pipelines', path.join(ROOT, 'test/fixtures/chaos/pipelines'), '--only', 'chaos-counted'], { DATABASE_URL: url });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n').filter((l) => !l.startsWith('{'))).toEqual([
      'walflow: PostgreSQL runs with wal_level=replica; walflow reads changes by logical replication and needs wal_level=logical: run ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL',
    ]);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const { rows } = await c.query(`SELECT (SELECT count(*)::int FROM pg_replication_slots) AS slots, (SELECT count(*)::int FROM pg_publication) AS pubs, (SELECT count(*)::int FROM walflow.runs) AS runs`);
      expect(rows[0]).toEqual({ slots: 0, pubs: 0, runs: 0 });
    } finally {
      await c.end();
    }
  });
});

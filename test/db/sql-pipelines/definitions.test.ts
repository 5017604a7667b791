// Pipelines defined from SQL, without a walflow process: the definitions are checked at call time
// with clear errors; SQL steps bind :placeholders and run with the definer's privileges (a definer
// cannot read through a pipeline what it cannot read itself), in the step's checkpoint transaction.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { backfill } from '../../../src/ops/backfill.js';
import { buildSqlPipeline, readSqlPipelines } from '../../../src/ops/sql-pipelines/build.js';
import { httpHostPolicyFromConfig } from '../../../src/steps/http/config-policy.js';
import { startFakeEmbeddingsServer } from '../../fixtures/fake-embeddings-server.js';
import { useTestDatabase, withAdmin } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';
import { asRole } from '../chaos/support/roles.js';
import { LOCAL_DIMENSIONS, LOCAL_MODEL_NAME } from '../../../src/steps/embedders/local-model.js';

const db = useTestDatabase();
const sfx = randomBytes(3).toString('hex');
const ADMIN = `sp_admin_${sfx}`;
const PASSWORD = 'sp-password';
let engine: Engine | undefined;

const q = async <T = Record<string, unknown>>(sql: string, params: unknown[] = []) => (await db.pool.query(sql, params)).rows as T[];
/** The error message of a statement, or 'ok'. */
const err = (sql: string, c: pg.Pool | pg.Client = db.pool) => c.query(sql).then(() => 'ok', (e: Error) => e.message);

beforeAll(async () => {
  await withAdmin(async (a) => a.query(`CREATE ROLE ${ADMIN} LOGIN PASSWORD '${PASSWORD}'`));
  // The grants README "From SQL" tells an operator to give a role that defines pipelines.
  await db.pool.query(`GRANT USAGE ON SCHEMA walflow TO ${ADMIN}`);
  await db.pool.query(`GRANT USAGE, CREATE ON SCHEMA walflow_steps TO ${ADMIN}`);
  await db.pool.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA walflow TO ${ADMIN}`);
  await db.pool.query(`CREATE TABLE sp_notes (id int PRIMARY KEY, body text, title text, n int)`);
  await db.pool.query(`CREATE TABLE sp_nokey (id int, body text)`);
  await db.pool.query(`CREATE TABLE sp_wide (source_key text, embedding vector(8))`).catch(async () => {
    await db.pool.query('CREATE EXTENSION IF NOT EXISTS vector');
    await db.pool.query(`CREATE TABLE sp_wide (source_key text, embedding vector(8))`);
  });
  await db.pool.query(`CREATE TABLE sp_secrets (id int PRIMARY KEY, v text)`);
  await db.pool.query(`INSERT INTO sp_secrets VALUES (1, 'the secret')`);
  await db.pool.query(`CREATE TABLE sp_audit (n int, who text, note text)`);
  await db.pool.query(`GRANT INSERT ON sp_audit TO ${ADMIN}`);
  await db.pool.query(`INSERT INTO walflow.pipelines (name, version, steps) VALUES ('sp-file', 'v1', '{a}')`);
}, 60_000);

afterAll(async () => {
  await engine?.stop();
  await db.pool.query(`DROP OWNED BY ${ADMIN}`).catch(() => undefined);
  await withAdmin(async (a) => {
    await a.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [ADMIN]);
    await a.query(`DROP ROLE IF EXISTS ${ADMIN}`).catch(() => undefined);
  });
});

describe('defining pipelines from SQL', () => {
  it('refuses bad definitions at call time, each with a clear error', async () => {
    const emb = (args: string) => err(`SELECT walflow.create_embedding_pipeline(${args})`);
    expect(await emb(`'e1', 'public.sp_missing', 'body', 'e1_out'`)).toBe('walflow: pipeline "e1": source table public.sp_missing does not exist (create it first, or qualify it with its schema)');
    expect(await emb(`'e1', 'sp_notes', 'bodyy', 'e1_out'`)).toBe('walflow: pipeline "e1": public.sp_notes has no column "bodyy" (columns: id, body, title, n)');
    expect(await emb(`'e1', 'sp_nokey', 'body', 'e1_out'`)).toBe('walflow: pipeline "e1": public.sp_nokey has no primary key (walflow keys runs by it): ALTER TABLE public.sp_nokey ADD PRIMARY KEY (...)');
    expect(await emb(`'e1', 'sp_notes', 'n', 'e1_out'`)).toBe('walflow: pipeline "e1": text column "n" of public.sp_notes is integer; the chunker needs text (text, varchar, json/jsonb)');
    expect(await emb(`'e1', 'sp_notes', 'body', 'e1_out', template => '{titel}: {chunk}'`)).toBe('walflow: pipeline "e1": public.sp_notes has no column "titel" (columns: id, body, title, n)');
    expect(await emb(`'e1', 'sp_notes', 'body', 'e1_out', template => '{title}'`)).toBe(`walflow: pipeline "e1": template must contain {chunk} (e.g. '{title}: {chunk}')`);
    expect(await emb(`'e1', 'sp_notes', 'body', 'sp_wide'`)).toBe('walflow: pipeline "e1": target sp_wide holds 8-dim vectors but the model makes 512: choose another target_table, or drop that one to re-embed');
    expect(await emb(`'e1', 'sp_notes', 'body', 'e1_out', embedder => 'cohere'`)).toBe(`walflow: pipeline "e1": unknown embedder "cohere" (use 'local' or 'openai', an OpenAI-compatible API)`);
    expect(await emb(`'e1', 'sp_notes', 'body', 'e1_out', embedder => 'openai', base_url => 'https://api.example.com/v1', model => 'm', dimensions => 8, api_key_env => 'sk-proj-abc123'`))
      .toBe(`walflow: pipeline "e1": api_key_env takes the NAME of an environment variable of the walflow processes that holds the key (e.g. 'OPENAI_API_KEY'), never the key itself`);
    expect(await emb(`'e1', 'sp_notes', 'body', 'e1_out', embedder => 'openai', base_url => 'https://api.example.com/v1'`))
      .toBe(`walflow: pipeline "e1": embedder 'openai' needs model and dimensions (e.g. model => 'text-embedding-3-small', dimensions => 1536)`);
    expect(await emb(`'sp-file', 'sp_notes', 'body', 'e1_out'`)).toBe('walflow: pipeline "sp-file" is defined by a pipeline file (a walflow process registered it): choose another name');
    expect(await emb(`'bad name!', 'sp_notes', 'body', 'e1_out'`)).toBe('walflow: a pipeline needs a name of letters, digits, _ . - starting with a letter or _ (got "bad name!")');

    const steps = (s: string, source = 'NULL') => err(`SELECT walflow.create_pipeline('s1', ${s}, ${source})`);
    expect(await steps(`ARRAY[]::jsonb[]`)).toBe('walflow: pipeline "s1" needs at least one step (walflow.sql_step(name, statement), walflow.http_step(...), …)');
    expect(await steps(`ARRAY[walflow.sql_step('a', 'SELECT 1'), walflow.sql_step('a', 'SELECT 2')]`)).toBe('walflow: pipeline "s1": duplicate step name "a"');
    expect(await steps(`ARRAY['{"name": "x"}'::jsonb]`)).toBe('walflow: pipeline "s1": step 1 ("x") is not a step: build it with walflow.sql_step, walflow.http_step, walflow.embed_step, walflow.sleep_step or walflow.signal_step');
    expect(await steps(`ARRAY[walflow.embed_step('e', ':input.text', 'bert')]`)).toBe('walflow: pipeline "s1": step "e": unknown embedder "bert" (use \'local\' or \'openai\')');
    expect(await steps(`ARRAY[walflow.embed_step('e', ':input.text', 'openai', 'https://api.example.com/v1', 'm', 8, 'sk-live-123 key')]`)).toBe('walflow: pipeline "s1": step "e": api_key_env must be the NAME of an environment variable holding the key, not the key itself');
    expect(await steps(`ARRAY[walflow.embed_step('e', ':input.text', 'openai')]`)).toBe('walflow: pipeline "s1": step "e": an openai embedder needs base_url (http or https), model and dimensions');
    expect(await steps(`ARRAY[walflow.sql_step('a', 'SELEC 1')]`)).toBe('walflow: pipeline "s1": step "a": syntax error at or near "SELEC"');
    expect(await steps(`ARRAY[walflow.sql_step('a', 'SELECT 1')]`, `'{"table": "sp_notes", "events": ["upsert"]}'`)).toBe('walflow: pipeline "s1": unknown source event "upsert" (use insert, update, delete, truncate)');
    expect(await steps(`ARRAY[walflow.sql_step('a', 'SELECT 1')]`, `'{"table": "sp_notes", "columns": ["nope"]}'`)).toBe('walflow: pipeline "s1": public.sp_notes has no column "nope"');
    expect(await steps(`ARRAY[walflow.http_step('a', 'POST', 'ftp://x')]`)).toBe('walflow: pipeline "s1": step "a": url must be an http(s) URL (got "ftp://x")');
    // Nothing of a refused definition was kept.
    expect(await q(`SELECT name FROM walflow.sql_pipelines`)).toEqual([]);

    // A role without the operator's grants may not define pipelines at all.
    const plain = `sp_plain_${sfx}`;
    await withAdmin(async (a) => a.query(`CREATE ROLE ${plain} LOGIN PASSWORD '${PASSWORD}'`));
    try {
      await db.pool.query(`GRANT USAGE ON SCHEMA walflow TO ${plain}`);
      expect(await asRole(db.url, plain, PASSWORD, (c) => err(`SELECT walflow.create_pipeline('s1', ARRAY[walflow.sql_step('a', 'SELECT 1')])`, c)))
        .toBe('permission denied for function create_pipeline');
    } finally {
      await db.pool.query(`DROP OWNED BY ${plain}`);
      await withAdmin(async (a) => a.query(`DROP ROLE ${plain}`));
    }
  });

  it('SQL steps bind placeholders from the run and run with the definer\'s privileges: no reading through a pipeline what the definer cannot read', async () => {
    // The definer may not even define a source pipeline on a table it cannot read (runs carry its rows).
    expect(await asRole(db.url, ADMIN, PASSWORD, (c) => err(`SELECT walflow.create_pipeline('sp-src', ARRAY[walflow.sql_step('a', 'SELECT 1')], '{"table": "sp_secrets"}')`, c)))
      .toBe(`walflow: pipeline "sp-src": role "${ADMIN}" may not SELECT from public.sp_secrets, so it may not define a pipeline on it`);
    await asRole(db.url, ADMIN, PASSWORD, async (c) => {
      await c.query(`SELECT walflow.create_pipeline('sp-steal', ARRAY[
        walflow.sql_step('steal', 'SELECT v FROM sp_secrets'),
        walflow.sql_step('leak', 'INSERT INTO sp_audit (n, who, note) VALUES (0, current_user, :prev.rows)')])`);
      await c.query(`SELECT walflow.create_pipeline('sp-audit', ARRAY[
        walflow.sql_step('first', $$SELECT :input.n::int * 2 AS doubled, ':input.n' AS literal, "x:prev" FROM (SELECT 1 AS "x:prev") t$$),
        walflow.sql_step('record', 'INSERT INTO sp_audit (n, who, note) VALUES (:steps.first.rows.0.doubled::int, current_user, :run.key || ''/'' || :prev.count)')])`);
    });
    const rows = await readSqlPipelines(db.pool);
    expect(rows.map((r) => [r.name, r.version, r.definer])).toEqual([['sp-audit', 1, ADMIN], ['sp-steal', 1, ADMIN]]);
    engine = new Engine({ url: db.url, pipelines: rows.map((r) => buildSqlPipeline(r, { hostPolicy: { allowHosts: [] } })), pollIntervalMs: 50 });
    await engine.register();
    await engine.runWorkers();
    const steal = (await q<{ id: string }>(`SELECT walflow.start('sp-steal', '{}', 'k') AS id`))[0]!.id;
    const audit = (await q<{ id: string }>(`SELECT walflow.start('sp-audit', '{"n": 21}', 'key-1') AS id`))[0]!.id;
    await waitFor('both runs finished', async () =>
      (await q<{ n: number }>(`SELECT count(*)::int AS n FROM walflow.runs WHERE id = ANY($1) AND status IN ('completed', 'failed')`, [[steal, audit]]))[0]!.n === 2, 30_000);
    const [s] = await q<{ status: string; error: { message: string }; attempts: number }>(
      `SELECT status, error, (SELECT count(*)::int FROM walflow.step_errors e WHERE e.run_id = r.id) AS attempts FROM walflow.runs r WHERE id = $1`, [steal]);
    // Denied with the definer's privileges (walflow's own role could read it), not retried, and nothing leaked.
    expect(s!.status).toBe('failed');
    expect(s!.error.message).toMatch(/permission denied for table sp_secrets/);
    expect(s!.attempts).toBe(1);
    expect(await q(`SELECT n, who, note FROM sp_audit ORDER BY n`)).toEqual([{ n: 42, who: ADMIN, note: 'key-1/1' }]);
    const first = await q<{ output: unknown }>(`SELECT output FROM walflow.steps WHERE run_id = $1 AND step = 'first'`, [audit]);
    expect(first[0]!.output).toEqual({ rows: [{ doubled: 42, literal: ':input.n', 'x:prev': 1 }], count: 1 });
    // The step functions are the definer's (SECURITY DEFINER), and PUBLIC may not call them.
    expect(await q(`SELECT p.proname, pg_get_userbyid(p.proowner) AS owner, p.prosecdef,
                           (SELECT count(*)::int FROM aclexplode(p.proacl) a WHERE a.grantee = 0) AS public_grants
                      FROM pg_proc p WHERE p.pronamespace = 'walflow_steps'::regnamespace ORDER BY 1`)).toEqual([
      { proname: 'sp-audit/first/v1', owner: ADMIN, prosecdef: true, public_grants: 0 },
      { proname: 'sp-audit/record/v1', owner: ADMIN, prosecdef: true, public_grants: 0 },
      { proname: 'sp-steal/leak/v1', owner: ADMIN, prosecdef: true, public_grants: 0 },
      { proname: 'sp-steal/steal/v1', owner: ADMIN, prosecdef: true, public_grants: 0 },
    ]);
  });

  it('alter makes a new version with new step functions (the old ones stay for runs in flight); drop removes the pipeline, its functions and its registration', async () => {
    await engine?.stop();
    engine = undefined;
    const v = await asRole(db.url, ADMIN, PASSWORD, async (c) => (await c.query(`SELECT walflow.alter_pipeline('sp-audit', ARRAY[
      walflow.sql_step('first', 'SELECT 5 AS doubled'),
      walflow.sql_step('record', 'INSERT INTO sp_audit (n, who, note) VALUES (:steps.first.rows.0.doubled::int, current_user, ''v2'')')]) AS v`)).rows[0].v);
    expect(v).toBe(2);
    const fns = async () => (await q<{ f: string }>(`SELECT proname AS f FROM pg_proc WHERE pronamespace = 'walflow_steps'::regnamespace AND proname LIKE 'sp-audit/%' ORDER BY 1`)).map((r) => r.f);
    expect(await fns()).toEqual(['sp-audit/first/v1', 'sp-audit/first/v2', 'sp-audit/record/v1', 'sp-audit/record/v2']);
    const rows = await readSqlPipelines(db.pool);
    engine = new Engine({ url: db.url, pipelines: rows.map((r) => buildSqlPipeline(r, { hostPolicy: { allowHosts: [] } })), pollIntervalMs: 50 });
    await engine.register();
    await engine.runWorkers();
    expect(await q(`SELECT version FROM walflow.pipelines WHERE name = 'sp-audit'`)).toEqual([{ version: 'sql-v2' }]);
    const id = (await q<{ id: string }>(`SELECT walflow.start('sp-audit', '{}', 'k2') AS id`))[0]!.id;
    await waitFor('the v2 run completed', async () => (await q(`SELECT 1 FROM walflow.runs WHERE id = $1 AND status = 'completed'`, [id])).length === 1, 30_000);
    expect(await q(`SELECT pipeline_version FROM walflow.runs WHERE id = $1`, [id])).toEqual([{ pipeline_version: 'sql-v2' }]);
    expect(await q(`SELECT n, note FROM sp_audit WHERE note = 'v2'`)).toEqual([{ n: 5, note: 'v2' }]);
    await engine.stop();
    engine = undefined;

    expect(await err(`SELECT walflow.alter_pipeline('sp-audit', options => '{"chunk_size": 5}')`)).toBe('walflow: pipeline "sp-audit" is not an embedding pipeline: change its steps or source');
    expect(await err(`SELECT walflow.drop_pipeline('sp-nope')`)).toBe('walflow: no SQL-defined pipeline "sp-nope" (walflow.pipeline_status lists them)');
    expect(await asRole(db.url, ADMIN, PASSWORD, (c) => c.query(`SELECT walflow.drop_pipeline('sp-audit') AS ok`).then((r) => r.rows[0].ok))).toBe(true);
    expect(await fns()).toEqual([]);
    expect(await q(`SELECT name FROM walflow.sql_pipelines UNION ALL SELECT name FROM walflow.pipelines WHERE name = 'sp-audit'`)).toEqual([{ name: 'sp-steal' }]);
    // Its runs stay for inspection; the name is free again.
    expect(await q(`SELECT count(*)::int AS n FROM walflow.runs WHERE pipeline = 'sp-audit'`)).toEqual([{ n: 2 }]);
    expect(await asRole(db.url, ADMIN, PASSWORD, (c) => c.query(`SELECT walflow.create_pipeline('sp-audit', ARRAY[walflow.sql_step('a', 'SELECT 1')]) AS v`).then((r) => r.rows[0].v))).toBe(1);
  });

  it('HTTP steps defined in SQL: placeholders fill the URL and JSON body; only hosts the operator allows are called', async () => {
    await engine?.stop();
    engine = undefined;
    const got: { url: string; body: unknown; key: string | undefined }[] = [];
    const server = http.createServer((req, res) => {
      let text = '';
      req.on('data', (d: Buffer) => (text += d.toString()));
      req.on('end', () => {
        got.push({ url: req.url!, body: JSON.parse(text), key: req.headers['idempotency-key'] as string | undefined });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"shipped": true}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      await asRole(db.url, ADMIN, PASSWORD, (c) => c.query(`SELECT walflow.create_pipeline('sp-http', ARRAY[
        walflow.sql_step('load', 'SELECT 7 * :input.id::int AS total'),
        walflow.http_step('ship', 'post', 'http://127.0.0.1:${port}/orders/:input.id?note=:input.note',
                          body => '{"order": ":input.id", "total": ":steps.load.rows.0.total", "text": "order :input.id"}'),
        walflow.sql_step('record', 'INSERT INTO sp_audit (n, who, note) VALUES (:input.id::int, current_user, :prev.body.shipped)')])`));
      const build = (hostPolicy: Parameters<typeof buildSqlPipeline>[1]['hostPolicy']) => readSqlPipelines(db.pool).then((rows) => rows.filter((r) => r.name === 'sp-http').map((r) => buildSqlPipeline(r, { hostPolicy })));
      const run = async (hostPolicy: Parameters<typeof buildSqlPipeline>[1]['hostPolicy'], id: number) => {
        engine = new Engine({ url: db.url, pipelines: await build(hostPolicy), pollIntervalMs: 50 });
        await engine.register();
        await engine.runWorkers();
        const runId = (await q<{ id: string }>(`SELECT walflow.start('sp-http', $1, $2) AS id`, [{ id, note: 'a b&c' }, `h${id}`]))[0]!.id;
        await waitFor('the run finished', async () => (await q(`SELECT 1 FROM walflow.runs WHERE id = $1 AND status IN ('completed', 'failed')`, [runId])).length === 1, 30_000);
        await engine.stop();
        engine = undefined;
        return (await q<{ status: string; error: { message: string } | null }>(`SELECT status, error FROM walflow.runs WHERE id = $1`, [runId]))[0]!;
      };
      // The operator's default (WALFLOW_HTTP_ALLOW_HOSTS unset): no host at all.
      const refused = await run(httpHostPolicyFromConfig({ httpAllowHosts: [], httpAllowPrivate: false }), 1);
      expect(refused.status).toBe('failed');
      expect(refused.error!.message).toMatch(/is not on the allowed hosts \(none are allowed; operators set WALFLOW_HTTP_ALLOW_HOSTS\)/);
      expect(got).toEqual([]);
      // Allowed (a loopback test server needs allowPrivate too).
      const ok = await run(httpHostPolicyFromConfig({ httpAllowHosts: [`127.0.0.1:${port}`], httpAllowPrivate: true }), 2);
      expect(ok).toEqual({ status: 'completed', error: null });
      expect(got).toEqual([{ url: '/orders/2?note=a%20b%26c', body: { order: 2, total: 14, text: 'order 2' }, key: expect.stringMatching(/:ship$/) }]);
      expect(await q(`SELECT n, note FROM sp_audit WHERE n = 2`)).toEqual([{ n: 2, note: 'true' }]);
    } finally {
      server.close();
    }
  });

  it('an embedding pipeline\'s target, created by walflow, is readable by its definer', async () => {
    await engine?.stop();
    engine = undefined;
    await db.pool.query(`GRANT SELECT ON sp_notes TO ${ADMIN}`);
    await asRole(db.url, ADMIN, PASSWORD, (c) => c.query(`SELECT walflow.create_embedding_pipeline('sp-vec', 'sp_notes', 'body', 'sp_admin_vectors')`));
    const rows = (await readSqlPipelines(db.pool)).filter((r) => r.name === 'sp-vec');
    // Stored schema-qualified: a new target without a schema goes in the source's.
    expect(rows[0]!.definition.target_table).toBe('public.sp_admin_vectors');
    await db.pool.query(`CREATE SCHEMA sp_app; CREATE TABLE sp_app.docs (id int PRIMARY KEY, body text)`);
    await db.pool.query(`SELECT walflow.create_embedding_pipeline('sp-app', 'sp_app.docs', 'body', 'Docs_Vec')`);
    expect(await q(`SELECT definition->>'target_table' AS t FROM walflow.sql_pipelines WHERE name = 'sp-app'`)).toEqual([{ t: 'sp_app.docs_vec' }]);
    await db.pool.query(`SELECT walflow.drop_pipeline('sp-app')`);
    engine = new Engine({ url: db.url, pipelines: rows.map((r) => buildSqlPipeline(r, { hostPolicy: {} })) });
    await engine.register(); // setup: creates the target
    expect(await asRole(db.url, ADMIN, PASSWORD, (c) => err(`SELECT count(*) FROM sp_admin_vectors`, c))).toBe('ok');
    await engine.stop();
    engine = undefined;
    // drop_target (by the table's owner): the table goes, and walflow's record of it (its vector
    // size) with it, so a table made again under that name is free to have another size.
    const recorded = async () => q(`SELECT target, dimensions FROM walflow.embedding_targets WHERE target = 'public.sp_admin_vectors'`);
    expect(await recorded()).toEqual([{ target: 'public.sp_admin_vectors', dimensions: expect.any(Number) }]);
    await db.pool.query(`SELECT walflow.drop_pipeline('sp-vec', drop_target => true)`);
    expect(await q(`SELECT to_regclass('public.sp_admin_vectors') AS t`)).toEqual([{ t: null }]);
    expect(await recorded()).toEqual([]);
  });

  it('row_filter: only rows it accepts are embedded, a row that stops matching loses its chunks; the expression is checked at call time and runs as the definer', async () => {
    await engine?.stop();
    engine = undefined;
    const server = await startFakeEmbeddingsServer({ dimensions: 8 });
    try {
      await db.pool.query(`CREATE TABLE sp_posts (id int PRIMARY KEY, status text NOT NULL, body text)`);
      await db.pool.query(`INSERT INTO sp_posts VALUES (1, 'published', 'first post'), (2, 'draft', 'second post'), (3, 'published', 'third post')`);
      await db.pool.query(`GRANT SELECT ON sp_posts TO ${ADMIN}`);
      const create = (filter: string) => asRole(db.url, ADMIN, PASSWORD, (c) => err(`SELECT walflow.create_embedding_pipeline('sp-pub', 'sp_posts', 'body', 'sp_posts_vec',
        embedder => 'openai', base_url => '${server.baseURL}', model => 'fake', dimensions => 8, backfill => false, row_filter => ${filter})`, c));
      expect(await create(`'stauts = ''published'''`)).toBe('walflow: pipeline "sp-pub": row_filter: column "stauts" does not exist');
      expect(await create(`'status = ''published'' AND id <> 3'`)).toBe('ok');
      const rows = (await readSqlPipelines(db.pool)).filter((r) => r.name === 'sp-pub');
      const pipeline = buildSqlPipeline(rows[0]!, { hostPolicy: {} });
      engine = new Engine({ url: db.url, pipelines: [pipeline], pollIntervalMs: 50 });
      await engine.register();
      await engine.runWorkers();
      const embedded = async () => (await q<{ k: string }>(`SELECT DISTINCT source_key AS k FROM sp_posts_vec ORDER BY 1`)).map((r) => r.k);
      const settled = async () => (await q<{ n: number }>(`SELECT count(*)::int AS n FROM walflow.runs WHERE pipeline = 'sp-pub' AND status NOT IN ('completed', 'superseded')`))[0]!.n === 0;
      await backfill(engine, pipeline, { batchSize: 10 });
      await waitFor('the backfill embedded', settled, 30_000);
      expect(await embedded()).toEqual(['1']);
      await db.pool.query(`UPDATE sp_posts SET status = 'draft' WHERE id = 1`);
      await db.pool.query(`UPDATE sp_posts SET status = 'published' WHERE id = 2`);
      await backfill(engine, pipeline, { batchSize: 10, restart: true });
      await waitFor('the second backfill embedded', settled, 30_000);
      expect(await embedded()).toEqual(['2']);
      expect(await q(`SELECT pg_get_userbyid(proowner) AS owner, prosecdef FROM pg_proc WHERE proname = 'sp-pub/row_filter/v1'`)).toEqual([{ owner: ADMIN, prosecdef: true }]);
    } finally {
      await engine?.stop();
      engine = undefined;
      await server.stop();
    }
  });

  it('a run claimed after the drop committed, by a process that has not picked the drop up yet, is retried, not failed: its step function is gone', async () => {
    await engine?.stop();
    engine = undefined;
    await db.pool.query(`SELECT walflow.create_pipeline('sp-gone', ARRAY[walflow.sql_step('a', 'SELECT 1 AS one')])`);
    const rows = (await readSqlPipelines(db.pool)).filter((r) => r.name === 'sp-gone');
    engine = new Engine({ url: db.url, pipelines: rows.map((r) => buildSqlPipeline(r, { hostPolicy: {} })), pollIntervalMs: 50 });
    await engine.register();
    const id = (await q<{ id: string }>(`SELECT walflow.start('sp-gone', '{}', 'g1') AS id`))[0]!.id;
    // The drop commits while this engine still has the pipeline loaded (a process, until the NOTIFY reaches it).
    await db.pool.query(`SELECT walflow.drop_pipeline('sp-gone')`);
    await engine.runWorkers();
    await waitFor('the first attempt failed', async () => (await q(`SELECT 1 FROM walflow.step_errors WHERE run_id = $1`, [id])).length >= 1, 30_000);
    const [run] = await q<{ status: string; message: string }>(`SELECT status, error->>'message' AS message FROM walflow.runs WHERE id = $1`, [id]);
    expect(run).toEqual({ status: 'waiting', message: expect.stringMatching(/^function walflow_steps\.sp-gone\/a\/v1\(jsonb\) does not exist/) });
    await engine.stop();
    engine = undefined;
  });

  it('durable waits from SQL: a sleep and a signal wait between SQL steps; the signal\'s payload binds the next step', async () => {
    await engine?.stop();
    engine = undefined;
    await asRole(db.url, ADMIN, PASSWORD, (c) => c.query(`SELECT walflow.create_pipeline('sp-wait', ARRAY[
      walflow.sql_step('a', 'SELECT 1 AS one'),
      walflow.sleep_step('nap', '1s'),
      walflow.signal_step('approval', 'approved', '1h'),
      walflow.sql_step('done', 'INSERT INTO sp_audit (n, who, note) VALUES (9, current_user, :prev.payload.by)')])`));
    const rows = (await readSqlPipelines(db.pool)).filter((r) => r.name === 'sp-wait');
    engine = new Engine({ url: db.url, pipelines: rows.map((r) => buildSqlPipeline(r, { hostPolicy: {} })), pollIntervalMs: 50 });
    await engine.register();
    await engine.runWorkers();
    const id = (await q<{ id: string }>(`SELECT walflow.start('sp-wait', '{}', 'w1') AS id`))[0]!.id;
    await waitFor('waiting for the signal', async () =>
      (await q(`SELECT 1 FROM walflow.steps WHERE run_id = $1 AND step = 'nap'`, [id])).length === 1, 30_000);
    expect(await q(`SELECT count(*)::int AS n FROM sp_audit WHERE n = 9`)).toEqual([{ n: 0 }]);
    await db.pool.query(`SELECT walflow.signal($1, 'approved', '{"by": "bob"}')`, [id]);
    await waitFor('completed', async () => (await q(`SELECT 1 FROM walflow.runs WHERE id = $1 AND status = 'completed'`, [id])).length === 1, 30_000);
    expect(await q(`SELECT who, note FROM sp_audit WHERE n = 9`)).toEqual([{ who: ADMIN, note: 'bob' }]);
    await engine.stop();
    engine = undefined;
  });

  it('embedding steps from SQL: a text of the run embedded by the local model, stored by the next SQL step; an empty text gives a NULL embedding', async () => {
    await engine?.stop();
    engine = undefined;
    await db.pool.query(`CREATE TABLE sp_vecs (id int PRIMARY KEY, v vector(${LOCAL_DIMENSIONS}))`);
    await db.pool.query(`GRANT INSERT ON sp_vecs TO ${ADMIN}`);
    await asRole(db.url, ADMIN, PASSWORD, (c) => c.query(`SELECT walflow.create_pipeline('sp-embed', ARRAY[
      walflow.embed_step('e', 'Note: :input.text'),
      walflow.sql_step('store', 'INSERT INTO sp_vecs (id, v) VALUES (:input.id::int, :prev.embedding::vector)')])`));
    const rows = (await readSqlPipelines(db.pool)).filter((r) => r.name === 'sp-embed');
    const pipelines = rows.map((r) => buildSqlPipeline(r, { hostPolicy: {} }));
    engine = new Engine({ url: db.url, pipelines, pollIntervalMs: 50 });
    await engine.register();
    await engine.runWorkers();
    await q(`SELECT walflow.start('sp-embed', '{"id": 1, "text": "the cat sat on the mat"}')`);
    await q(`SELECT walflow.start('sp-embed', '{"id": 2, "text": ""}')`);
    await waitFor('both stored', async () => (await q(`SELECT 1 FROM sp_vecs`)).length === 2, 60_000);
    const [one] = await q<{ dims: number; norm: number }>(`SELECT vector_dims(v) AS dims, round((v <#> v)::numeric * -1, 2)::float8 AS norm FROM sp_vecs WHERE id = 1`);
    expect(one!.dims).toBe(LOCAL_DIMENSIONS);
    expect(one!.norm).toBeGreaterThan(0);
    expect(await q(`SELECT v FROM sp_vecs WHERE id = 2`)).toEqual([{ v: null }]);
    const [out] = await q<{ output: { model: string; dimensions: number } }>(`SELECT s.output FROM walflow.steps s JOIN walflow.runs r ON r.id = s.run_id WHERE r.pipeline = 'sp-embed' AND s.step = 'e' AND r.input->>'id' = '1'`);
    expect(out!.output).toMatchObject({ model: LOCAL_MODEL_NAME, dimensions: LOCAL_DIMENSIONS });
    await engine.stop();
    engine = undefined;
    for (const p of pipelines) await p.close?.();
  }, 120_000);
});

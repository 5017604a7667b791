// Least privilege: which role needs what (docs/guarantees.md, "Least-privilege setup"), shown by
// roles that have exactly that and no more, and by what fails when a grant is missing. API keys
// never reach logs, run inputs, checkpoints or error messages.
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/config.js';
import { Engine } from '../../../src/engine/engine.js';
import { createLogger, silentLogger } from '../../../src/log.js';
import { startWalflow } from '../../../src/ops/runner.js';
import { buildSqlPipeline, readSqlPipelines } from '../../../src/ops/sql-pipelines/build.js';
import { definePipeline } from '../../../src/pipeline/define.js';
import { dropSlot } from '../../../src/replication/setup/slot.js';
import { createEmbeddingPipeline } from '../../../src/steps/embedding/pipeline.js';
import { maybeBuildIndex } from '../../../src/steps/embedding/target.js';
import { startFakeEmbeddingsServer } from '../../fixtures/fake-embeddings-server.js';
import { useTestDatabase, withAdmin } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';
import { asRole, urlAs as roleUrl } from './support/roles.js';

const db = useTestDatabase();
const sfx = randomBytes(3).toString('hex');
const APP = `lp_app_${sfx}`;
const WORKER = `lp_worker_${sfx}`;
const REPL = `lp_repl_${sfx}`;
const PASSWORD = 'lp-password';

const urlAs = (role: string): string => roleUrl(db.url, role, PASSWORD);
const as = <T>(role: string, fn: (c: pg.Client) => Promise<T>): Promise<T> => asRole(db.url, role, PASSWORD, fn);

/** The error (message) a statement fails with as `role`, or 'ok'. */
async function tryAs(role: string, sql: string, params: unknown[] = []): Promise<string> {
  return as(role, (c) => c.query(sql, params).then(() => 'ok', (e: Error) => e.message));
}

/** The grant docs/guarantees.md lists for an application role that starts runs. */
const APP_GRANTS = (role: string) => [`GRANT USAGE ON SCHEMA walflow TO ${role}`];
/** ...and for worker and replication processes (after the schema owner ran `walflow migrate`). */
const PROCESS_GRANTS = (role: string) => [
  `GRANT USAGE ON SCHEMA walflow TO ${role}`,
  `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA walflow TO ${role}`,
];

beforeAll(async () => {
  await withAdmin(async (a) => {
    await a.query(`CREATE ROLE ${APP} LOGIN PASSWORD '${PASSWORD}'`);
    await a.query(`CREATE ROLE ${WORKER} LOGIN PASSWORD '${PASSWORD}'`);
    await a.query(`CREATE ROLE ${REPL} LOGIN REPLICATION PASSWORD '${PASSWORD}'`);
  });
  await db.pool.query(`INSERT INTO walflow.pipelines (name, version, steps) VALUES ('lp-p', 'v1', '{a}')`);
});

afterAll(async () => {
  await db.pool.query(`DROP OWNED BY ${APP}, ${WORKER}, ${REPL}`).catch(() => undefined);
  await withAdmin(async (a) => {
    for (const r of [APP, WORKER, REPL]) {
      await a.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [r]);
      await a.query(`DROP ROLE IF EXISTS ${r}`).catch(() => undefined);
    }
  });
});

describe('least privilege', () => {
  it('walflow.start needs only USAGE on schema walflow, and gives the caller no access to walflow\'s tables', async () => {
    const start = (key: string) => tryAs(APP, `SELECT walflow.start('lp-p', '{"n": 1}', $1)`, [key]);
    expect(await start('k0')).toBe('permission denied for schema walflow');
    for (const g of APP_GRANTS(APP)) await db.pool.query(g);
    // A new key, the same key again (supersedes the queued run), a repeated dedupe id, a batch.
    expect(await start('k1')).toBe('ok');
    expect(await start('k1')).toBe('ok');
    const ids = await as(APP, async (c) => [
      (await c.query(`SELECT walflow.start('lp-p', '{}', 'k2', 'd-1') AS id`)).rows[0].id,
      (await c.query(`SELECT walflow.start('lp-p', '{}', 'k2', 'd-1') AS id`)).rows[0].id,
    ]);
    expect(ids[0]).toBe(ids[1]);
    expect(await tryAs(APP, `SELECT count(*) FROM walflow.start_batch('lp-p', '[{"input": {}, "key": "k3"}, {"input": {}, "key": "k4"}]')`)).toBe('ok');
    expect((await db.pool.query(`SELECT status, count(*)::int AS n FROM walflow.runs WHERE key = 'k1' GROUP BY 1 ORDER BY 1`)).rows).toEqual([
      { status: 'queued', n: 1 }, { status: 'superseded', n: 1 },
    ]);
    // Its errors are still its own: an unknown pipeline, a NULL input.
    expect(await tryAs(APP, `SELECT walflow.start('no-such', '{}')`)).toBe('walflow: unknown pipeline "no-such"');
    // Nothing of walflow's to read or change directly: not other runs, not checkpoints, not the replication state.
    expect(await tryAs(APP, `SELECT count(*) FROM walflow.runs`)).toBe('permission denied for table runs');
    expect(await tryAs(APP, `UPDATE walflow.runs SET status = 'cancelled'`)).toBe('permission denied for table runs');
    expect(await tryAs(APP, `SELECT count(*) FROM walflow.steps`)).toBe('permission denied for table steps');
    expect(await tryAs(APP, `SELECT count(*) FROM walflow.replication_state`)).toBe('permission denied for table replication_state');
    // Owner's rights with a pinned search path: nothing in the caller's path can stand in for what they use.
    const { rows } = await db.pool.query(`SELECT p.proname, p.prosecdef, p.proconfig FROM pg_proc p
      WHERE p.oid IN ('walflow.start(text, jsonb, text, text)'::regprocedure, 'walflow.start_batch(text, jsonb)'::regprocedure) ORDER BY 1`);
    expect(rows).toEqual([
      { proname: 'start', prosecdef: true, proconfig: ['search_path=pg_catalog, pg_temp'] },
      { proname: 'start_batch', prosecdef: true, proconfig: ['search_path=pg_catalog, pg_temp'] },
    ]);
  });

  it('a worker process runs as a role with only DML on schema walflow and its own tables: no CREATE, no REPLICATION, not an owner', async () => {
    for (const g of PROCESS_GRANTS(WORKER)) await db.pool.query(g);
    await db.pool.query(`CREATE TABLE lp_effects (run_id uuid, n int); GRANT INSERT ON lp_effects TO ${WORKER}`);
    const { rows } = await db.pool.query(`SELECT has_database_privilege($1, current_database(), 'CREATE') AS db_create,
        has_schema_privilege($1, 'walflow', 'CREATE') AS schema_create, (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = $1) AS repl`, [WORKER]);
    expect(rows[0]).toEqual({ db_create: false, schema_create: false, repl: false });
    const p = definePipeline<{ n: number }>({
      name: 'lp-worker',
      steps: [{ name: 'write', run: async (ctx, i: { n: number }) => {
        const tx = await ctx.tx();
        await tx.query('INSERT INTO lp_effects VALUES ($1, $2)', [ctx.runId, i.n]);
        return i.n;
      } }],
    });
    const config = loadConfig({ databaseUrl: urlAs(WORKER), replication: false, workers: 1, pollIntervalMs: 50 }, {});
    // Starting migrates (a no-op that needs no CREATE once the owner has migrated), registers, and works.
    const wf = await startWalflow({ url: urlAs(WORKER), config, pipelines: [p], log: silentLogger });
    try {
      for (const g of APP_GRANTS(APP)) await db.pool.query(g);
      await as(APP, (c) => c.query(`SELECT walflow.start_batch('lp-worker', (SELECT jsonb_agg(jsonb_build_object('input', jsonb_build_object('n', g))) FROM generate_series(1, 20) g))`));
      await waitFor('20 runs completed by the worker role', async () => (await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE pipeline = 'lp-worker' AND status = 'completed'`)).rows[0].n === 20, 20_000, 50);
      expect((await db.pool.query(`SELECT count(*)::int AS n, count(DISTINCT run_id)::int AS runs FROM lp_effects`)).rows[0]).toEqual({ n: 20, runs: 20 });
    } finally {
      await wf.stop();
    }
  });

  it('SQL steps of pipelines defined in SQL run under a worker role once it may EXECUTE the walflow_steps functions (the grant README gives); without it the pipeline\'s load error says which grant', async () => {
    for (const g of PROCESS_GRANTS(WORKER)) await db.pool.query(g);
    await db.pool.query(`CREATE TABLE lp_sql_effects (run_id uuid NOT NULL)`);
    await db.pool.query(`SELECT walflow.create_pipeline('lp-sql', ARRAY[walflow.sql_step('write', 'INSERT INTO lp_sql_effects VALUES (:run.id::uuid)')])`);
    const runWorker = async <T>(fn: () => Promise<T>): Promise<T> => {
      const pipelines = (await readSqlPipelines(db.pool)).filter((r) => r.name === 'lp-sql').map((r) => buildSqlPipeline(r, { hostPolicy: {} }));
      const engine = new Engine({ url: urlAs(WORKER), pipelines, pollIntervalMs: 50 });
      try {
        await engine.register();
        await engine.runWorkers();
        return await fn();
      } finally {
        await engine.stop();
      }
    };
    const start = async () => (await db.pool.query(`SELECT walflow.start('lp-sql', '{}') AS id`)).rows[0].id as string;
    const until = (id: string, status: string) => waitFor(`run ${status}`, async () => (await db.pool.query(`SELECT 1 FROM walflow.runs WHERE id = $1 AND status = $2`, [id, status])).rowCount === 1, 20_000, 50);
    // Without the grant the step function is walflow's owner's to call only: the pipeline does not
    // load in a process of this role (its load error, in `walflow status`), with the grant to give.
    await expect(runWorker(async () => undefined)).rejects.toThrow(new RegExp(`^pipeline "lp-sql": this process's role "${WORKER}" may not use schema walflow_steps, where its SQL steps are: the operator grants it: GRANT USAGE ON SCHEMA walflow_steps TO ${WORKER}; GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA walflow_steps TO ${WORKER}; `));
    await db.pool.query(`GRANT USAGE ON SCHEMA walflow_steps TO ${WORKER}`);
    await expect(runWorker(async () => undefined)).rejects.toThrow(/^pipeline "lp-sql": step "write": this process's role "[^"]+" may not EXECUTE walflow_steps\."lp-sql\/write\/v1": /);
    // The grant (README, "From SQL"): the functions there now, and (default privileges, per defining
    // role) every one it creates later — an alter makes new ones.
    const definer = (await db.pool.query(`SELECT current_user AS u`)).rows[0].u as string;
    await db.pool.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA walflow_steps TO ${WORKER}`);
    await db.pool.query(`ALTER DEFAULT PRIVILEGES FOR ROLE ${definer} IN SCHEMA walflow_steps GRANT EXECUTE ON FUNCTIONS TO ${WORKER}`);
    await runWorker(async () => until(await start(), 'completed'));
    await db.pool.query(`SELECT walflow.alter_pipeline('lp-sql', ARRAY[walflow.sql_step('write', 'INSERT INTO lp_sql_effects VALUES (:run.id::uuid)')])`);
    await runWorker(async () => until(await start(), 'completed'));
    expect((await db.pool.query(`SELECT count(*)::int AS n, count(DISTINCT run_id)::int AS runs FROM lp_sql_effects`)).rows[0]).toEqual({ n: 2, runs: 2 });
    await db.pool.query(`ALTER DEFAULT PRIVILEGES FOR ROLE ${definer} IN SCHEMA walflow_steps REVOKE EXECUTE ON FUNCTIONS FROM ${WORKER}`);
  });

  it('the replication leader runs as a REPLICATION role (not a superuser) once a superuser created the publication; creating it itself needs CREATE on the database and ownership of the table', async () => {
    for (const g of PROCESS_GRANTS(REPL)) await db.pool.query(g);
    await db.pool.query(`CREATE TABLE lp_src (id int PRIMARY KEY, body text); GRANT SELECT ON lp_src TO ${REPL}`);
    const slot = `lp_slot_${sfx}`;
    const pub = `lp_pub_${sfx}`;
    // backfill: false: the test counts the runs its own changes start.
    const p = definePipeline({ name: 'lp-repl', source: { table: 'lp_src', backfill: false }, steps: [{ name: 'a', run: () => null }] });
    const start = (publicationName: string) => startWalflow({
      url: urlAs(REPL), config: loadConfig({ databaseUrl: urlAs(REPL), slotName: slot, publicationName, workers: 0 }, {}), pipelines: [p], log: silentLogger,
    });
    // Without a publication the leader would have to create one, which needs CREATE on the
    // database and, for each table, its ownership. Startup fails with what is missing and what to
    // grant (retrying cannot fix privileges).
    const refusal = async (publicationName: string): Promise<string> => {
      const err = await start(publicationName).then(
        async (wf) => {
          await wf.stop();
          return 'started';
        },
        (e: unknown) => (e as Error).message,
      );
      return err;
    };
    expect(await refusal(`${pub}_own`)).toMatch(new RegExp(`^replication cannot lead with this role: permission denied for database ${db.name}\\..*CREATE PUBLICATION`));
    await db.pool.query(`GRANT CREATE ON DATABASE ${db.name} TO ${REPL}`);
    expect(await refusal(`${pub}_own`)).toMatch(/^replication cannot lead with this role: must be owner of table lp_src\..*OWNER TO/);
    await db.pool.query(`REVOKE CREATE ON DATABASE ${db.name} FROM ${REPL}`);
    await dropSlot(db.pool, slot);

    await db.pool.query(`CREATE PUBLICATION ${pub} FOR TABLE lp_src WITH (publish = 'insert, update, delete, truncate')`);
    const wf = await start(pub);
    try {
      expect(wf.replication?.currentStatus.role).toBe('leader');
      await db.pool.query(`INSERT INTO lp_src SELECT g, 'row ' || g FROM generate_series(1, 50) g`);
      await db.pool.query(`UPDATE lp_src SET body = 'changed' WHERE id <= 10`);
      await waitFor('60 runs from WAL', async () => (await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE pipeline = 'lp-repl'`)).rows[0].n === 60, 20_000, 50);
      const owner = await db.pool.query(`SELECT active_pid IS NOT NULL AS active, (SELECT usename FROM pg_stat_activity WHERE pid = active_pid) AS usename FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
      expect(owner.rows[0]).toEqual({ active: true, usename: REPL });
    } finally {
      await wf.stop();
      await dropSlot(db.pool, slot);
      await db.pool.query(`DROP PUBLICATION IF EXISTS ${pub}`);
    }
  });

  it('an embedding pipeline runs as the worker role once the owner created its target: no DDL is tried, and the missing index is reported once with the statement to run', async () => {
    for (const g of PROCESS_GRANTS(WORKER)) await db.pool.query(g);
    const server = await startFakeEmbeddingsServer({ dimensions: 8 });
    await db.pool.query(`CREATE TABLE lp_wdocs (id int PRIMARY KEY, body text); INSERT INTO lp_wdocs SELECT g, 'worker document ' || g FROM generate_series(1, 5) g`);
    const pipeline = () => createEmbeddingPipeline({ name: 'lp-embed-worker', table: 'lp_wdocs', textColumn: 'body', target: 'lp_wdocs_embeddings',
      embedder: { provider: 'openai', baseURL: server.baseURL, model: 'fake', dimensions: 8 } });
    try {
      // The owner (here the superuser) registers once: the target table and its hash index exist.
      const owner = new Engine({ url: db.url, pipelines: [pipeline()] });
      await owner.register();
      await owner.stop();
      await db.pool.query(`GRANT SELECT ON lp_wdocs TO ${WORKER}; GRANT SELECT, INSERT, UPDATE, DELETE ON lp_wdocs_embeddings TO ${WORKER}`);
      let logs = '';
      const sink = new Writable({ write: (chunk: Buffer, _enc, cb) => { logs += chunk.toString(); cb(); } });
      const worker = new Engine({ url: urlAs(WORKER), pipelines: [pipeline()], log: createLogger({ level: 'info', destination: sink }), pollIntervalMs: 50 });
      try {
        await worker.register(); // before: "permission denied for schema public" from CREATE TABLE IF NOT EXISTS
        await worker.runWorkers();
        await worker.startMany('lp-embed-worker', [1, 2, 3, 4, 5].map((id) => ({ input: { op: 'backfill', table: 'public.lp_wdocs', key: { id }, row: { id }, old: null, lsn: null, index: null, backfill: 1 }, key: String(id) })));
        await waitFor('5 documents embedded by the worker role', async () => (await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE pipeline = 'lp-embed-worker' AND status = 'completed'`)).rows[0].n === 5, 20_000, 50);
        expect((await db.pool.query(`SELECT count(DISTINCT source_key)::int AS n FROM lp_wdocs_embeddings`)).rows[0].n).toBe(5);
      } finally {
        await worker.stop();
      }
      // Its maintenance (every 15 s) finds rows and no HNSW index, and cannot build one: one
      // warning with the statement to run, however often it looks, and no error.
      const target = { table: { schema: 'public', name: 'lp_wdocs_embeddings' }, dimensions: 8 };
      const maintenanceLog = createLogger({ level: 'info', destination: sink });
      expect(await maybeBuildIndex(urlAs(WORKER), target, maintenanceLog, { pipeline: 'lp-embed-worker', minRows: 1 })).toBe(false);
      expect(await maybeBuildIndex(urlAs(WORKER), target, maintenanceLog, { pipeline: 'lp-embed-worker', minRows: 1 })).toBe(false);
      const lines = logs.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string });
      expect(lines.filter((l) => l.msg.startsWith('cannot build the HNSW index'))).toHaveLength(1);
      expect(lines.find((l) => l.msg.startsWith('cannot build the HNSW index'))!.msg).toContain('CREATE INDEX CONCURRENTLY "lp_wdocs_embeddings_embedding_hnsw" ON "public"."lp_wdocs_embeddings"');
      expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    } finally {
      await server.stop();
    }
  });

  it('API keys never reach logs, run inputs, checkpoints or error messages, even when the server echoes a rejected key back', async () => {
    const good = `sk-good-${randomBytes(12).toString('hex')}`;
    const bad = `sk-bad-${randomBytes(12).toString('hex')}`;
    const server = await startFakeEmbeddingsServer({ dimensions: 8, apiKey: good });
    let logs = '';
    const sink = new Writable({ write: (chunk: Buffer, _enc, cb) => { logs += chunk.toString(); cb(); } });
    const log = createLogger({ level: 'debug', destination: sink });
    await db.pool.query(`CREATE TABLE lp_docs (id int PRIMARY KEY, body text); INSERT INTO lp_docs SELECT g, 'document number ' || g FROM generate_series(1, 6) g`);
    const run = async (name: string, keyVar: string, want: 'completed' | 'failed') => {
      const p = createEmbeddingPipeline({ name, table: 'lp_docs', textColumn: 'body', target: `${name.replace(/-/g, '_')}_embeddings`,
        embedder: { provider: 'openai', baseURL: server.baseURL, model: 'fake', dimensions: 8, apiKeyEnv: keyVar } });
      const engine = new Engine({ url: db.url, pipelines: [p], log, pollIntervalMs: 50 });
      await engine.register();
      await engine.runWorkers();
      try {
        await engine.startMany(name, [1, 2, 3, 4, 5, 6].map((id) => ({ input: { op: 'backfill', table: 'public.lp_docs', key: { id }, row: { id }, old: null, lsn: null, index: null, backfill: 1 }, key: String(id) })));
        await waitFor(`${name} ${want}`, async () => (await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE pipeline = $1 AND status = $2`, [name, want])).rows[0].n === 6, 20_000, 50);
      } finally {
        await engine.stop();
      }
    };
    process.env.LP_GOOD_KEY = good;
    process.env.LP_BAD_KEY = bad;
    try {
      await run('lp-key-good', 'LP_GOOD_KEY', 'completed');
      await run('lp-key-bad', 'LP_BAD_KEY', 'failed');
    } finally {
      delete process.env.LP_GOOD_KEY;
      delete process.env.LP_BAD_KEY;
      await server.stop();
    }
    // The server did receive the keys, and echoed the bad one in its 401 body.
    expect(server.requests.some((r) => r.headers.authorization === `Bearer ${bad}` && r.status === 401)).toBe(true);
    const { rows } = await db.pool.query(`SELECT error->>'message' AS m FROM walflow.runs WHERE pipeline = 'lp-key-bad' LIMIT 1`);
    expect(rows[0].m).toMatch(/failed with 401 .*Incorrect API key provided: \*\*\*.*check the API key/);
    const everything = await db.pool.query(`SELECT string_agg(t, ' ') AS all FROM (
        SELECT input::text || coalesce(error::text, '') AS t FROM walflow.runs
        UNION ALL SELECT coalesce(output::text, '') FROM walflow.steps
        UNION ALL SELECT error::text FROM walflow.step_errors
        UNION ALL SELECT coalesce(source::text, '') FROM walflow.pipelines) x`);
    for (const secret of [good, bad]) {
      expect(everything.rows[0].all.includes(secret), 'database').toBe(false);
      expect(logs.includes(secret), 'logs').toBe(false);
    }
    expect(logs).toMatch(/run failed/);
  });
});

// Authorization of the SQL API (docs/guarantees.md, "Authorization"): every function and view of
// schema walflow, called by two application roles (USAGE on the schema only) and by the replication
// role (walflow's own principal). Each works as documented or is denied, and no application role
// changes or learns another principal's runs, including a WAL-started run of a real `walflow run`.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { definePipeline } from '../../../src/pipeline/define.js';
import { useTestDatabase, withAdmin } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';
import { FIXTURE_PIPELINES, startWalflowRun } from '../ops/support/cli.js';
import { asRole } from './support/roles.js';

const db = useTestDatabase();
const sfx = randomBytes(3).toString('hex');
const A = `az_a_${sfx}`;
const B = `az_b_${sfx}`;
const REPL = `az_repl_${sfx}`;
const STARTERS = `az_starters_${sfx}`;
const PASSWORD = 'az-password';

const as = <T>(role: string, fn: (c: pg.Client) => Promise<T>): Promise<T> => asRole(db.url, role, PASSWORD, fn);

/** The first row's first value of a statement as `role`, or `ERR <sqlstate>: <message>`. */
async function q(role: string, sql: string, params: unknown[] = []): Promise<unknown> {
  return as(role, (c) => c.query(sql, params).then(
    (r) => (r.rows[0] ? Object.values(r.rows[0] as Record<string, unknown>)[0] : null),
    (e: { code?: string; message: string }) => `ERR ${e.code}: ${e.message}`,
  ));
}

const run = async (id: string) => (await db.pool.query(`SELECT status, input, started_by FROM walflow.runs WHERE id = $1`, [id])).rows[0];
const UNKNOWN = '00000000-0000-7000-8000-000000000000';

beforeAll(async () => {
  await withAdmin(async (a) => {
    for (const r of [A, B]) await a.query(`CREATE ROLE ${r} LOGIN PASSWORD '${PASSWORD}'`);
    await a.query(`CREATE ROLE ${REPL} LOGIN REPLICATION PASSWORD '${PASSWORD}'`);
    await a.query(`CREATE ROLE ${STARTERS} NOLOGIN`);
    await a.query(`GRANT ${STARTERS} TO ${A}`);
  });
  await db.pool.query(`GRANT USAGE ON SCHEMA walflow TO ${A}, ${B}, ${REPL}`);
  await db.pool.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA walflow TO ${REPL}`);
  await db.pool.query(`INSERT INTO walflow.pipelines (name, version, steps) VALUES ('az-p', 'v1', '{a}')`);
});

afterAll(async () => {
  await db.pool.query(`DROP OWNED BY ${A}, ${B}, ${REPL}`).catch(() => undefined);
  await withAdmin(async (a) => {
    for (const r of [A, B, REPL, STARTERS]) {
      await a.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [r]);
      await a.query(`DROP ROLE IF EXISTS ${r}`).catch(() => undefined);
    }
  });
});

describe('authorization of the SQL API', () => {
  it('every function and view, as two application roles and the replication role: works as documented or is denied; no role changes or learns another\'s runs', async () => {
    // walflow's principal (the replication role) has a queued run of key k, dedupe id d.
    const walRun = await q(REPL, `SELECT walflow.start('az-p', '{"v": "real"}', 'k', 'd')`) as string;
    expect(await run(walRun)).toEqual({ status: 'queued', input: { v: 'real' }, started_by: null });

    // (a) A's start of the same key supersedes nothing of walflow's and forges nothing.
    const a1 = await q(A, `SELECT walflow.start('az-p', '{"v": "forged"}', 'k')`) as string;
    expect(await run(walRun)).toEqual({ status: 'queued', input: { v: 'real' }, started_by: null });
    expect(await run(a1)).toEqual({ status: 'queued', input: { v: 'forged' }, started_by: A });
    // (b) A's start with walflow's dedupe id is a run of A's own, not walflow's id.
    const a2 = await q(A, `SELECT walflow.start('az-p', '{}', 'k2', 'd')`) as string;
    expect(a2).not.toBe(walRun);
    expect(await q(A, `SELECT walflow.start('az-p', '{}', 'k2', 'd')`)).toBe(a2); // still idempotent for A
    // Latest wins among A's own runs: A's next start of k supersedes a1, and no one else's.
    const a3 = await q(A, `SELECT walflow.start('az-p', '{"v": 3}', 'k')`) as string;
    expect((await run(a1)).status).toBe('superseded');
    expect((await run(walRun)).status).toBe('queued');
    // B: A's dedupe id gives B its own run; B's start of k supersedes nothing of A's or walflow's.
    const b1 = await q(B, `SELECT walflow.start('az-p', '{}', 'k2', 'd')`) as string;
    expect(b1).not.toBe(a2);
    await q(B, `SELECT walflow.start('az-p', '{}', 'k')`);
    expect([(await run(a3)).status, (await run(walRun)).status]).toEqual(['queued', 'queued']);

    // status / result / cancel: one's own runs only; another's is reported as no run at all.
    for (const id of [walRun, b1, UNKNOWN]) {
      for (const f of ['status', 'result', 'cancel']) {
        expect(await q(A, `SELECT walflow.${f}($1)`, [id])).toBe(`ERR WF003: walflow: no run ${id}`);
      }
    }
    expect(await q(A, `SELECT walflow.status($1)`, [a3])).toBe('queued');
    // Signals: to one's own runs, and to walflow's runs of a pipeline one may start; never to another role's.
    expect(await q(A, `SELECT walflow.signal($1, 'go', '{"by": "a"}') > 0`, [a3])).toBe(true);
    expect(await q(A, `SELECT walflow.signal($1, 'go') > 0`, [walRun])).toBe(true);
    expect(await q(A, `SELECT walflow.signal_key('az-p', 'k', 'go') > 0`)).toBe(true);
    expect(await q(A, `SELECT walflow.signal($1, 'go')`, [b1])).toBe(`ERR WF003: walflow: no run ${b1}`);
    expect(await q(A, `SELECT walflow.signal($1, 'go')`, [UNKNOWN])).toBe(`ERR WF003: walflow: no run ${UNKNOWN}`);
    expect(await q(A, `SELECT walflow.cancel_tree($1)`, [walRun])).toBe('ERR 42501: permission denied for function cancel_tree');
    expect(await q(A, `SELECT walflow.child_finished()`)).toMatch(/^ERR 0A000: trigger functions can only be called as triggers/);
    expect(await q(A, `SELECT walflow.result($1)`, [a3])).toBe(null);
    expect(await q(A, `SELECT walflow.cancel($1)`, [a3])).toBe(true);
    expect(await q(A, `SELECT walflow.cancel($1)`, [a3])).toBe(false);
    expect(await q(A, `SELECT walflow.status($1)`, [a3])).toBe('cancelled');
    expect((await run(walRun)).status).toBe('queued');
    expect((await run(b1)).status).toBe('queued');
    // walflow's principal sees and steers every run; an unknown run is WF003 for it too.
    expect(await q(REPL, `SELECT walflow.status($1)`, [b1])).toBe('queued');
    expect(await q(REPL, `SELECT walflow.result($1)`, [b1])).toBe(null);
    expect(await q(REPL, `SELECT walflow.status($1)`, [UNKNOWN])).toBe(`ERR WF003: walflow: no run ${UNKNOWN}`);
    expect(await q(REPL, `SELECT walflow.result($1)`, [UNKNOWN])).toBe(`ERR WF003: walflow: no run ${UNKNOWN}`);
    expect(await q(REPL, `SELECT walflow.cancel($1)`, [b1])).toBe(true);
    expect(await q(REPL, `SELECT walflow.retry($1)`, [b1])).toBe(true);

    // Bad input from anyone: a non-object input, a forged WAL position.
    expect(await q(A, `SELECT walflow.start('az-p', '[1, 2]')`)).toBe('ERR WF002: walflow: input must be a JSON object, not array (wrap it: {"value": ...}; use \'{}\' for no input)');
    expect(await q(REPL, `SELECT walflow.start('az-p', '42')`)).toMatch(/^ERR WF002: walflow: input must be a JSON object, not number/);
    expect(await q(A, `SELECT count(*) FROM walflow.start_batch('az-p', '[{"input": "x"}]')`)).toBe('ERR WF002: walflow: every item needs an "input" that is a JSON object');
    expect(await q(A, `SELECT count(*) FROM walflow.start_batch('az-p', '[{"input": {}, "source_lsn": "0/1", "source_index": 0}]')`))
      .toBe(`ERR WF002: walflow: source_lsn and source_index are recorded by walflow itself, not by role "${A}"`);
    expect(await q(A, `SELECT count(*)::int FROM walflow.start_batch('az-p', '[{"input": {}, "key": "k"}]')`)).toBe(1);

    // Who walflow takes the caller for.
    expect(await q(A, `SELECT walflow.caller_role()`)).toBe(A);
    expect(await q(A, `SELECT walflow.caller_starter()`)).toBe(A);
    expect(await q(REPL, `SELECT walflow.caller_starter()`)).toBe(null);

    // Operator functions and views: denied to an application role (no table privileges), working for walflow's roles.
    const operator = [
      `SELECT walflow.retry('${walRun}')`, `SELECT walflow.retry_failed('az-p')`, `SELECT count(*) FROM walflow.list_runs()`,
      `SELECT walflow.supersede('az-p', ARRAY['no-such-key'], NULL)`, `SELECT walflow.contested_keys('az-p', ARRAY['no-such-key'], NULL)`,
      // Schedules start runs as walflow itself: only walflow's roles may create or drop them.
      `SELECT walflow.create_schedule('az-s', 'az-p', '0 3 * * *')`, `SELECT walflow.drop_schedule('az-s')`,
      ...['status', 'run_timeline', 'replication_status', 'replication_lag', 'worker_health', 'schedule_status'].map((v) => `SELECT count(*) FROM walflow.${v}`),
    ];
    for (const sql of operator) {
      expect(await q(A, sql), sql).toMatch(/^ERR 42501: permission denied for (table|view) /);
      expect(String(await q(REPL, sql)), sql).not.toMatch(/^ERR/);
    }
    expect(await q(A, `SELECT walflow.retry($1)`, [a3])).toBe('ERR 42501: permission denied for table runs');
    expect((await run(a3)).status).toBe('cancelled');
    // No table of walflow's can be read or written by an application role.
    const tables = (await db.pool.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'walflow' ORDER BY 1`)).rows.map((r) => r.tablename as string);
    for (const t of tables) {
      expect(await q(B, `SELECT count(*) FROM walflow.${t}`)).toBe(`ERR 42501: permission denied for table ${t}`);
      expect(await q(B, `DELETE FROM walflow.${t}`)).toBe(`ERR 42501: permission denied for table ${t}`);
    }
    // Pipelines defined from SQL: the step builders are pure JSON (anyone); defining, changing,
    // dropping and reading definitions is the operator's grant; the checks run as the caller, so
    // they grant nothing (an application role can neither create step functions nor vouch for a table).
    expect(await q(A, `SELECT walflow.sql_step('a', 'SELECT 1')`)).toEqual({ kind: 'sql', name: 'a', statement: 'SELECT 1' });
    expect(await q(A, `SELECT walflow.http_step('h', 'post', 'https://x.example/')`)).toEqual({ kind: 'http', name: 'h', method: 'POST', url: 'https://x.example/', headers: {} });
    expect(await q(A, `SELECT walflow.sleep_step('s', '10m')`)).toEqual({ name: 's', sleep: '10m' });
    expect(await q(A, `SELECT walflow.embed_step('e', ':input.row.body')`)).toEqual({ kind: 'embed', name: 'e', text: ':input.row.body', embedder: 'local' });
    expect(await q(A, `SELECT walflow.signal_step('w', 'shipped', '24h')`)).toEqual({ name: 'w', waitFor: { signal: 'shipped', timeout: '24h' } });
    expect(await q(A, `SELECT walflow.sql_step_function('p', 's', 2)`)).toBe('walflow_steps."p/s/v2"');
    expect(await q(A, `SELECT walflow.compile_sql_step('SELECT :input.id')`)).toMatch(/\(\$1 #>> ARRAY\['input', 'id'\]::text\[\]\)/);
    for (const [f, call] of [
      ['create_pipeline', `walflow.create_pipeline('p', ARRAY[walflow.sql_step('a', 'SELECT 1')])`],
      ['alter_pipeline', `walflow.alter_pipeline('p')`], ['drop_pipeline', `walflow.drop_pipeline('p')`],
      ['create_embedding_pipeline', `walflow.create_embedding_pipeline('p', 't', 'c', 'o')`],
      ['save_pipeline', `walflow.save_pipeline('p', 'create', 'steps', '{}')`], ['pipeline_definition', `walflow.pipeline_definition('p')`],
    ]) expect(await q(A, `SELECT ${call}`)).toBe(`ERR 42501: permission denied for function ${f}`);
    expect(await q(A, `SELECT walflow.define_sql_steps('p', 1, '[{"kind": "sql", "name": "a", "statement": "SELECT 1"}]')`))
      .toBe(`ERR 42501: walflow: role "${A}" may not create SQL steps: the operator grants USAGE, CREATE ON SCHEMA walflow_steps (README, "From SQL")`);
    await db.pool.query('CREATE TABLE az_private (id int PRIMARY KEY, body text)');
    expect(await q(A, `SELECT walflow.define_row_filter('p', 1, 'az_private', 'true')`))
      .toBe(`ERR 42501: walflow: role "${A}" may not create row filters: the operator grants USAGE, CREATE ON SCHEMA walflow_steps (README, "From SQL")`);
    expect(await q(A, `SELECT walflow.check_source_table('p', 'walflow.runs')`)).toBe('ERR 22023: walflow: pipeline "p": walflow.runs is walflow\'s own table and cannot be a source');
    expect(await q(A, `SELECT walflow.check_pipeline_source('p', '{"table": "az_private"}')`))
      .toBe(`ERR 42501: walflow: pipeline "p": role "${A}" may not SELECT from public.az_private, so it may not define a pipeline on it`);
    expect(await q(A, `SELECT walflow.check_embedding_definition('p', '{"source_table": "az_private", "text_column": "body", "target_table": "o"}')`))
      .toBe(`ERR 42501: walflow: pipeline "p": role "${A}" may not SELECT from public.az_private, so it may not define a pipeline on it`);
    expect(await q(A, `SELECT count(*) FROM walflow.pipeline_status`)).toBe('ERR 42501: permission denied for view pipeline_status');
    expect(String(await q(REPL, `SELECT count(*) FROM walflow.pipeline_status`))).not.toMatch(/^ERR/);

    // This test covers every function of the schema: one added without a look at who may call it fails here.
    const fns = (await db.pool.query(`SELECT DISTINCT proname FROM pg_proc WHERE pronamespace = 'walflow'::regnamespace ORDER BY 1`)).rows.map((r) => r.proname as string);
    expect(fns).toEqual([
      'alter_pipeline', 'caller_role', 'caller_starter', 'cancel', 'cancel_tree', 'check_embedding_definition', 'check_pipeline_source',
      'check_source_table', 'child_finished', 'compile_sql_step', 'contested_keys', 'create_embedding_pipeline', 'create_pipeline',
      'create_schedule', 'define_row_filter', 'define_sql_steps', 'drop_pipeline', 'drop_schedule', 'embed_step', 'http_step', 'list_runs',
      'pipeline_definition', 'result', 'retry', 'retry_failed', 'save_pipeline', 'signal', 'signal_key', 'signal_step', 'sleep_step',
      'sql_step', 'sql_step_function', 'start', 'start_batch', 'status', 'supersede', 'uuid_v7',
    ]);
  });

  it('a pooled session that SET ROLEs acts as that role; a pipeline\'s startRoles limits who may start it', async () => {
    // A superuser session (a pooler's login) SET ROLE to B: B's principal, not walflow's.
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query(`SET ROLE ${B}`);
      const id = (await c.query(`SELECT walflow.start('az-p', '{}', 'pool') AS id`)).rows[0].id as string;
      expect((await c.query(`SELECT walflow.caller_starter() AS s`)).rows[0].s).toBe(B);
      await c.query('RESET ROLE');
      expect((await run(id)).started_by).toBe(B);
      expect(await q(A, `SELECT walflow.status($1)`, [id])).toBe(`ERR WF003: walflow: no run ${id}`);
    } finally {
      await c.end();
    }

    const noop = [{ name: 'a', run: () => null }];
    const engine = new Engine({ url: db.url, pipelines: [
      definePipeline({ name: 'az-members', startRoles: [STARTERS], steps: noop }),
      definePipeline({ name: 'az-walflow-only', startRoles: [], steps: noop }),
    ] });
    await engine.register();
    await engine.stop();
    expect(typeof await q(A, `SELECT walflow.start('az-members', '{}')`)).toBe('string'); // A is a member of STARTERS
    expect(await q(B, `SELECT walflow.start('az-members', '{}')`)).toBe(`ERR 42501: walflow: role "${B}" may not start runs of pipeline "az-members"`);
    expect(await q(A, `SELECT walflow.start('az-walflow-only', '{}')`)).toBe(`ERR 42501: walflow: role "${A}" may not start runs of pipeline "az-walflow-only"`);
    expect(typeof await q(REPL, `SELECT walflow.start('az-walflow-only', '{}')`)).toBe('string');
    expect(() => definePipeline({ name: 'az-bad', startRoles: [''], steps: noop })).toThrow(/startRoles must be a list of role names/);
  });

  it('against a real walflow run: an application role can neither supersede nor forge a WAL-started run, and WAL still supersedes its own', async () => {
    const slot = `az_slot_${sfx}`;
    await db.pool.query('CREATE TABLE ops_items (id int PRIMARY KEY, n int NOT NULL)');
    // Replication only: WAL-started runs stay queued, as under a backlog.
    const wf = await startWalflowRun(['--only', 'ops-items', '--workers', '0'], {
      DATABASE_URL: db.url, WALFLOW_PIPELINES_DIR: FIXTURE_PIPELINES, WALFLOW_SLOT_NAME: slot, WALFLOW_PUBLICATION_NAME: slot,
      WALFLOW_POLL_INTERVAL_MS: '100',
    });
    try {
      await db.pool.query('INSERT INTO ops_items VALUES (1, 10)');
      await waitFor('the WAL-started run', async () => (await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE pipeline = 'ops-items'`)).rows[0].n === 1, 20_000, 50);
      const wal = (await db.pool.query(`SELECT id, dedupe_id, input FROM walflow.runs WHERE pipeline = 'ops-items'`)).rows[0];
      // The attack: the same key with forged data, and the WAL run's own dedupe id.
      const forged = await q(A, `SELECT walflow.start('ops-items', '{"op": "insert", "row": {"id": 1, "n": 999}}', '1')`) as string;
      const guessed = await q(A, `SELECT walflow.start('ops-items', '{}', '1', $1)`, [wal.dedupe_id]) as string;
      expect([forged, guessed]).not.toContain(wal.id);
      expect(await q(B, `SELECT walflow.status($1)`, [wal.id])).toBe(`ERR WF003: walflow: no run ${wal.id}`);
      expect(await q(B, `SELECT walflow.cancel($1)`, [wal.id])).toBe(`ERR WF003: walflow: no run ${wal.id}`);
      expect(await run(wal.id)).toEqual({ status: 'queued', input: wal.input, started_by: null });
      // A newer change of the row: WAL's latest-wins applies to WAL's run only.
      await db.pool.query('UPDATE ops_items SET n = 11 WHERE id = 1');
      await waitFor('the update superseded the WAL run', async () => (await run(wal.id)).status === 'superseded', 20_000, 50);
      expect((await run(forged)).status).toBe('superseded'); // by A's own later start (guessed), not by WAL
      expect((await run(guessed)).status).toBe('queued');
      const latest = (await db.pool.query(`SELECT input->'row' AS row, status FROM walflow.runs WHERE pipeline = 'ops-items' AND started_by IS NULL AND id <> $1`, [wal.id])).rows;
      expect(latest).toEqual([{ row: { id: 1, n: 11 }, status: 'queued' }]);
    } finally {
      await wf.stop();
      await db.pool.query('SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    }
  }, 120_000);
});

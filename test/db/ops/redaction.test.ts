// Secrets never leave walflow: a database password (in DATABASE_URL) and an API key (in the
// environment variable an OpenAI-compatible pipeline names) are planted, walflow is driven through
// failures that echo them (a server that repeats the key it was sent; a careless pipeline that logs
// and throws the database URL), and everything walflow wrote is searched for them: stdout and
// stderr of every command, `walflow run`'s debug-level logs, and the database (run inputs and
// errors, step errors, checkpoints, replication state and errors, registered pipelines, workers).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase, withAdmin } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';
import { startFakeEmbeddingsServer, type FakeEmbeddingsServer } from '../../fixtures/fake-embeddings-server.js';
import { failure, SECRET_PIPELINES, startWalflowRun, walflow, type CliResult, type RunningWalflow } from './support/cli.js';

const db = useTestDatabase();
const role = `wf_ops_secret_${randomBytes(4).toString('hex')}`;
const PASSWORD = `Pw${randomBytes(12).toString('hex')}`;
const API_KEY = `sk-test-${randomBytes(16).toString('hex')}`;
const slot = `wf_ops_sec_${randomBytes(4).toString('hex')}`;

let server: FakeEmbeddingsServer;
let secretUrl: string;
let env: Record<string, string>;
let wf: RunningWalflow | undefined;
/** Everything walflow printed, command by command. */
const written: { what: string; text: string }[] = [];

function record(what: string, r: CliResult): CliResult {
  written.push({ what: `${what} (stdout)`, text: r.stdout }, { what: `${what} (stderr)`, text: r.stderr });
  return r;
}

async function run(args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> {
  return record(`walflow ${args.join(' ')}`, await walflow(args, { ...env, ...extraEnv }));
}

function leaks(text: string): string[] {
  return [PASSWORD, API_KEY, encodeURIComponent(PASSWORD)].filter((s) => text.includes(s));
}

beforeAll(async () => {
  // A role with a password (servers that trust local connections ignore it, but it is in the URL).
  await withAdmin((c) => c.query(`CREATE ROLE ${role} LOGIN SUPERUSER PASSWORD '${PASSWORD}'`));
  const u = new URL(db.url);
  u.username = role;
  u.password = PASSWORD;
  secretUrl = u.toString();
  // The server wants another key, and its 401 repeats the key it was sent.
  server = await startFakeEmbeddingsServer({ apiKey: 'the-right-key', dimensions: 8 });
  env = {
    DATABASE_URL: secretUrl, WALFLOW_PIPELINES_DIR: SECRET_PIPELINES, WALFLOW_SLOT_NAME: slot, WALFLOW_PUBLICATION_NAME: slot,
    WALFLOW_LOG_LEVEL: 'debug', WALFLOW_POLL_INTERVAL_MS: '100', OPS_SECRET_API_KEY: API_KEY, OPS_EMBEDDINGS_URL: server.baseURL,
  };
  await db.pool.query('CREATE TABLE ops_secret_docs (id int PRIMARY KEY, body text)');
  await db.pool.query(`INSERT INTO ops_secret_docs VALUES (1, 'the first document'), (2, 'the second document')`);
}, 60_000);

afterAll(async () => {
  if (wf && wf.child.exitCode === null && wf.child.signalCode === null) await wf.stop('SIGKILL');
  await db.pool.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  await server?.stop();
  await withAdmin(async (c) => {
    const u = new URL(db.adminUrl);
    u.pathname = `/${db.name}`;
    const inDb = new pg.Client({ connectionString: u.toString() });
    await inDb.connect();
    try {
      await inDb.query(`REASSIGN OWNED BY ${role} TO CURRENT_USER`);
      await inDb.query(`DROP OWNED BY ${role}`);
    } finally {
      await inDb.end();
    }
    await c.query(`DROP ROLE IF EXISTS ${role}`);
  });
});

describe('redaction', () => {
  it('walflow run, failing runs, and every command: no secret in anything walflow wrote', async () => {
    expect(record('migrate', await walflow(['migrate', '--json'], env)).code).toBe(0);
    wf = await startWalflowRun([], env);

    // A change through WAL, then a backfill of all three rows: the embed step gets the server's
    // 401, which repeats the API key. The careless pipeline logs and throws the database URL.
    await db.pool.query(`INSERT INTO ops_secret_docs VALUES (3, 'a document that arrives through the WAL')`);
    const backfill = await run(['backfill', 'ops-remote-embed', '--json']);
    expect(backfill.code).toBe(0);
    const careless = (await db.pool.query(`SELECT walflow.start('ops-careless', '{"id": 1}') AS id`)).rows[0].id as string;
    await waitFor('every run to fail', async () => {
      const { rows } = await db.pool.query(`SELECT count(*) FILTER (WHERE status = 'failed')::int AS failed, count(*)::int AS n FROM walflow.runs`);
      return rows[0].n === 5 && rows[0].failed === 5;
    }, 30_000).catch(async (err: Error) => {
      const { rows } = await db.pool.query(`SELECT pipeline, key, status, attempt, step_index, error->>'message' AS error FROM walflow.runs ORDER BY seq`);
      throw new Error(`${err.message}\nruns: ${JSON.stringify(rows, null, 1)}\nlogs: ${wf!.stderr().slice(-4000)}`);
    });
    expect(server.requests.some((r) => r.headers.authorization === `Bearer ${API_KEY}`)).toBe(true);

    const remote = (await db.pool.query(`SELECT id FROM walflow.runs WHERE pipeline = 'ops-remote-embed' ORDER BY id LIMIT 1`)).rows[0].id as string;
    for (const args of [['status'], ['status', '--json'], ['runs'], ['runs', '--json'], ['inspect', remote], ['inspect', remote, '--json'], ['inspect', careless], ['pipelines', '--json']]) {
      expect((await run(args)).code).toBe(0);
    }
    // search embeds the query: the same 401, reported in one line.
    const search = failure(await run(['search', 'ops-remote-embed', 'anything']));
    expect(search).toMatchObject({ code: 2, lines: 1, stack: false });
    expect(search.line).toMatch(/^walflow: search failed: embedding request failed with 401 .*Incorrect API key provided: \*\*\*/);

    // Error paths that hold the URL: a refused connection, a bad setting next to it, a wrong scheme.
    const refused = new URL(secretUrl);
    refused.port = '1';
    const errors = [
      await run(['status'], { DATABASE_URL: refused.toString() }),
      await run(['migrate'], { WALFLOW_WORKERS: 'x' }),
      await run(['status'], { DATABASE_URL: secretUrl.replace(/^postgres/, 'mysql') }),
      await run(['status'], { DATABASE_URL: `host=127.0.0.1 password=${PASSWORD}` }),
    ];
    for (const e of errors) expect(failure(e)).toMatchObject({ code: 2, lines: 1, stack: false });

    const exit = await wf.stop('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    await waitFor('the slot to be released', async () => {
      await db.pool.query('SELECT pg_drop_replication_slot($1)', [slot]);
      return true;
    });
    written.push({ what: 'walflow run (stdout)', text: wf.stdout() }, { what: 'walflow run (stderr, debug logs)', text: wf.stderr() });

    // The logs did get the careless pipeline's debug lines and the failures (redacted).
    const logs = wf.logs();
    expect(logs.find((l) => l.msg === `setting up with ${secretUrl.replace(PASSWORD, '***')}`)).toMatchObject({ level: 20, url: expect.stringContaining(':***@'), nested: { connection: expect.stringContaining(':***@') } });
    expect(logs.some((l) => l.msg === 'connecting to the reporting database' && l.target === secretUrl.replace(PASSWORD, '***'))).toBe(true);
    expect(logs.some((l) => l.msg === 'run failed' && /Incorrect API key provided: \*\*\*/.test(String(l.err)))).toBe(true);

    // Everything walflow keeps in the database.
    const tables: Record<string, string> = {
      'walflow.runs': `SELECT id, pipeline, key, status, input, error FROM walflow.runs`,
      'walflow.step_errors': `SELECT * FROM walflow.step_errors`,
      'walflow.steps': `SELECT * FROM walflow.steps`,
      'walflow.replication_state': `SELECT * FROM walflow.replication_state`,
      'walflow.replication_errors': `SELECT * FROM walflow.replication_errors`,
      'walflow.pipelines': `SELECT * FROM walflow.pipelines`,
      'walflow.workers': `SELECT * FROM walflow.workers`,
      'walflow.backfills': `SELECT * FROM walflow.backfills`,
    };
    for (const [what, sql] of Object.entries(tables)) written.push({ what, text: JSON.stringify((await db.pool.query(sql)).rows) });
    const errorsText = written.find((w) => w.what === 'walflow.runs')!.text + written.find((w) => w.what === 'walflow.step_errors')!.text;
    expect(errorsText).toContain('Incorrect API key provided: ***');
    expect(errorsText).toContain(`could not reach the reporting database at ${secretUrl.replace(PASSWORD, '***')}`);

    const found = written.filter((w) => leaks(w.text).length > 0).map((w) => `${w.what}: ${leaks(w.text).join(', ')}`);
    expect(found).toEqual([]);
  });
});

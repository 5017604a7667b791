// Every one-shot walflow command, run as the real CLI against this file's database: the shape of
// its --json output, its human output, and its error paths (exit 2: user error, 3: not found or
// nothing to do; one line on stderr, no stack, nothing on stdout).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { useTestDatabase, withAdmin, databaseUrl } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';
import embed from '../../fixtures/ops/pipelines/embed.js';
import { inserts, items, jobs } from '../../fixtures/ops/pipelines/items.js';
import { failure, FIXTURE_PIPELINES, walflow, walflowJson } from './support/cli.js';

const db = useTestDatabase();
let env: Record<string, string>;
const ids: { ok: string[]; failed: string; queued: string } = { ok: [], failed: '', queued: '' };

const DOCS: [number, string][] = [
  [1, 'Knead the dough, let it rise for two hours, then bake the bread in a hot oven until the crust is golden.'],
  [2, 'Remove the wheel, lever the old tire off the rim, fit a new inner tube and pump the bicycle tire up.'],
  [3, 'Water the tomato plants deeply at the base, stake the stems and feed the soil with compost.'],
];

/** Runs the engine in this process until no run of `pipelines` is left unfinished. */
async function drain(...names: string[]): Promise<void> {
  const engine = new Engine({ url: db.url, pipelines: [jobs, embed], pollIntervalMs: 50 });
  await engine.runWorkers();
  try {
    await waitFor('runs to finish', async () => {
      const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE pipeline = ANY($1) AND status IN ('queued', 'running', 'waiting')`, [names]);
      return rows[0].n === 0;
    }, 60_000);
  } finally {
    await engine.stop();
  }
}

beforeAll(async () => {
  env = { DATABASE_URL: db.url, WALFLOW_PIPELINES_DIR: FIXTURE_PIPELINES };
  await db.pool.query('CREATE TABLE ops_items (id int PRIMARY KEY, n int NOT NULL)');
  await db.pool.query('CREATE TABLE ops_docs (id int PRIMARY KEY, body text)');
  for (const [id, body] of DOCS) await db.pool.query('INSERT INTO ops_docs VALUES ($1, $2)', [id, body]);
  // Register every fixture pipeline (as `walflow run` would), then give ops-jobs runs in each state.
  const engine = new Engine({ url: db.url, pipelines: [items, inserts, jobs, embed] });
  await engine.register();
  await engine.stop();
  // Run ids are time-ordered to the millisecond: space the starts so that "newest first" is exact.
  const tick = () => new Promise((r) => setTimeout(r, 3));
  for (let i = 1; i <= 3; i++) {
    ids.ok.push((await db.pool.query(`SELECT walflow.start('ops-jobs', $1, $2) AS id`, [{ id: i }, `job-${i}`])).rows[0].id);
    await tick();
  }
  ids.failed = (await db.pool.query(`SELECT walflow.start('ops-jobs', $1, 'job-4') AS id`, [{ id: 4, fail: true }])).rows[0].id;
  await drain('ops-jobs');
  await tick();
  ids.queued = (await db.pool.query(`SELECT walflow.start('ops-jobs', $1, 'job-5') AS id`, [{ id: 5 }])).rows[0].id;
}, 120_000);

describe('walflow pipelines', () => {
  it('--json lists each pipeline with its origin (file or sql), source, events, steps and version', async () => {
    const { json } = await walflowJson<{ pipelines: Record<string, unknown>[] }>(['pipelines'], env);
    expect(json.pipelines).toEqual([
      { name: 'ops-embed', origin: 'file', version: embed.version, source: 'ops_docs', events: ['insert', 'update', 'delete', 'truncate'], steps: ['sync', 'embed', 'upsert'], embedding: true, error: null },
      { name: 'ops-inserts', origin: 'file', version: 'v1', source: 'ops_items', events: ['insert'], steps: ['noop'], embedding: false, error: null },
      { name: 'ops-items', origin: 'file', version: 'v1', source: 'ops_items', events: ['insert', 'update', 'delete', 'truncate'], steps: ['double', 'record'], embedding: false, error: null },
      { name: 'ops-jobs', origin: 'file', version: 'v1', source: null, events: null, steps: ['prepare', 'work'], embedding: false, error: null },
    ]);
  });

  it('prints a table, and names a missing directory with exit 2', async () => {
    const human = await walflow(['pipelines', '--pipelines', FIXTURE_PIPELINES], {});
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^NAME\s+ORIGIN\s+VERSION\s+SOURCE\s+EVENTS\s+STEPS/);
    expect(human.stdout).toMatch(/ops-jobs\s+file\s+v1\s+\(started from SQL or code\)\s+prepare → work/);
    const missing = failure(await walflow(['pipelines', '--pipelines', '/nonexistent/pipelines'], {}));
    expect(missing).toMatchObject({ code: 2, lines: 1, stack: false, stdout: '' });
    expect(missing.line).toMatch(/^walflow: pipelines directory \/nonexistent\/pipelines does not exist/);
  });
});

describe('walflow migrate', () => {
  it('--json reports nothing applied and the schema version; a second run is a no-op too', async () => {
    const { json } = await walflowJson(['migrate'], env);
    const { rows } = await db.pool.query('SELECT max(version) AS v FROM walflow.schema_migrations');
    expect(json).toEqual({ applied: [], defined: [], version: rows[0].v });
  });

  it('applies every migration to an empty database', async () => {
    const name = `wf_test_${randomBytes(5).toString('hex')}_empty`;
    await withAdmin((c) => c.query(`CREATE DATABASE ${name}`));
    try {
      const url = databaseUrl(db.adminUrl, name);
      // Before migrating, commands that need the schema say so in one line.
      const before = failure(await walflow(['status'], { DATABASE_URL: url }));
      expect(before).toMatchObject({ code: 2, lines: 1, stack: false });
      expect(before.line).toMatch(/no walflow schema.*run `walflow migrate`/);
      const { json } = await walflowJson<{ applied: string[]; version: number }>(['migrate'], { DATABASE_URL: url });
      expect(json.applied[0]).toBe('0001_engine');
      expect(json.applied).toHaveLength(json.version);
      const human = await walflow(['migrate'], { DATABASE_URL: url });
      expect(human.stdout.trim()).toBe(`schema up to date (version ${json.version})`);
    } finally {
      await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    }
  });

  it('cannot connect: one line naming the server, exit 2', async () => {
    const r = failure(await walflow(['migrate', '--json'], { DATABASE_URL: 'postgres://u:pw@127.0.0.1:1/nowhere' }));
    expect(r).toMatchObject({ code: 2, lines: 1, stack: false, stdout: '' });
    expect(r.line).toMatch(/cannot connect to 127\.0\.0\.1:1\/nowhere: connection refused/);
    // The embedded cluster's socket URL while it is stopped: no socket file.
    const s = failure(await walflow(['migrate'], { DATABASE_URL: `postgresql://postgres@${encodeURIComponent('/tmp/walflow-no-such-dir')}:5432/walflow` }));
    expect(s).toMatchObject({ code: 2, lines: 1, stack: false, stdout: '' });
    expect(s.line).toBe('walflow: cannot connect to /tmp/walflow-no-such-dir:5432/walflow: no server socket there: is PostgreSQL running? (`walflow db start` runs the embedded one)');
  });
});

describe('walflow status', () => {
  it('--json: {pipelines, replication, workers, pipeline_errors} with numbers as numbers', async () => {
    const { json } = await walflowJson<{ pipelines: Record<string, unknown>[]; replication: unknown[]; workers: unknown[] }>(['status'], env);
    expect(Object.keys(json)).toEqual(['pipelines', 'replication', 'workers', 'pipeline_errors', 'schedules']);
    expect(json.pipelines.map((p) => p.pipeline)).toEqual(['ops-embed', 'ops-inserts', 'ops-items', 'ops-jobs']);
    const row = json.pipelines.find((p) => p.pipeline === 'ops-jobs')!;
    expect(row).toMatchObject({ version: 'v1', queued: 1, running: 0, waiting: 0, failed: 1, completed_1h: 3, sleeping: 0, awaiting_signal: 0, awaiting_children: 0, repeating: 0, next_wake: null });
    expect(typeof row.completed_per_s_1m).toBe('number');
    expect(row.oldest_queued_s).toBeGreaterThanOrEqual(0);
    expect(json.pipelines.find((p) => p.pipeline === 'ops-items')).toMatchObject({ queued: 0, oldest_queued_s: null });
    // No walflow process runs against this database: no slot state, no workers.
    expect(json.replication).toEqual([]);
    expect(json.workers).toEqual([]);
  });

  it('prints three tables', async () => {
    const r = await walflow(['status'], env);
    expect(r.code).toBe(0);
    const [pipelines, replication, workers] = r.stdout.trim().split('\n\n');
    expect(pipelines).toMatch(/^PIPELINE\s+VERSION\s+QUEUED\s+RUNNING\s+WAITING\s+PARKED\s+FAILED\s+COMPLETED_1H\s+COMPLETED_PER_S_1M\s+OLDEST_QUEUED\n/);
    expect(pipelines).toMatch(/\nops-jobs\s+v1\s+1\s+0\s+0\s+0\s+1\s+3\s/); // queued, running, waiting, parked, failed, completed
    expect(replication).toBe('replication\n(none)');
    expect(workers).toBe('workers\n(none)');
  });
});

describe('walflow runs', () => {
  it('--json lists runs newest first, with filters and keyset paging', async () => {
    const all = (await walflowJson<{ runs: Record<string, unknown>[] }>(['runs', '--pipeline', 'ops-jobs'], env)).json.runs;
    expect(all.map((r) => r.id)).toEqual([ids.queued, ids.failed, ...[...ids.ok].reverse()]);
    expect(Object.keys(all[0]!).sort()).toEqual(['attempt', 'created_at', 'current_step', 'error_message', 'finished_at', 'id', 'key', 'pipeline', 'status', 'steps_done'].sort());
    expect(all[0]).toMatchObject({ status: 'queued', steps_done: 0, current_step: 'prepare', attempt: 0 });
    expect(all[1]).toMatchObject({ status: 'failed', key: 'job-4', steps_done: 1, current_step: 'work', attempt: 1, error_message: 'job 4 failed on purpose' });
    expect(all[2]).toMatchObject({ status: 'completed', steps_done: 2, current_step: null });

    const [failed, page1, page2, byKey] = await Promise.all([
      walflowJson<{ runs: { id: string }[] }>(['runs', '--status', 'failed'], env),
      walflowJson<{ runs: { id: string }[] }>(['runs', '--pipeline', 'ops-jobs', '--limit', '2'], env),
      walflowJson<{ runs: { id: string }[] }>(['runs', '--pipeline', 'ops-jobs', '--limit', '2', '--before', ids.failed], env),
      walflowJson<{ runs: { id: string }[] }>(['runs', '--key', 'job-2'], env),
    ]);
    expect(failed.json.runs.map((r) => r.id)).toEqual([ids.failed]);
    expect(page1.json.runs.map((r) => r.id)).toEqual([ids.queued, ids.failed]);
    expect(page2.json.runs.map((r) => r.id)).toEqual([ids.ok[2], ids.ok[1]]);
    expect(byKey.json.runs.map((r) => r.id)).toEqual([ids.ok[1]]);
    const none = await walflowJson<{ runs: unknown[] }>(['runs', '--pipeline', 'no-such-pipeline'], env);
    expect(none.json.runs).toEqual([]);
  });

  it('prints a table', async () => {
    const r = await walflow(['runs', '--status', 'failed'], env);
    expect(r.stdout).toMatch(/^ID\s+PIPELINE\s+KEY\s+STATUS\s+STEPS_DONE\s+CURRENT_STEP\s+ATTEMPT\s+CREATED_AT\s+ERROR_MESSAGE\n/);
    expect(r.stdout).toContain('job 4 failed on purpose');
  });

  it.concurrent.each([
    [['runs', '--status', 'lost'], /unknown status "lost" \(use one of queued, running/],
    [['runs', '--limit', '0'], /--limit must be a positive whole number \(got "0"\)/],
    [['runs', '--before', 'yesterday'], /"yesterday" is not a run id/],
    [['runs', '--bogus'], /unknown option '--bogus' \(see `walflow runs --help`\)/],
  ])('%j: exit 2, one line', async (args, pattern) => {
    const r = failure(await walflow(args, env));
    expect(r).toMatchObject({ code: 2, lines: 1, stack: false, stdout: '' });
    expect(r.line).toMatch(pattern);
  });
});

describe('walflow inspect', () => {
  it("--json: the run and its timeline, a failed attempt's error with its stack", async () => {
    const { json } = await walflowJson<{ run: Record<string, unknown>; steps: Record<string, unknown>[] }>(['inspect', ids.failed], env);
    expect(json.run).toMatchObject({ id: ids.failed, pipeline: 'ops-jobs', key: 'job-4', status: 'failed', input: { id: 4, fail: true } });
    expect(json.steps).toHaveLength(2);
    expect(json.steps[0]).toMatchObject({ step_index: 0, step: 'prepare', outcome: 'completed', attempt: 1, error: null });
    expect(json.steps[0]!.output_bytes).toBe('{"id": 4, "prepared": true}'.length); // jsonb's text form
    expect(typeof json.steps[0]!.duration_ms).toBe('number');
    expect(json.steps[1]).toMatchObject({ step_index: 1, step: 'work', outcome: 'failed', attempt: 1, output_bytes: null, retry_at: null });
    expect(json.steps[1]!.error).toMatchObject({ name: 'NonRetryableError', message: 'job 4 failed on purpose', step: 'work', attempt: 1 });
    expect((json.steps[1]!.error as { stack: string }).stack).toMatch(/items\.ts/);
  });

  it('prints the timeline and the stack', async () => {
    const r = await walflow(['inspect', ids.failed], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^run ${ids.failed}  pipeline=ops-jobs  version=v1  key=job-4  status=failed  created=`));
    expect(r.stdout).toMatch(/STEP_INDEX\s+STEP\s+OUTCOME\s+ATTEMPT\s+DURATION_MS\s+OUTPUT_BYTES\s+ERROR/);
    expect(r.stdout).toMatch(/-- work attempt 1:\nNonRetryableError: job 4 failed on purpose\n\s+at /);
  });

  it('an unknown run exits 3; a malformed id exits 2', async () => {
    const [unknown, malformed] = await Promise.all([walflow(['inspect', randomUUID(), '--json'], env), walflow(['inspect', '42'], env)]);
    expect(failure(unknown)).toMatchObject({ code: 3, lines: 1, stack: false, stdout: '' });
    expect(failure(unknown).line).toMatch(/^walflow: no run [0-9a-f-]{36}$/);
    expect(failure(malformed)).toMatchObject({ code: 2, lines: 1, stack: false, stdout: '' });
  });
});

describe('walflow retry and cancel', () => {
  it('retry <run>: queued again (exit 0), then nothing to retry (exit 3)', async () => {
    const first = await walflowJson(['retry', ids.failed], env);
    expect(first.json).toEqual({ retried: 1 });
    expect((await db.pool.query('SELECT status, step_index FROM walflow.runs WHERE id = $1', [ids.failed])).rows[0]).toEqual({ status: 'queued', step_index: 1 });
    const again = await walflowJson(['retry', ids.failed], env, 3);
    expect(again.json).toEqual({ retried: 0 });
    const human = await walflow(['retry', ids.failed], env);
    expect(human.code).toBe(3);
    expect(human.stdout.trim()).toBe(`run ${ids.failed} is not failed or cancelled; nothing to retry`);
    // Back to failed for the next test.
    await db.pool.query(`UPDATE walflow.runs SET status = 'failed', finished_at = now() WHERE id = $1`, [ids.failed]);
  });

  it('retry --failed --pipeline: how many were queued; none is exit 3', async () => {
    expect((await walflowJson(['retry', '--failed', '--pipeline', 'ops-jobs'], env)).json).toEqual({ retried: 1 });
    expect((await walflowJson(['retry', '--failed', '--pipeline', 'ops-jobs'], env, 3)).json).toEqual({ retried: 0 });
    await db.pool.query(`UPDATE walflow.runs SET status = 'failed', finished_at = now() WHERE id = $1`, [ids.failed]);
  });

  it.concurrent.each([
    [['retry'], 2, /name a run, or use --failed --pipeline NAME/],
    [['retry', '--failed'], 2, /name a run, or use --failed --pipeline NAME/],
    [['retry', '00000000-0000-7000-8000-000000000000', '--failed', '--pipeline', 'ops-jobs'], 2, /either a run id or --failed, not both/],
    [['retry', 'not-a-uuid'], 2, /"not-a-uuid" is not a run id/],
    [['retry', '00000000-0000-7000-8000-000000000000'], 3, /^walflow: no run 00000000-0000-7000-8000-000000000000$/],
    [['retry', '--failed', '--pipeline', 'no-such-pipeline'], 3, /^walflow: unknown pipeline "no-such-pipeline"$/],
    [['cancel', '00000000-0000-7000-8000-000000000000'], 3, /^walflow: no run 00000000-0000-7000-8000-000000000000$/],
    [['cancel'], 2, /missing required argument 'run' \(see `walflow cancel --help`\)/],
  ])('%j: exit %i, one line', async (args, code, pattern) => {
    const r = failure(await walflow([...args, '--json'], env));
    expect(r).toMatchObject({ code, lines: 1, stack: false, stdout: '' });
    expect(r.line).toMatch(pattern);
  });

  it('cancel <run>: cancelled (exit 0), then already finished (exit 3)', async () => {
    expect((await walflowJson(['cancel', ids.queued], env)).json).toEqual({ cancelled: true });
    expect((await db.pool.query('SELECT status FROM walflow.runs WHERE id = $1', [ids.queued])).rows[0].status).toBe('cancelled');
    expect((await walflowJson(['cancel', ids.queued], env, 3)).json).toEqual({ cancelled: false });
    const human = await walflow(['cancel', ids.ok[0]!], env);
    expect(human).toMatchObject({ code: 3, stdout: `run ${ids.ok[0]} has already finished\n` });
  });
});

describe('walflow backfill and search', () => {
  it('backfill --json: a run per existing row; search then finds the right document', async () => {
    const { json } = await walflowJson(['backfill', 'ops-embed', '--batch-size', '2'], env);
    expect(json).toEqual({ pipeline: 'ops-embed', id: expect.any(Number), done: 3, total: 3, finished: true });
    const { rows } = await db.pool.query(`SELECT key, status, input FROM walflow.runs WHERE pipeline = 'ops-embed' ORDER BY key`);
    expect(rows.map((r) => [r.key, r.status, r.input.op])).toEqual([['1', 'queued', 'backfill'], ['2', 'queued', 'backfill'], ['3', 'queued', 'backfill']]);
    await drain('ops-embed');

    const search = await walflowJson<{ pipeline: string; query: string; hits: Record<string, unknown>[] }>(['search', 'ops-embed', 'fixing a flat bike tyre', '-k', '2'], env);
    expect(search.json).toMatchObject({ pipeline: 'ops-embed', query: 'fixing a flat bike tyre' });
    expect(search.json.hits).toHaveLength(2);
    expect(Object.keys(search.json.hits[0]!).sort()).toEqual(['chunk_index', 'chunk_text', 'distance', 'source_key']);
    expect(search.json.hits[0]).toMatchObject({ source_key: '2', chunk_index: 0 });
    expect(search.json.hits[0]!.distance).toBeLessThanOrEqual(search.json.hits[1]!.distance as number);

    const human = await walflow(['search', 'ops-embed', 'baking bread at home', '-k', '1'], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^DISTANCE\s+KEY\s+CHUNK\s+TEXT\n0\.\d{4}\s+1\s+0\s+Knead the dough/);
  });

  it('backfill prints a summary line and resumable progress', async () => {
    const r = await walflow(['backfill', 'ops-items'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^backfill \d+ of ops-items: started 0 run\(s\); watch them with: walflow status\n$/);
  });

  it.concurrent.each([
    [['backfill', 'ops-jobs'], 2, /pipeline "ops-jobs" has no source table to backfill from/],
    [['backfill', 'no-such-pipeline'], 3, /no pipeline named "no-such-pipeline" in .* \(found: ops-embed, ops-inserts, ops-items, ops-jobs\)/],
    [['backfill', 'ops-items', '--batch-size', '0'], 2, /--batch-size must be a whole number from 1 to 100000 \(got "0"\)/],
    [['search', 'ops-jobs', 'anything'], 2, /pipeline "ops-jobs" is not an embedding pipeline/],
    [['search', 'ops-embed', '  '], 2, /the search query is empty/],
    [['search', 'ops-embed', 'bread', '-k', 'many'], 2, /-k must be a whole number from 1 to 1000 \(got "many"\)/],
    [['search', 'no-such-pipeline', 'bread'], 3, /no pipeline named "no-such-pipeline"/],
  ])('%j: exit %i, one line', async (args, code, pattern) => {
    const r = failure(await walflow([...args, '--json'], env));
    expect(r).toMatchObject({ code, lines: 1, stack: false, stdout: '' });
    expect(r.line).toMatch(pattern);
  });
});

describe('walflow db status and db url', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walflow-ops-db-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('with no local cluster: status says so (exit 3), url is not found (exit 3)', async () => {
    const dataDir = path.join(dir, 'none');
    const status = await walflowJson(['db', 'status'], { WALFLOW_DATA_DIR: dataDir }, 3);
    expect(status.json).toEqual({ initialized: false, running: false, dataDir });
    const human = await walflow(['db', 'status'], { WALFLOW_DATA_DIR: dataDir });
    expect(human).toMatchObject({ code: 3, stdout: `not initialized (${dataDir}); run: walflow db start\n` });
    const url = failure(await walflow(['db', 'url', '--json'], { WALFLOW_DATA_DIR: dataDir }));
    expect(url).toMatchObject({ code: 3, lines: 1, stack: false, stdout: '' });
    expect(url.line).toBe(`walflow: no local cluster in ${dataDir}: run \`walflow db start\``);
  });

  it('with a stopped cluster: its URL, and status not running (exit 3)', async () => {
    // What `walflow db start` leaves behind, minus a running server.
    const dataDir = path.join(dir, 'stopped');
    fs.mkdirSync(dataDir);
    fs.writeFileSync(path.join(dataDir, 'PG_VERSION'), '17\n');
    fs.writeFileSync(path.join(dataDir, 'walflow-cluster.json'), JSON.stringify({ port: 54999, user: 'postgres', database: 'walflow' }));
    // A cluster made before the socket directory was recorded has its socket in the data directory.
    const socketUrl = `postgresql://postgres@${encodeURIComponent(dataDir)}:54999/walflow`;
    const url = await walflowJson(['db', 'url'], { WALFLOW_DATA_DIR: dataDir });
    expect(url.json).toEqual({ url: 'postgres://postgres@127.0.0.1:54999/walflow', socketUrl, dataDir });
    expect((await walflow(['db', 'url'], { WALFLOW_DATA_DIR: dataDir })).stdout).toBe('postgres://postgres@127.0.0.1:54999/walflow\n');
    const status = await walflowJson(['db', 'status'], { WALFLOW_DATA_DIR: dataDir }, 3);
    expect(status.json).toEqual({ initialized: true, running: false, url: 'postgres://postgres@127.0.0.1:54999/walflow', socketUrl, dataDir });
  });

  it('refuses when DATABASE_URL is set (exit 2)', async () => {
    for (const args of [['db', 'status'], ['db', 'url'], ['db', 'start'], ['db', 'stop']]) {
      const r = failure(await walflow(args, { DATABASE_URL: db.url }));
      expect(r).toMatchObject({ code: 2, lines: 1, stack: false, stdout: '' });
      expect(r.line).toMatch(/DATABASE_URL is set/);
    }
  });
});

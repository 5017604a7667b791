// Pipelines that change while `walflow run` runs (a real process, a temp pipelines directory): an
// added pipeline gets its existing rows by an automatic backfill and its later changes by WAL (the
// README's example pipeline works unchanged on both); a changed file's new version is logged and
// used; a broken file keeps the previous version running and is reported in status and metrics;
// SIGHUP reloads; a removed pipeline's table leaves the publication; and the initial backfill is
// consistent with inserts, updates and deletes racing it.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';
import { freePort, metric, parseMetrics, ROOT, startWalflowRun, walflow, walflowJson, type RunningWalflow } from './support/cli.js';

const db = useTestDatabase();
// The suite runs this file beside others on one loaded server: the waits are generous (they wait,
// they do not time). A reload's initial backfill waits only for this database's open transactions
// (other files' transactions in their own databases once held it up for minutes: backfill-wait.test.ts).
const RELOAD_WAIT_MS = 100_000;
const slot = `wf_reload_${randomBytes(4).toString('hex')}`;
const DEFINE = pathToFileURL(path.join(ROOT, 'src/pipeline/define.ts')).href;
let dir: string;
let env: Record<string, string>;
let port: number;
let wf: RunningWalflow;

const q = async <T = Record<string, unknown>>(sql: string, params: unknown[] = []) => (await db.pool.query(sql, params)).rows as T[];
const write = (file: string, text: string) => fs.writeFileSync(path.join(dir, file), text);
const logged = (pattern: RegExp) => wf.logs().some((l) => typeof l.msg === 'string' && pattern.test(l.msg));
const published = async () => (await q<{ t: string }>(`SELECT schemaname || '.' || tablename AS t FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1`, [slot])).map((r) => r.t);
const metrics = async () => parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());

/** The README's example pipeline, with sendMail a local function instead of the network. */
const welcome = (version: string, render = 'ctx.runInput.row.email') => `
import { definePipeline } from '${DEFINE}';
const sendMail = async (mail: { to: string }, _o: { signal: AbortSignal }) => mail;
export default definePipeline({
  name: 'rl-welcome',
  version: '${version}',
  source: { table: 'rl_users', events: ['insert'] },
  steps: [
    { name: 'render', run: (ctx) => ({ to: ${render} }) },
    { name: 'send', retry: { maxAttempts: 8 }, timeoutMs: 10_000,
      run: async (ctx, mail) => sendMail(mail, { signal: ctx.signal }) },
    { name: 'record', run: async (ctx) => {
        const tx = await ctx.tx();
        await tx.query('UPDATE rl_users SET welcomed = true WHERE id = $1', [ctx.runInput.key.id]);
      } },
  ],
});
`;

/** Mirrors rl_race into rl_race_out: each run writes the row version it carries (or the delete). */
const RACE = `
import { definePipeline } from '${DEFINE}';
export default definePipeline({
  name: 'rl-race',
  version: 'v1',
  source: { table: 'rl_race' },
  steps: [{ name: 'mirror', run: async (ctx) => {
    const tx = await ctx.tx();
    const i = ctx.runInput;
    if (i.op === 'delete') await tx.query('DELETE FROM rl_race_out WHERE id = $1', [i.key.id]);
    else await tx.query('INSERT INTO rl_race_out (id, v) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v', [i.row.id, i.row.v]);
  } }],
});
`;

const SIGHUP_PIPELINE = `
import { definePipeline } from '${DEFINE}';
export default definePipeline({ name: 'rl-late', version: 'v1', source: { table: 'rl_late' }, steps: [{ name: 'noop', run: () => null }] });
`;

beforeAll(async () => {
  // Inside the project: tsx compiles TypeScript files below the project, not in /tmp.
  dir = fs.mkdtempSync(path.join(ROOT, 'test/fixtures/ops/.reload-'));
  port = await freePort();
  env = {
    DATABASE_URL: db.url, WALFLOW_PIPELINES_DIR: dir, WALFLOW_SLOT_NAME: slot, WALFLOW_PUBLICATION_NAME: slot,
    WALFLOW_POLL_INTERVAL_MS: '100', WALFLOW_LOG_LEVEL: 'info',
  };
  await db.pool.query(`CREATE TABLE rl_base (id int PRIMARY KEY)`);
  await db.pool.query(`CREATE TABLE rl_users (id int PRIMARY KEY, email text NOT NULL, welcomed boolean NOT NULL DEFAULT false)`);
  await db.pool.query(`CREATE TABLE rl_race (id int PRIMARY KEY, v int NOT NULL)`);
  await db.pool.query(`CREATE TABLE rl_race_out (id int PRIMARY KEY, v int NOT NULL)`);
  write('base.ts', `import { definePipeline } from '${DEFINE}';
export default definePipeline({ name: 'rl-base', version: 'v1', source: { table: 'rl_base' }, steps: [{ name: 'noop', run: () => null }] });
`);
  // Creating the logical slot waits for every transaction open in the whole server (PostgreSQL's
  // snapshot builder reads the cluster-wide WAL), other files' included: a generous readiness wait.
  wf = await startWalflowRun(['--metrics-port', String(port)], env, RELOAD_WAIT_MS);
}, 120_000);

afterAll(async () => {
  if (wf && wf.child.exitCode === null && wf.child.signalCode === null) await wf.stop('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('pipelines change while walflow runs', { timeout: 6 * RELOAD_WAIT_MS }, () => {
  it('an added pipeline: rows inserted before (backfilled) and after (WAL) become runs; the README example works on both', async () => {
    await db.pool.query(`INSERT INTO rl_users (id, email) VALUES (1, 'a@x.org'), (2, 'b@x.org'), (3, 'c@x.org')`);
    write('welcome.ts', welcome('v1'));
    await waitFor('the reload logged', async () => logged(/pipelines reloaded: added rl-welcome \(v1\)/), RELOAD_WAIT_MS);
    await waitFor('rl_users in the publication', async () => (await published()).includes('public.rl_users'));
    // (Rows inserted while the backfill reads would get both runs: the later one wins.)
    await waitFor('its backfill finished', async () => logged(/initial backfill of pipeline "rl-welcome" finished/), RELOAD_WAIT_MS);
    await db.pool.query(`INSERT INTO rl_users (id, email) VALUES (4, 'd@x.org'), (5, 'e@x.org')`);
    await waitFor('every user welcomed', async () => Number((await q<{ n: string }>(`SELECT count(*) AS n FROM rl_users WHERE welcomed`))[0]!.n) === 5, 30_000);
    const runs = await q<{ key: string; op: string; status: string; to: string; row: unknown }>(
      `SELECT r.key, r.input->>'op' AS op, r.status, s.output->>'to' AS to, r.input->'row' AS row
         FROM walflow.runs r JOIN walflow.steps s ON s.run_id = r.id AND s.step = 'render' WHERE r.pipeline = 'rl-welcome' ORDER BY r.key`,
    );
    expect(runs.map((r) => [r.key, r.op, r.status, r.to])).toEqual([
      ['1', 'backfill', 'completed', 'a@x.org'], ['2', 'backfill', 'completed', 'b@x.org'], ['3', 'backfill', 'completed', 'c@x.org'],
      ['4', 'insert', 'completed', 'd@x.org'], ['5', 'insert', 'completed', 'e@x.org'],
    ]);
    expect(runs[0]!.row).toEqual({ id: 1, email: 'a@x.org', welcomed: false });
  });

  it('a changed file: the new version is logged and used by later runs', async () => {
    write('welcome.ts', welcome('v2', 'ctx.runInput.row.email.toUpperCase()'));
    await waitFor('the change logged', async () => logged(/pipelines reloaded: changed rl-welcome \(v1 → v2\)/), RELOAD_WAIT_MS);
    await db.pool.query(`INSERT INTO rl_users (id, email) VALUES (6, 'f@x.org')`);
    const [run] = await waitFor('the run of user 6', async () => {
      const r = await q<{ v: string; to: string }>(`SELECT r.pipeline_version AS v, s.output->>'to' AS to FROM walflow.runs r JOIN walflow.steps s ON s.run_id = r.id AND s.step = 'render' WHERE r.pipeline = 'rl-welcome' AND r.key = '6' AND r.status = 'completed'`);
      return r.length ? r : undefined;
    });
    expect(run).toEqual({ v: 'v2', to: 'F@X.ORG' });
  });

  it('a broken file: the previous version keeps running; the error is in status and the metric; the process lives', async () => {
    write('welcome.ts', `${welcome('v3')}\nthis is not typescript (`);
    const status = await waitFor('the error in walflow status', async () => {
      const { json } = await walflowJson<{ pipeline_errors: { file: string; message: string }[] }>(['status'], env);
      return json.pipeline_errors.length > 0 ? json : undefined;
    });
    expect(status.pipeline_errors).toHaveLength(1);
    expect(status.pipeline_errors[0]!.file).toBe('welcome.ts');
    expect(status.pipeline_errors[0]!.message).toMatch(/welcome\.ts/);
    expect(metric(await metrics(), 'walflow_pipeline_load_errors')).toBe(1);
    expect((await walflow(['status'], env)).stdout).toMatch(/pipeline errors[\s\S]*welcome\.ts/);
    await db.pool.query(`INSERT INTO rl_users (id, email) VALUES (7, 'g@x.org')`);
    const [run] = await waitFor('the run of user 7', async () => {
      const r = await q<{ v: string; to: string }>(`SELECT r.pipeline_version AS v, s.output->>'to' AS to FROM walflow.runs r JOIN walflow.steps s ON s.run_id = r.id AND s.step = 'render' WHERE r.pipeline = 'rl-welcome' AND r.key = '7' AND r.status = 'completed'`);
      return r.length ? r : undefined;
    });
    expect(run).toEqual({ v: 'v2', to: 'G@X.ORG' });
    expect(wf.child.exitCode).toBeNull();
  });

  it('a file without a default export, or whose default is not a pipeline, is an error naming the file (at start: exit 2; while running: reported)', async () => {
    const named = `import { definePipeline } from '${DEFINE}';\nexport const p = definePipeline({ name: 'rl-named', steps: [{ name: 's', run: () => null }] });\n`;
    write('named.ts', named);
    write('notapipeline.ts', `export default { hello: 'world' };\n`);
    await waitFor('both reported', async () => (await q(`SELECT 1 FROM walflow.pipeline_load_errors`)).length >= 3);
    const errors = await q<{ file: string; message: string }>(`SELECT file, message FROM walflow.pipeline_load_errors ORDER BY file`);
    expect(errors.find((e) => e.file === 'named.ts')!.message).toMatch(/named\.ts has no default export/);
    expect(errors.find((e) => e.file === 'notapipeline.ts')!.message).toMatch(/notapipeline\.ts: the default export is not a pipeline/);
    const other = fs.mkdtempSync(path.join(ROOT, 'test/fixtures/ops/.reload-'));
    try {
      fs.writeFileSync(path.join(other, 'named.ts'), named);
      const r = await walflow(['run', '--pipelines', other], env);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^walflow: .*named\.ts has no default export/);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
    fs.rmSync(path.join(dir, 'named.ts'));
    fs.rmSync(path.join(dir, 'notapipeline.ts'));
    await waitFor('their errors cleared', async () => (await q(`SELECT 1 FROM walflow.pipeline_load_errors WHERE file IN ('named.ts', 'notapipeline.ts')`)).length === 0);
  });

  it('a removed pipeline: its table leaves the publication; its queued runs stay queued; the fixed error is cleared', async () => {
    expect(await published()).toContain('public.rl_users');
    fs.rmSync(path.join(dir, 'welcome.ts'));
    await waitFor('the removal logged', async () => logged(/pipelines reloaded: .*removed rl-welcome/), RELOAD_WAIT_MS);
    await waitFor('rl_users unpublished', async () => !(await published()).includes('public.rl_users'));
    const { json } = await walflowJson<{ pipeline_errors: unknown[] }>(['status'], env);
    expect(json.pipeline_errors).toEqual([]);
    expect(metric(await metrics(), 'walflow_pipeline_load_errors')).toBe(0);
    const id = (await q<{ id: string }>(`SELECT walflow.start('rl-welcome', '{"op":"insert"}') AS id`))[0]!.id;
    // Given time to be claimed if anything still ran it: another pipeline's run completes meanwhile.
    await db.pool.query(`INSERT INTO rl_base VALUES (1)`);
    await waitFor('rl-base ran', async () => (await q(`SELECT 1 FROM walflow.runs WHERE pipeline = 'rl-base' AND status = 'completed'`)).length === 1);
    expect((await q<{ status: string }>(`SELECT status FROM walflow.runs WHERE id = $1`, [id]))[0]!.status).toBe('queued');
  });

  it('SIGHUP reloads: a pipeline whose table did not exist loads once it does, with its backfill; walflow backfill then has nothing to do', async () => {
    write('late.ts', SIGHUP_PIPELINE);
    await waitFor('the missing table reported', async () => (await q(`SELECT 1 FROM walflow.pipeline_load_errors WHERE file = 'late.ts' AND message LIKE '%rl_late does not exist%'`)).length === 1);
    await db.pool.query(`CREATE TABLE rl_late (id int PRIMARY KEY)`);
    await db.pool.query(`INSERT INTO rl_late SELECT generate_series(1, 10)`);
    wf.child.kill('SIGHUP');
    await waitFor('rl-late added', async () => logged(/pipelines reloaded: added rl-late \(v1\)/), RELOAD_WAIT_MS);
    await waitFor('its 10 rows backfilled', async () => Number((await q<{ n: string }>(`SELECT count(*) AS n FROM walflow.runs WHERE pipeline = 'rl-late' AND input->>'op' = 'backfill'`))[0]!.n) === 10);
    await waitFor('its backfill finished', async () => (await q(`SELECT 1 FROM walflow.backfills WHERE pipeline = 'rl-late' AND automatic AND finished_at IS NOT NULL`)).length === 1);
    const again = await walflow(['backfill', 'rl-late'], env);
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/backfill \d+ of pipeline "rl-late" finished at .*; nothing to do .*--restart/);
    const restarted = await walflowJson<{ done: number; finished: boolean }>(['backfill', 'rl-late', '--restart'], env);
    expect(restarted.json).toMatchObject({ done: 10, finished: true });
    expect(wf.child.exitCode).toBeNull();
  });

  it('the initial backfill is consistent with inserts, updates and deletes racing it: every key ends with its latest row', async () => {
    await db.pool.query(`INSERT INTO rl_race SELECT g, 0 FROM generate_series(1, 3000) g`);
    // A transaction that wrote before the table joins the publication and commits after it: the
    // stream decodes it without the table, so only the backfill (which waits for it) can see it.
    const open = new pg.Client({ connectionString: db.url });
    await open.connect();
    await open.query('BEGIN');
    await open.query(`INSERT INTO rl_race VALUES (9999, 1)`);
    let stop = false;
    const racer = async (seed: number) => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      let n = 0;
      for (let i = seed; !stop || n < 300; i += 7) {
        const id = 1 + ((i * 7919) % 3500);
        const op = i % 5;
        if (op === 0) await c.query(`DELETE FROM rl_race WHERE id = $1`, [id]);
        else await c.query(`INSERT INTO rl_race VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = rl_race.v + 1`, [id, i]);
        n++;
      }
      await c.end();
    };
    const racers = [racer(1), racer(2), racer(3)];
    write('race.ts', RACE);
    await waitFor('rl_race published', async () => (await published()).includes('public.rl_race'), RELOAD_WAIT_MS);
    // The backfill must not read before that transaction ends.
    await waitFor('the backfill waiting for it', async () => logged(/initial backfill of pipeline "rl-race" waits for \d+ transaction/), RELOAD_WAIT_MS);
    expect(logged(/initial backfill of pipeline "rl-race" finished/)).toBe(false);
    await open.query('COMMIT');
    await open.end();
    await waitFor('the backfill finished', async () => logged(/initial backfill of pipeline "rl-race" finished/), 60_000);
    stop = true;
    await Promise.all(racers);
    // The last change: once its run exists, the stream is past every racing change.
    await db.pool.query(`INSERT INTO rl_race VALUES (100000, 0)`);
    await waitFor('every rl-race run ended', async () =>
      (await q(`SELECT 1 FROM walflow.runs WHERE pipeline = 'rl-race' AND key = '100000'`)).length === 1
      && Number((await q<{ n: string }>(`SELECT count(*) AS n FROM walflow.runs WHERE pipeline = 'rl-race' AND status IN ('queued', 'running', 'waiting')`))[0]!.n) === 0, 120_000);
    const source = await q<{ id: number; v: number }>(`SELECT id, v FROM rl_race ORDER BY id`);
    const mirror = await q<{ id: number; v: number }>(`SELECT id, v FROM rl_race_out ORDER BY id`);
    expect(source.find((r) => r.id === 9999)).toEqual({ id: 9999, v: 1 });
    expect(mirror.length).toBe(source.length);
    expect(mirror).toEqual(source);
    expect(Number((await q<{ n: string }>(`SELECT count(*) AS n FROM walflow.runs WHERE pipeline = 'rl-race' AND status = 'failed'`))[0]!.n)).toBe(0);
  }, 240_000);

  it('an initial backfill cut short by a SIGKILLed leader is resumed by the next one: every row gets exactly one backfill run', async () => {
    await db.pool.query(`CREATE TABLE rl_big (id int PRIMARY KEY)`);
    await db.pool.query(`INSERT INTO rl_big SELECT generate_series(1, 100000)`);
    write('big.ts', `import { definePipeline } from '${DEFINE}';
export default definePipeline({ name: 'rl-big', version: 'v1', source: { table: 'rl_big' }, steps: [{ name: 'noop', run: () => null }] });
`);
    await waitFor('the backfill under way', async () => (await q(`SELECT 1 FROM walflow.backfills WHERE pipeline = 'rl-big' AND done > 0 AND finished_at IS NULL`)).length === 1, 30_000, 20);
    await wf.stop('SIGKILL');
    const cut = (await q<{ done: string }>(`SELECT done FROM walflow.backfills WHERE pipeline = 'rl-big'`))[0]!;
    expect(Number(cut.done)).toBeLessThan(100000);
    wf = await startWalflowRun(['--metrics-port', String(port)], env);
    await waitFor('the backfill finished', async () => (await q(`SELECT 1 FROM walflow.backfills WHERE pipeline = 'rl-big' AND finished_at IS NOT NULL`)).length === 1, 120_000);
    const [counts] = await q<{ runs: string; keys: string; backfills: string }>(
      `SELECT count(*) AS runs, count(DISTINCT key) AS keys, (SELECT count(*) FROM walflow.backfills WHERE pipeline = 'rl-big') AS backfills FROM walflow.runs WHERE pipeline = 'rl-big'`,
    );
    expect(counts).toEqual({ runs: '100000', keys: '100000', backfills: '1' });
  }, 240_000);
});

// Pipelines defined from SQL against a live `walflow run` (a real process): what an alter does to
// runs in flight, and a definition the process cannot build. Runs parked in a signal wait of v1
// continue on v2, steps matched by name, so the step after the wait runs v2's SQL; a run parked in
// a step v2 removed fails with the engine's error; v1's step functions stay until the drop. A SQL
// pipeline that does not build is listed by `walflow pipelines` with its error, and is a load
// error in `walflow status`.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';
import { ROOT, startWalflowRun, walflowJson, type RunningWalflow } from './support/cli.js';

const db = useTestDatabase();
// As in sql-pipelines.test.ts: a loaded shared server; the waits are generous (they wait, they do not time).
const WAIT_MS = 100_000;
const slot = `wf_sqla_${randomBytes(4).toString('hex')}`;
const DEFINE = pathToFileURL(path.join(ROOT, 'src/pipeline/define.ts')).href;
let dir: string;
let env: Record<string, string>;
let wf: RunningWalflow;

const q = async <T = Record<string, unknown>>(sql: string, params: unknown[] = []) => (await db.pool.query(sql, params)).rows as T[];
const logged = (pattern: RegExp) => wf.logs().some((l) => typeof l.msg === 'string' && pattern.test(l.msg));
const statuses = async (ids: string[]) => (await q<{ status: string }>(`SELECT status FROM walflow.runs WHERE id = ANY($1::uuid[])`, [ids])).map((r) => r.status);
/** A pipeline whose SQL steps log (run, step, version) to sa_log around a signal wait. */
const steps = (version: string, wait: string | null) => `ARRAY[
  walflow.sql_step('note', 'INSERT INTO sa_log VALUES (:run.id::uuid, ''note'', ''${version}'')'),
  ${wait ? `walflow.signal_step('${wait}', '${wait}', '1h'),` : ''}
  walflow.sql_step('finish', 'INSERT INTO sa_log VALUES (:run.id::uuid, ''finish'', ''${version}'')')]`;
const functions = async (pipeline: string) =>
  (await q<{ f: string }>(`SELECT proname AS f FROM pg_proc WHERE pronamespace = 'walflow_steps'::regnamespace AND proname LIKE $1 ORDER BY 1`, [`${pipeline}/%`])).map((r) => r.f);

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(ROOT, 'test/fixtures/ops/.sqlalter-'));
  fs.writeFileSync(path.join(dir, 'base.ts'), `import { definePipeline } from '${DEFINE}';
export default definePipeline({ name: 'sa-base', version: 'v1', source: { table: 'sa_base' }, steps: [{ name: 'noop', run: () => null }] });
`);
  env = {
    DATABASE_URL: db.url, WALFLOW_PIPELINES_DIR: dir, WALFLOW_SLOT_NAME: slot, WALFLOW_PUBLICATION_NAME: slot,
    WALFLOW_POLL_INTERVAL_MS: '100', WALFLOW_LOG_LEVEL: 'info', WALFLOW_LEASE_MS: '2000',
  };
  await db.pool.query(`CREATE TABLE sa_base (id int PRIMARY KEY)`);
  await db.pool.query(`CREATE TABLE sa_log (run_id uuid NOT NULL, step text NOT NULL, version text NOT NULL)`);
  wf = await startWalflowRun([], env);
}, 120_000);

afterAll(async () => {
  if (wf && wf.child.exitCode === null && wf.child.signalCode === null) await wf.stop('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
  await db.pool.query('SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [slot]).catch(() => undefined);
});

describe('altering a SQL pipeline while its runs are in flight', { timeout: 4 * WAIT_MS }, () => {
  it('runs parked in a v1 wait complete with v2\'s SQL for the step after it; a run parked in a step v2 removed fails with the engine\'s error; v1\'s functions stay until the drop', async () => {
    await db.pool.query(`SELECT walflow.create_pipeline('sa-ship', ${steps('v1', 'shipped')})`);
    await db.pool.query(`SELECT walflow.create_pipeline('sa-gate', ${steps('v1', 'go')})`);
    await waitFor('both picked up', async () => logged(/pipelines reloaded: .*added sa-(ship|gate)/) && (await q(`SELECT name FROM walflow.pipelines WHERE name IN ('sa-ship', 'sa-gate')`)).length === 2, WAIT_MS);
    const start = async (p: string) => (await q<{ id: string }>(`SELECT walflow.start($1, '{}') AS id`, [p]))[0]!.id;
    const ship = [await start('sa-ship'), await start('sa-ship'), await start('sa-ship')];
    const gate = [await start('sa-gate'), await start('sa-gate')];
    await waitFor('all parked in their v1 wait', async () => (await q(`SELECT 1 FROM walflow.waits WHERE run_id = ANY($1::uuid[])`, [[...ship, ...gate]])).length === 5, WAIT_MS);

    // v2: sa-ship's "finish" writes another version; sa-gate loses the step its runs wait in.
    expect((await q(`SELECT walflow.alter_pipeline('sa-ship', ${steps('v2', 'shipped')}) AS v`))[0]).toEqual({ v: 2 });
    expect((await q(`SELECT walflow.alter_pipeline('sa-gate', ${steps('v2', null)}) AS v`))[0]).toEqual({ v: 2 });
    await waitFor('both versions picked up', async () => logged(/changed sa-ship \(sql-v1 → sql-v2\)/) && logged(/changed sa-gate \(sql-v1 → sql-v2\)/), WAIT_MS);
    // v1's step functions stay (a worker may still hold a run of v1 when the alter arrives).
    expect(await functions('sa-ship')).toEqual(['sa-ship/finish/v1', 'sa-ship/finish/v2', 'sa-ship/note/v1', 'sa-ship/note/v2']);

    for (const id of ship) await q(`SELECT walflow.signal($1, 'shipped')`, [id]);
    for (const id of gate) await q(`SELECT walflow.signal($1, 'go')`, [id]);
    await waitFor('sa-ship runs completed, sa-gate runs failed', async () =>
      (await statuses(ship)).every((s) => s === 'completed') && (await statuses(gate)).every((s) => s === 'failed'), WAIT_MS);
    // Started on v1 (its "note"), finished with v2's SQL for "finish", each exactly once.
    const log = await q(`SELECT step, version, count(*)::int AS n FROM sa_log WHERE run_id = ANY($1::uuid[]) GROUP BY 1, 2 ORDER BY 1, 2`, [ship]);
    expect(log).toEqual([{ step: 'finish', version: 'v2', n: 3 }, { step: 'note', version: 'v1', n: 3 }]);
    expect(await q(`SELECT DISTINCT pipeline_version FROM walflow.runs WHERE id = ANY($1::uuid[])`, [ship])).toEqual([{ pipeline_version: 'sql-v1' }]);
    // The removed step: the engine's error, naming the step, the version and its steps; nothing after it ran.
    for (const { error } of await q<{ error: { message: string } }>(`SELECT error FROM walflow.runs WHERE id = ANY($1::uuid[])`, [gate])) {
      expect(error.message).toMatch(/^the run is parked in step "go" \(\w+\), which pipeline "sa-gate" version sql-v2 does not have \(its steps: note, finish\): .*walflow retry/);
    }
    expect(await q(`SELECT step FROM sa_log WHERE run_id = ANY($1::uuid[]) AND step = 'finish'`, [gate])).toEqual([]);

    // The drop removes every version's functions.
    await db.pool.query(`SELECT walflow.drop_pipeline('sa-ship')`);
    expect(await functions('sa-ship')).toEqual([]);
  });

  it('a SQL pipeline this process cannot build is listed by walflow pipelines with its error, and is a load error in walflow status', async () => {
    // The database accepts it (sleep durations are checked where pipelines are built); the process cannot build it.
    await db.pool.query(`SELECT walflow.create_pipeline('sa-bad', ARRAY[walflow.sleep_step('nap', 'ten minutes')])`);
    const error = /pipeline "sa-bad": step "nap": sleep: "ten minutes" is not a duration/;
    const listed = await walflowJson<{ pipelines: { name: string; origin: string; version: string; error: string | null }[] }>(['pipelines'], env);
    expect(listed.json.pipelines.find((p) => p.name === 'sa-bad')).toEqual(expect.objectContaining({ origin: 'sql', version: 'sql-v1', error: expect.stringMatching(error) }));
    expect(listed.json.pipelines.find((p) => p.name === 'sa-base')).toEqual(expect.objectContaining({ origin: 'file', error: null }));
    await waitFor('the running process reports it', async () => (await q(`SELECT 1 FROM walflow.pipeline_load_errors WHERE file = 'sql:sa-bad'`)).length === 1, WAIT_MS);
    const status = await walflowJson<{ pipeline_errors: { file: string; message: string }[] }>(['status'], env);
    expect(status.json.pipeline_errors).toEqual([expect.objectContaining({ file: 'sql:sa-bad', message: expect.stringMatching(error) })]);
  });
});

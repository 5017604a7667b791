// walflow as users get it: `npm pack`, installed into a fresh CommonJS and a fresh ESM project.
// Plain Node imports / requires the public API, tsc typechecks a consumer against the published
// types, `walflow pipelines` loads a pipeline of every file kind, an application embeds the Engine
// against the test cluster, and `npx walflow run` stops cleanly when the npx process gets SIGTERM.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';
import {
  CONSUMER_TS, CONSUMER_TSCONFIG, engineApp, makeProject, mustRun, pack, pipelineFiles, ROOT, run, spawnNpx, TSC, type Kind,
} from './support/scratch-project.js';

const db = useTestDatabase();
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'walflow-consumer-'));
const projects = {} as Record<Kind, string>;
const kinds: Kind[] = ['cjs', 'esm'];

beforeAll(async () => {
  const tarball = await pack(scratch);
  // Both installs at once: the second mostly hits the npm cache the first filled.
  await Promise.all(kinds.map(async (k) => (projects[k] = await makeProject(path.join(scratch, k), k, tarball))));
}, 600_000);

afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

describe('the published files', () => {
  it('are the compiled code, the SQL, the CLI and the docs: no sources, tests, benchmarks or source maps', async () => {
    const r = await mustRun('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], ROOT);
    const files = (JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as [{ files: { path: string }[] }])[0].files.map((f) => f.path);
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files).toContain('dist/steps/embedders/local-worker.js');
    expect(files).toContain('bin/walflow.js');
    expect(files).toContain('sql/migrations/0001_engine.sql');
    expect(files).toContain('sql/definitions/functions/start.sql');
    expect(files.filter((f) => /^(src|test|bench|\.ci)\//.test(f) || f.endsWith('.map'))).toEqual([]);
    expect(files.filter((f) => !/^(dist|bin|sql|docs)\//.test(f)).sort()).toEqual([
      'CHANGELOG.md', 'README.md', 'package.json', 'pipelines/embed-documents.ts', 'scripts/setup-postgres.sh',
    ]);
  });
});

describe.each(kinds)('a %s project', (kind) => {
  it('imports and requires the public API from plain Node', async () => {
    const dir = projects[kind];
    const names = ['Engine', 'NonRetryableError', 'createEmbeddingPipeline', 'definePipeline', 'loadConfig'];
    const esm = await mustRun('node', ['--input-type=module', '-e', `import * as w from 'walflow'; console.log(JSON.stringify(Object.keys(w).sort()))`], dir);
    const cjs = await mustRun('node', ['-e', `console.log(JSON.stringify(Object.keys(require('walflow')).sort()))`], dir);
    for (const out of [esm.stdout, cjs.stdout]) expect(JSON.parse(out)).toEqual(expect.arrayContaining(names));
  });

  it('typechecks a consumer file against the published types', async () => {
    const dir = projects[kind];
    fs.writeFileSync(path.join(dir, 'consumer.ts'), CONSUMER_TS);
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), CONSUMER_TSCONFIG);
    // skipLibCheck off, so walflow's own .d.ts are checked too. @energetic-ai's declarations (the
    // local model's dependency) refer to @tensorflow types it does not install: their defect, not
    // walflow's, and invisible with the usual skipLibCheck: true.
    const r = await run('node', [TSC, '-p', '.'], dir);
    const errors = (r.stdout + r.stderr).split('\n').filter((l) => /error TS/.test(l));
    expect(errors.filter((l) => !l.startsWith('node_modules/@energetic-ai/'))).toEqual([]);
  });

  it('`walflow pipelines` loads a pipeline from every kind of file', async () => {
    const dir = projects[kind];
    for (const [file, text] of Object.entries(pipelineFiles(kind))) fs.writeFileSync(path.join(dir, 'pipelines', file), text);
    const r = await mustRun('npx', ['walflow', 'pipelines', '--json'], dir);
    const names = (JSON.parse(r.stdout) as { pipelines: { name: string }[] }).pipelines.map((p) => p.name);
    expect(names.sort()).toEqual(['ts', 'mts', 'cts', 'js', 'mjs', 'cjs'].map((ext) => `${kind}-${ext}`).sort());
  });

  it('runs the Engine embedded in an application against the database', async () => {
    const dir = projects[kind];
    const app = path.join(dir, kind === 'esm' ? 'app.js' : 'app.cjs');
    fs.writeFileSync(app, engineApp(kind));
    const r = await mustRun('node', [app, db.url], dir);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, { status: string; attempt: number; result: unknown }>;
    expect(out.ok).toMatchObject({ status: 'completed', result: { text: 'HELLO ADA' } });
    expect(out.bad).toMatchObject({ status: 'failed', attempt: 1 });
  });
});

describe('npx walflow run', () => {
  it('stops cleanly and releases the slot when the npx process it was started with gets SIGTERM', async () => {
    const dir = projects.esm;
    const slot = `wf_npx_${randomBytes(4).toString('hex')}`;
    await db.pool.query('CREATE TABLE npx_items (id int PRIMARY KEY)');
    const pipelines = path.join(dir, 'npx-pipelines');
    fs.mkdirSync(pipelines, { recursive: true });
    fs.writeFileSync(path.join(pipelines, 'items.ts'), `import { definePipeline } from 'walflow';
export default definePipeline({ name: 'npx-items', source: { table: 'npx_items' }, steps: [{ name: 'noop', run: () => null }] });
`);
    let walflowPid: number | undefined;
    const npx = spawnNpx(dir, { DATABASE_URL: db.url, WALFLOW_PIPELINES_DIR: pipelines, WALFLOW_SLOT_NAME: slot, WALFLOW_PUBLICATION_NAME: slot });
    try {
      const running = await waitFor('walflow running', async () => npx.logs().find((l) => l.msg === 'walflow running'), 60_000);
      walflowPid = running.pid as number;
      expect(walflowPid).not.toBe(npx.child.pid); // npx → sh → walflow: the signal goes to npx only
      await waitFor('the slot in use', async () => (await db.pool.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active', [slot])).rowCount);

      npx.child.kill('SIGTERM');
      await waitFor('walflow to exit', async () => !alive(walflowPid!), 60_000);
      await npx.closed;
      expect(npx.logs().map((l) => l.msg)).toEqual(expect.arrayContaining(['stopping: finishing running steps', 'stopped']));
      const { rows } = await db.pool.query('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
      expect(rows).toEqual([{ active: false }]);
    } finally {
      npx.child.kill('SIGKILL');
      if (walflowPid && alive(walflowPid)) process.kill(walflowPid, 'SIGKILL');
      await db.pool.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL', [slot]);
      await db.pool.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]).catch(() => undefined);
    }
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// The console's Search page, served by a real `walflow ui` process that loaded an embedding
// pipeline from the pipelines directory: the nearest chunks to a query, closest first, with their
// distance; the query itself is shown back escaped.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/engine/engine.js';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';
import embed from '../../fixtures/console/embed-pipelines/embed.js';
import { BIN, childEnv, freePort, ROOT, walflowJson } from '../ops/support/cli.js';

const db = useTestDatabase();
const DIR = path.join(ROOT, 'test/fixtures/console/embed-pipelines');
let child: ChildProcess;
let base: string;

beforeAll(async () => {
  await db.pool.query('CREATE TABLE console_docs (id int PRIMARY KEY, body text)');
  await db.pool.query(`INSERT INTO console_docs VALUES
    (1, 'Knead the dough, let it rise for two hours, then bake the bread in a hot oven until the crust is golden.'),
    (2, 'Remove the wheel, lever the old tire off the rim, fit a new inner tube and pump the bicycle tire up.'),
    (3, 'Water the tomato plants deeply at the base, stake the stems and feed the soil with compost.')`);
  const env = { DATABASE_URL: db.url, WALFLOW_PIPELINES_DIR: DIR };
  await walflowJson(['backfill', 'console-embed'], env);
  const engine = new Engine({ url: db.url, pipelines: [embed], pollIntervalMs: 50 });
  await engine.runWorkers();
  try {
    await waitFor('the documents to be embedded', async () =>
      (await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE pipeline = 'console-embed' AND status <> 'completed'`)).rows[0].n === 0, 120_000);
  } finally {
    await engine.stop();
  }
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  child = spawn(process.execPath, [BIN, 'ui', '--port', String(port)], { cwd: ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor('walflow ui to start', async () => out.includes('walflow console on'), 60_000);
}, 180_000);

afterAll(async () => {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
  expect(child.exitCode).toBe(0);
});

describe('the Search page', () => {
  it('shows the nearest chunks of an embedding pipeline, closest first, with their distance', async () => {
    const res = await fetch(`${base}/search?pipeline=console-embed&q=${encodeURIComponent('fixing a flat bike tyre <b>now</b>')}&k=2`);
    expect(res.status).toBe(200);
    const page = await res.text();
    const rows = [...page.matchAll(/<tr><td class="n mono">([\d.]+)<\/td><td class="mono">([^<]*)<\/td>/g)].map((m) => ({ distance: Number(m[1]), key: m[2] }));
    expect(rows).toHaveLength(2);
    expect(rows[0]!.key).toBe('2');
    expect(rows[0]!.distance).toBeLessThanOrEqual(rows[1]!.distance);
    expect(page).toContain('value="fixing a flat bike tyre &lt;b&gt;now&lt;/b&gt;"');
  });
});

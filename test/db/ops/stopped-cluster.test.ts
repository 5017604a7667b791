// Commands that only read or steer runs never start the embedded cluster behind the operator's
// back: with it stopped they exit 3 naming `walflow db start`; with none they create nothing.
// Only `db start`, `run` and the demo start it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { failure, FIXTURE_PIPELINES, walflow } from './support/cli.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'walflow-stopped-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const RUN = '00000000-0000-7000-8000-000000000000';
const COMMANDS = [
  ['status'], ['runs'], ['inspect', RUN], ['retry', RUN], ['retry', '--failed', '--pipeline', 'ops-jobs'], ['cancel', RUN],
  ['migrate'], ['backfill', 'ops-items'], ['search', 'ops-embed', 'bread'],
];

/** What `walflow db start` leaves behind once stopped: an initialized data directory, no server. */
function stoppedCluster(name: string): string {
  const dataDir = path.join(root, name);
  fs.mkdirSync(dataDir);
  fs.writeFileSync(path.join(dataDir, 'PG_VERSION'), '17\n');
  fs.writeFileSync(path.join(dataDir, 'walflow-cluster.json'), JSON.stringify({ port: 54998, user: 'postgres', database: 'walflow', socketDir: dataDir }));
  return dataDir;
}

describe('a stopped embedded cluster stays stopped', () => {
  it.concurrent.each(COMMANDS)('walflow %s: exit 3, "the embedded cluster is not running: walflow db start"', async (...args) => {
    const dataDir = stoppedCluster(args.join('-').replace(/[^a-z0-9-]/gi, '_'));
    const r = failure(await walflow(args, { WALFLOW_DATA_DIR: dataDir, WALFLOW_PIPELINES_DIR: FIXTURE_PIPELINES }));
    expect(r).toMatchObject({ code: 3, lines: 1, stack: false, stdout: '' });
    expect(r.line).toBe('walflow: the embedded cluster is not running: walflow db start');
    // No attempt to start it: pg_ctl start would have written the server log.
    expect(fs.existsSync(path.join(dataDir, 'postgres.log'))).toBe(false);
  });

  it('with no cluster at all, a read-only command creates none (exit 3)', async () => {
    const dataDir = path.join(root, 'none');
    const r = failure(await walflow(['status', '--json'], { WALFLOW_DATA_DIR: dataDir }));
    expect(r).toMatchObject({ code: 3, lines: 1, stack: false, stdout: '' });
    expect(r.line).toBe(`walflow: there is no embedded cluster in ${dataDir} (and DATABASE_URL is not set): walflow db start`);
    expect(fs.existsSync(dataDir)).toBe(false);
  });

  it('`walflow pipelines` needs no database at all', async () => {
    const dataDir = stoppedCluster('pipelines');
    const r = await walflow(['pipelines', '--json'], { WALFLOW_DATA_DIR: dataDir, WALFLOW_PIPELINES_DIR: FIXTURE_PIPELINES });
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.join(dataDir, 'postgres.log'))).toBe(false);
  });
});

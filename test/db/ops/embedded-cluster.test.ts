// The embedded default in a deep directory: PostgreSQL cannot put its Unix socket there (a socket
// path holds at most 107 bytes) and used to refuse to start; walflow now gives it a short socket
// directory, which answers, and removes it with the cluster.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { EmbeddedCluster, socketDirFor } from '../../../src/db/embedded-cluster.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'walflow-deep-'));
fs.chmodSync(root, 0o755);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

async function selectOne(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<{ n: number }>('SELECT 1 AS n')).rows[0]!.n;
  } finally {
    await c.end();
  }
}

describe('embedded cluster socket', () => {
  it('a short data directory keeps its socket; a deep one gets a short directory of its own', () => {
    expect(socketDirFor('/srv/app/.walflow/pg')).toBe('/srv/app/.walflow/pg');
    const deep = `/home/someone/${'nested/'.repeat(14)}.walflow/pg`;
    const dir = socketDirFor(deep);
    expect(dir).toMatch(/^\/tmp\/walflow-[0-9a-f]{16}$/);
    expect(socketDirFor(deep)).toBe(dir); // the same every time: a restart finds it
  });

  it('starts in a directory too deep for a socket, answers over the socket and over TCP, and cleans up', async () => {
    let dataDir = root;
    for (let i = 0; Buffer.byteLength(path.join(dataDir, '.s.PGSQL.65535')) <= 110; i++) {
      dataDir = path.join(dataDir, `level-${i}`);
      fs.mkdirSync(dataDir);
      fs.chmodSync(dataDir, 0o755);
    }
    dataDir = path.join(dataDir, 'pg');
    const cluster = new EmbeddedCluster({ dataDir, settings: { fsync: 'off' } });
    try {
      const url = await cluster.start();
      const state = cluster.readState()!;
      expect(url).toBe(`postgres://postgres@127.0.0.1:${state.port}/walflow`);
      expect(state.socketDir).toBe(socketDirFor(dataDir));
      const socketUrl = cluster.socketUrlFor(state);
      expect(socketUrl).toBe(`postgresql://postgres@${encodeURIComponent(state.socketDir!)}:${state.port}/walflow`);
      expect(await selectOne(socketUrl)).toBe(1);
      expect(await selectOne(url)).toBe(1);
      // Started again while running: the same URL.
      expect(await cluster.start()).toBe(url);
    } finally {
      const socketDir = cluster.readState()?.socketDir;
      await cluster.destroy();
      expect(fs.existsSync(dataDir)).toBe(false);
      if (socketDir) expect(fs.existsSync(socketDir)).toBe(false);
    }
  }, 60_000);
});

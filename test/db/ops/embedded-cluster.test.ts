// The embedded default in a deep directory: PostgreSQL cannot put its Unix socket there (a socket
// path holds at most 107 bytes) and used to refuse to start; walflow now gives it a private short
// socket directory under /tmp, which answers, comes back if cleaned away, is refused if someone
// else made it, and goes with the cluster.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { EmbeddedCluster } from '../../../src/db/embedded-cluster.js';
import { socketFitsIn } from '../../../src/db/socket-dir.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'walflow-deep-'));
fs.chmodSync(root, 0o755);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** A fresh data directory whose socket path would pass 107 bytes. */
function deepDir(name: string): string {
  let dir = path.join(root, name);
  fs.mkdirSync(dir);
  fs.chmodSync(dir, 0o755);
  for (let i = 0; socketFitsIn(dir); i++) {
    dir = path.join(dir, `level-${i}`);
    fs.mkdirSync(dir);
    fs.chmodSync(dir, 0o755);
  }
  return path.join(dir, 'pg');
}

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
  it('a socket path must fit in 107 bytes', () => {
    expect(socketFitsIn('/srv/app/.walflow/pg')).toBe(true);
    expect(socketFitsIn(`/home/someone/${'nested/'.repeat(14)}.walflow/pg`)).toBe(false);
  });

  it('starts in a directory too deep for a socket, answers over the socket and over TCP, and cleans up', async () => {
    const dataDir = deepDir('fresh');
    const cluster = new EmbeddedCluster({ dataDir, settings: { fsync: 'off' } });
    try {
      const url = await cluster.start();
      const state = cluster.readState()!;
      expect(url).toMatch(new RegExp(`^postgres://postgres:[^@]+@127\\.0\\.0\\.1:${state.port}/walflow$`));
      expect(state.socketDir).toMatch(/^\/tmp\/walflow-/);
      expect(fs.statSync(state.socketDir!).mode & 0o777).toBe(0o700);
      const socketUrl = cluster.socketUrlFor(state);
      expect(socketUrl).toBe(`postgresql://postgres@${encodeURIComponent(state.socketDir!)}:${state.port}/walflow`);
      expect(await selectOne(socketUrl)).toBe(1);
      expect(await selectOne(url)).toBe(1);
      // Started again while running: the same URL.
      expect(await cluster.start()).toBe(url);

      // /tmp cleaned while stopped: the directory comes back. Planted by someone else: refused.
      await cluster.stop();
      fs.rmSync(state.socketDir!, { recursive: true });
      await cluster.start();
      expect(await selectOne(socketUrl)).toBe(1);
      await cluster.stop();
      fs.rmSync(state.socketDir!, { recursive: true });
      fs.mkdirSync(state.socketDir!, { mode: 0o777 });
      fs.chmodSync(state.socketDir!, 0o777);
      await expect(cluster.start()).rejects.toThrow(`socket directory ${state.socketDir} is not a private directory of the server's user`);
    } finally {
      const socketDir = cluster.readState()?.socketDir;
      await cluster.destroy();
      expect(fs.existsSync(dataDir)).toBe(false);
      if (socketDir) expect(fs.existsSync(socketDir)).toBe(false);
    }
  }, 90_000);

  it('a deep cluster made before socket directories were recorded gets one at its next start', async () => {
    const dataDir = deepDir('old');
    const cluster = new EmbeddedCluster({ dataDir, settings: { fsync: 'off' } });
    try {
      await cluster.start();
      await cluster.stop();
      // What such a cluster looks like: no socketDir in its state, its socket set in the data directory.
      const { socketDir, ...old } = cluster.readState()!;
      fs.rmSync(socketDir!, { recursive: true });
      fs.writeFileSync(path.join(dataDir, 'walflow-cluster.json'), JSON.stringify(old));
      const conf = path.join(dataDir, 'walflow.conf');
      fs.writeFileSync(conf, fs.readFileSync(conf, 'utf8').replace(/^unix_socket_directories = .*$/m, `unix_socket_directories = '${dataDir}'`));
      const url = await cluster.start();
      expect(await selectOne(url)).toBe(1);
      expect(cluster.readState()!.socketDir).toMatch(/^\/tmp\/walflow-/);
    } finally {
      await cluster.destroy();
    }
  }, 90_000);
});

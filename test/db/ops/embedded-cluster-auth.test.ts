// The embedded cluster authenticates: over TCP (open to every local user) a generated password,
// kept in a file only its owner can read and carried in the URL `walflow db url` prints; the Unix
// socket stays passwordless but private. A cluster made by an older walflow (trust for every
// connection, no password file) is switched over at its next `walflow db start`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PASSWORD_FILE } from '../../../src/db/cluster-auth.js';
import { EmbeddedCluster } from '../../../src/db/embedded-cluster.js';
import { redactSecrets } from '../../../src/errors.js';
import { walflow, walflowJson } from './support/cli.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'walflow-auth-'));
fs.chmodSync(root, 0o755);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** 'ok', or the SQLSTATE (or message) the connection is refused with. */
async function connect(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return 'ok';
  } catch (err) {
    const e = err as { code?: string; message: string };
    return e.code ?? e.message;
  } finally {
    await c.end().catch(() => undefined);
  }
}

function withPassword(url: string, password: string | null): string {
  const u = new URL(url);
  u.password = password ?? '';
  return u.toString();
}

/** Wrong and missing passwords are refused over TCP; the given URL is let in. */
async function expectPasswordRequired(url: string): Promise<void> {
  expect(await connect(url)).toBe('ok');
  expect(await connect(withPassword(url, 'wrong-password'))).toBe('28P01');
  // No password at all: the server asks for one the client does not have.
  expect(await connect(withPassword(url, null))).not.toBe('ok');
  const other = new URL(url);
  other.username = 'nobody_here';
  expect(await connect(other.toString())).toBe('28P01');
}

describe('embedded cluster authentication', () => {
  it('TCP takes the generated password (mode 0600 file, in the printed URL, redacted in logs); the socket is private', async () => {
    const dataDir = path.join(root, 'fresh');
    const cluster = new EmbeddedCluster({ dataDir, settings: { fsync: 'off' } });
    try {
      const url = await cluster.start();
      const file = path.join(dataDir, PASSWORD_FILE);
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      const password = fs.readFileSync(file, 'utf8').trim();
      expect(password.length).toBeGreaterThanOrEqual(32);
      const state = cluster.readState()!;
      expect(url).toBe(`postgres://postgres:${password}@127.0.0.1:${state.port}/walflow`);
      await expectPasswordRequired(url);
      // What `walflow db url` and `db status` print is that URL, and it works.
      const printed = await walflowJson<{ url: string }>(['db', 'url'], { WALFLOW_DATA_DIR: dataDir });
      expect(printed.json.url).toBe(url);
      expect((await walflow(['db', 'url'], { WALFLOW_DATA_DIR: dataDir })).stdout).toBe(`${url}\n`);
      // Logs and error messages never show it, in a URL or alone.
      expect(redactSecrets(`connecting to ${url} with ${password}`)).toBe(`connecting to postgres://postgres:***@127.0.0.1:${state.port}/walflow with ***`);
      // The socket: passwordless, in a directory and with permissions only the server's user passes.
      const socketDir = state.socketDir ?? dataDir;
      expect(fs.statSync(socketDir).mode & 0o077).toBe(0);
      expect(fs.statSync(path.join(socketDir, `.s.PGSQL.${state.port}`)).mode & 0o777).toBe(0o700);
      expect(await connect(cluster.socketUrlFor(state))).toBe('ok');
      // Started again (running): the same URL; after a restart: the same password.
      expect(await cluster.start()).toBe(url);
      await cluster.restart();
      expect(await connect(url)).toBe('ok');
      // A password file others can read is refused, with the fix.
      fs.chmodSync(file, 0o644);
      expect(() => cluster.urlFor(state)).toThrow(`${file} holds the embedded cluster's password and is readable by others: chmod 600 ${file}`);
      fs.chmodSync(file, 0o600);
    } finally {
      await cluster.destroy();
    }
  }, 120_000);

  it('a cluster made by an older walflow (trust, no password file) is switched to passwords at its next db start, running or stopped', async () => {
    const dataDir = path.join(root, 'old');
    const cluster = new EmbeddedCluster({ dataDir, settings: { fsync: 'off' } });
    /** Turns the running cluster into what the previous code made: trust everywhere, no password. */
    const makeOld = async (): Promise<void> => {
      fs.rmSync(path.join(dataDir, PASSWORD_FILE));
      fs.writeFileSync(path.join(dataDir, 'pg_hba.conf'), 'local all all trust\nlocal replication all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n');
      const conf = path.join(dataDir, 'walflow.conf');
      fs.writeFileSync(conf, fs.readFileSync(conf, 'utf8').replace(/^(unix_socket_permissions|password_encryption) = .*\n/gm, ''));
      const c = new pg.Client({ connectionString: cluster.socketUrlFor(cluster.readState()!, 'postgres') });
      await c.connect();
      await c.query('ALTER ROLE postgres PASSWORD NULL');
      await c.query('SELECT pg_reload_conf()');
      await c.end();
    };
    try {
      await cluster.start();
      // Running under the old setup: any password, or none, gets in.
      await makeOld();
      const state = cluster.readState()!;
      const oldUrl = `postgres://postgres:anything@127.0.0.1:${state.port}/walflow`;
      expect(await connect(oldUrl)).toBe('ok');
      // `db start` while it runs: upgraded in place, without a restart.
      const url = await cluster.start();
      expect(fs.statSync(path.join(dataDir, PASSWORD_FILE)).mode & 0o777).toBe(0o600);
      await expectPasswordRequired(url);
      expect(await connect(oldUrl)).toBe('28P01');

      // Stopped under the old setup: upgraded at its next start.
      await makeOld();
      await cluster.stop();
      expect(fs.existsSync(path.join(dataDir, PASSWORD_FILE))).toBe(false);
      const url2 = await cluster.start();
      expect(url2).not.toBe(url); // a new password was generated
      await expectPasswordRequired(url2);
    } finally {
      await cluster.destroy();
    }
  }, 120_000);
});

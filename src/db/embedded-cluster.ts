// The embedded default: a local PostgreSQL cluster that walflow creates, starts and stops itself,
// configured for logical replication, with pgvector available.
import { spawn, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { UserError } from '../errors.js';
import { AUTH_SETTINGS, ensurePassword, hbaIsCurrent, readPassword, scramVerifier, writeHba } from './cluster-auth.js';
import { assertPgvectorInstalled, findPgBinaries, type PgBinaries } from './pg-binaries.js';
import { makePrivateSocketDir, socketFitsIn } from './socket-dir.js';

export interface ClusterOptions {
  dataDir: string;
  /** Extra postgresql.conf settings (the test harness turns fsync off, for instance). */
  settings?: Record<string, string | number>;
  /** PATH to search for binaries before the usual places. */
  searchPath?: string;
}

export interface ClusterState {
  port: number;
  user: string;
  database: string;
  /** Where the server's Unix socket lives (absent in clusters made before it was recorded: the data directory). */
  socketDir?: string;
}

export interface ClusterStatus {
  initialized: boolean;
  running: boolean;
  /** Over TCP on 127.0.0.1: for people and tools. */
  url?: string;
  /** Over the Unix socket (see socketUrlFor). */
  socketUrl?: string;
  dataDir: string;
}

const STATE_FILE = 'walflow-cluster.json';
// Not "walflow": with the default search_path ("$user", public) a role named like walflow's schema would
// create every unqualified table inside schema walflow.
const SUPERUSER = 'postgres';
const DATABASE = 'walflow';

const BASE_SETTINGS: Record<string, string | number> = {
  listen_addresses: "'127.0.0.1'",
  wal_level: 'logical',
  max_replication_slots: 64,
  max_wal_senders: 64,
  max_connections: 200,
  // Keep a lagging slot from filling the disk of a developer machine.
  max_slot_wal_keep_size: "'4GB'",
  shared_buffers: "'256MB'",
};

interface RunAs {
  uid: number;
  gid: number;
  name: string;
}

/** initdb and postgres refuse to run as root; as root we run them as the `postgres` system user. */
function unprivilegedUser(): RunAs | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const passwd = fs.existsSync('/etc/passwd') ? fs.readFileSync('/etc/passwd', 'utf8') : '';
  const line = passwd.split('\n').find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (!uid || !gid) {
    throw new UserError('running as root, and initdb refuses root: create a `postgres` system user (installing the postgresql package does), or run walflow as an unprivileged user');
  }
  return { uid: Number(uid), gid: Number(gid), name: 'postgres' };
}

function run(file: string, args: string[], opts: SpawnOptions & { runAs?: RunAs }): Promise<string> {
  const { runAs, ...spawnOpts } = opts;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      ...spawnOpts,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${path.basename(file)} exited with ${code}: ${out.trim()}`))));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** Checks that `runAs` can reach `dir`: every parent must be searchable by that user. */
function assertReachable(dir: string, runAs: RunAs): void {
  let cur = path.dirname(dir);
  while (true) {
    const st = fs.statSync(cur);
    const searchable = st.uid === runAs.uid ? st.mode & 0o100 : st.gid === runAs.gid ? st.mode & 0o010 : st.mode & 0o001;
    if (!searchable) {
      throw new UserError(`the ${runAs.name} user cannot reach ${dir} (${cur} is not searchable by it): set WALFLOW_DATA_DIR to a directory it can reach, e.g. /var/tmp/walflow`);
    }
    const parent = path.dirname(cur);
    if (parent === cur) return;
    cur = parent;
  }
}

export class EmbeddedCluster {
  readonly dataDir: string;
  private readonly bins: PgBinaries;
  private readonly runAs: RunAs | undefined;

  constructor(private readonly opts: ClusterOptions) {
    this.dataDir = path.resolve(opts.dataDir);
    this.bins = findPgBinaries(opts.searchPath);
    this.runAs = unprivilegedUser();
  }

  private get statePath(): string {
    return path.join(this.dataDir, STATE_FILE);
  }

  readState(): ClusterState | undefined {
    if (!fs.existsSync(this.statePath)) return undefined;
    return JSON.parse(fs.readFileSync(this.statePath, 'utf8')) as ClusterState;
  }

  isInitialized(): boolean {
    return fs.existsSync(path.join(this.dataDir, 'PG_VERSION')) && this.readState() !== undefined;
  }

  /** Over TCP, with the cluster's password (none yet for a cluster made before passwords, until its next start). */
  urlFor(state: ClusterState, database = state.database): string {
    const password = readPassword(this.dataDir);
    const auth = password ? `${state.user}:${encodeURIComponent(password)}` : state.user;
    return `postgres://${auth}@127.0.0.1:${state.port}/${encodeURIComponent(database)}`;
  }

  /**
   * The same database over the Unix socket. Not walflow's default: workers gain about 10% engine
   * throughput through it, but after a burst the replication stream lags more: the walsender's
   * sends block on the socket's ~200 KB buffer while Node works through a batch, so it decodes
   * ahead less than over loopback TCP (whose buffers grow to megabytes), and single-row commits
   * right after a 100,000-row burst waited 80-270 ms instead of 4-12 ms. A workers-only process
   * (`walflow run --no-replication`) may use it as its DATABASE_URL.
   */
  socketUrlFor(state: ClusterState, database = state.database): string {
    return `postgresql://${state.user}@${encodeURIComponent(state.socketDir ?? this.dataDir)}:${state.port}/${encodeURIComponent(database)}`;
  }

  async isRunning(): Promise<boolean> {
    if (!this.isInitialized()) return false;
    try {
      await run(this.bins.pgCtl, ['status', '-D', this.dataDir], { runAs: this.runAs });
      return true;
    } catch {
      return false;
    }
  }

  async status(): Promise<ClusterStatus> {
    const state = this.readState();
    const running = await this.isRunning();
    return { initialized: this.isInitialized(), running, dataDir: this.dataDir, ...(state ? { url: this.urlFor(state), socketUrl: this.socketUrlFor(state) } : {}) };
  }

  /** Creates (first time) and starts the cluster; returns its connection URL (TCP). Idempotent. */
  async start(): Promise<string> {
    assertPgvectorInstalled(this.bins);
    if (!this.isInitialized()) await this.init();
    const state = this.readState()!;
    const password = ensurePassword(this.dataDir);
    if (await this.isRunning()) {
      // Made before passwords and started by an older walflow: switch it over without a restart.
      if (!hbaIsCurrent(this.dataDir)) {
        await this.setPassword(state, password);
        writeHba(this.dataDir, this.runAs);
        await run(this.bins.pgCtl, ['reload', '-D', this.dataDir], { runAs: this.runAs });
      }
      return this.urlFor(state);
    }
    if (!state.socketDir && !socketFitsIn(this.dataDir)) {
      // Made before socket directories were recorded, too deep to ever start: give it one now.
      state.socketDir = makePrivateSocketDir(undefined, this.runAs);
      this.writeSettings({ unix_socket_directories: `'${state.socketDir}'` });
      this.writeState(state);
    } else if (state.socketDir && state.socketDir !== this.dataDir) {
      makePrivateSocketDir(state.socketDir, this.runAs); // /tmp may have been cleaned since the last start
    }
    if (!(await portIsFree(state.port))) {
      state.port = await freePort();
      this.writeState(state);
      this.writeSettings({ port: state.port });
    }
    // Every start (re)writes the authentication setup: a cluster made before passwords is upgraded here.
    writeHba(this.dataDir, this.runAs);
    this.writeSettings(AUTH_SETTINGS);
    try {
      await run(this.bins.pgCtl, ['start', '-w', '-t', '60', '-D', this.dataDir, '-l', path.join(this.dataDir, 'postgres.log')], { runAs: this.runAs });
    } catch (err) {
      const log = this.tailLog();
      throw new UserError(`could not start PostgreSQL in ${this.dataDir}: ${(err as Error).message}${log ? `\n${log}` : ''}`);
    }
    await this.setPassword(state, password);
    await this.ensureDatabase(state);
    return this.urlFor(state);
  }

  /** Sets the superuser's password over the private Unix socket (the only passwordless way in). */
  private async setPassword(state: ClusterState, password: string): Promise<void> {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ host: state.socketDir ?? this.dataDir, port: state.port, user: state.user, database: 'postgres' });
    await client.connect();
    try {
      await client.query(`ALTER ROLE "${state.user}" PASSWORD '${scramVerifier(password)}'`);
    } finally {
      await client.end();
    }
  }

  async stop(mode: 'smart' | 'fast' | 'immediate' = 'fast'): Promise<boolean> {
    if (!(await this.isRunning())) return false;
    await run(this.bins.pgCtl, ['stop', '-w', '-m', mode, '-D', this.dataDir], { runAs: this.runAs });
    return true;
  }

  /** Restart, e.g. `immediate` to simulate a crash in fault-injection tests. */
  async restart(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.stop(mode);
    await this.start();
  }

  /** Removes the data directory (stopping the cluster first). */
  async destroy(): Promise<void> {
    await this.stop('immediate').catch(() => false);
    let socketDir: string | undefined;
    try {
      socketDir = this.readState()?.socketDir;
    } catch {
      /* an unreadable state file: nothing to learn from it, the data directory goes anyway */
    }
    if (socketDir && socketDir !== this.dataDir) fs.rmSync(socketDir, { recursive: true, force: true });
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }

  private async init(): Promise<void> {
    if (fs.existsSync(this.dataDir) && fs.readdirSync(this.dataDir).length > 0) {
      throw new UserError(`${this.dataDir} exists and is not an initialized walflow cluster: remove it or set WALFLOW_DATA_DIR elsewhere`);
    }
    fs.mkdirSync(path.dirname(this.dataDir), { recursive: true });
    fs.mkdirSync(this.dataDir, { mode: 0o700 });
    if (this.runAs) {
      assertReachable(this.dataDir, this.runAs);
      fs.chownSync(this.dataDir, this.runAs.uid, this.runAs.gid);
    }
    await run(this.bins.initdb, ['-D', this.dataDir, '-U', SUPERUSER, '--auth-local=trust', '--auth-host=scram-sha-256', '--encoding=UTF8', '--locale=C.UTF-8', '--no-instructions'], { runAs: this.runAs }).catch((err: Error) => {
      throw new UserError(`initdb failed in ${this.dataDir}: ${err.message}`);
    });
    const port = await freePort();
    const socketDir = socketFitsIn(this.dataDir) ? this.dataDir : makePrivateSocketDir(undefined, this.runAs);
    this.writeSettings({ ...BASE_SETTINGS, ...AUTH_SETTINGS, unix_socket_directories: `'${socketDir}'`, ...this.opts.settings, port });
    this.writeState({ port, user: SUPERUSER, database: DATABASE, socketDir });
  }


  /** Settings go to an included file so that postgresql.conf stays the distribution's. */
  private writeSettings(settings: Record<string, string | number>): void {
    const file = path.join(this.dataDir, 'walflow.conf');
    const existing = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    const merged = new Map<string, string>();
    for (const line of existing.split('\n')) {
      const m = /^(\w+)\s*=\s*(.*)$/.exec(line);
      if (m?.[1] && m[2] !== undefined) merged.set(m[1], m[2]);
    }
    for (const [k, v] of Object.entries(settings)) merged.set(k, String(v));
    fs.writeFileSync(file, [...merged].map(([k, v]) => `${k} = ${v}`).join('\n') + '\n');
    const conf = path.join(this.dataDir, 'postgresql.conf');
    if (!fs.readFileSync(conf, 'utf8').includes("include_if_exists = 'walflow.conf'")) {
      fs.appendFileSync(conf, "\ninclude_if_exists = 'walflow.conf'\n");
    }
    if (this.runAs) fs.chownSync(file, this.runAs.uid, this.runAs.gid);
  }

  private writeState(state: ClusterState): void {
    fs.writeFileSync(this.statePath, JSON.stringify(state, null, 2) + '\n');
    if (this.runAs) fs.chownSync(this.statePath, this.runAs.uid, this.runAs.gid);
  }

  private async ensureDatabase(state: ClusterState): Promise<void> {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: this.urlFor(state, 'postgres') });
    await client.connect();
    try {
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [state.database]);
      if (!rowCount) await client.query(`CREATE DATABASE "${state.database}"`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // created concurrently
      });
    } finally {
      await client.end();
    }
  }

  private tailLog(): string {
    const log = path.join(this.dataDir, 'postgres.log');
    if (!fs.existsSync(log)) return '';
    return fs.readFileSync(log, 'utf8').split('\n').slice(-8).join('\n');
  }
}

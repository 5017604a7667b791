// Shared by the benchmarks: a database to measure on (DATABASE_URL, or a throwaway embedded
// cluster), RSS sampling, and the closing table + JSON line.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EmbeddedCluster } from '../src/db/embedded-cluster.js';
import { migrate } from '../src/db/migrate.js';

export interface BenchDb {
  url: string;
  close: () => Promise<void>;
}

/** A fresh migrated database on DATABASE_URL's server, or on a throwaway local cluster. */
export async function benchDatabase(name: string): Promise<BenchDb> {
  let serverUrl = process.env.WALFLOW_BENCH_DATABASE_URL;
  let cluster: EmbeddedCluster | undefined;
  let dir: string | undefined;
  if (!serverUrl) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walflow-bench-'));
    fs.chmodSync(dir, 0o755);
    // The embedded default's settings (fsync on): numbers a user of `walflow db start` would see.
    cluster = new EmbeddedCluster({ dataDir: path.join(dir, 'data') });
    serverUrl = await cluster.start();
  }
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  const db = `${name}_${process.pid}`;
  await admin.query(`DROP DATABASE IF EXISTS ${db}`);
  await admin.query(`CREATE DATABASE ${db}`);
  await admin.end();
  const u = new URL(serverUrl);
  u.pathname = `/${db}`;
  const url = u.toString();
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query('CREATE EXTENSION IF NOT EXISTS vector').catch(() => undefined);
  await migrate(c);
  await c.end();
  return {
    url,
    close: async () => {
      const a = new pg.Client({ connectionString: serverUrl });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await a.end();
      if (cluster) await cluster.destroy();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `n` connected clients, for measurements that load the server from several connections at once. */
export async function connectClients(url: string, n: number): Promise<pg.Client[]> {
  return Promise.all(Array.from({ length: n }, async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    return c;
  }));
}

export class RssSampler {
  peak = 0;
  private timer: NodeJS.Timeout;
  constructor(everyMs = 50) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }
  sample(): void {
    this.peak = Math.max(this.peak, process.memoryUsage().rss);
  }
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return Math.round(this.peak / 1024 / 1024);
  }
}

export function printTable(rows: Record<string, string | number>[]): void {
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0]!);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(width[i]!)).join('  ');
  console.log(line(cols));
  console.log(line(width.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(cols.map((c) => String(r[c]))));
}

export function machine(): string {
  return `${os.cpus().length} cores ${os.cpus()[0]?.model ?? ''}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`;
}

// Provides one PostgreSQL server (wal_level=logical, pgvector) for the whole test run and a migrated
// template database that each test file clones. Where it comes from, in order:
//   1. WALFLOW_TEST_DATABASE_URL (any database on the server; we create our own databases there)
//   2. testcontainers, when a Docker engine answers
//   3. a throwaway local cluster provisioned by walflow's embedded-cluster module
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { EmbeddedCluster } from '../../src/db/embedded-cluster.js';
import { migrate } from '../../src/db/migrate.js';
import { TEMPLATE_DB } from './names.js';

declare module 'vitest' {
  export interface ProvidedContext {
    walflowAdminUrl: string;
    walflowServerKind: string;
  }
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

async function dockerAnswers(): Promise<boolean> {
  if (!fs.existsSync('/var/run/docker.sock') && !process.env.DOCKER_HOST) return false;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

async function buildTemplate(adminUrl: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    // A leftover template from an aborted run may be stale: rebuild it every run.
    await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DB} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${TEMPLATE_DB}`);
  } finally {
    await admin.end();
  }
  const tpl = new pg.Client({ connectionString: withDatabase(adminUrl, TEMPLATE_DB) });
  await tpl.connect();
  try {
    await tpl.query('CREATE EXTENSION IF NOT EXISTS vector');
    await migrate(tpl);
  } finally {
    await tpl.end();
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let adminUrl: string;
  let kind: string;
  let teardown = async (): Promise<void> => {};

  if (process.env.WALFLOW_TEST_DATABASE_URL) {
    adminUrl = process.env.WALFLOW_TEST_DATABASE_URL;
    kind = 'external';
  } else if (await dockerAnswers()) {
    const { GenericContainer, Wait } = await import('testcontainers');
    const container = await new GenericContainer('pgvector/pgvector:pg17')
      .withEnvironment({ POSTGRES_PASSWORD: 'walflow', POSTGRES_USER: 'postgres', POSTGRES_DB: 'walflow' })
      .withCommand(['postgres', '-c', 'wal_level=logical', '-c', 'max_replication_slots=64', '-c', 'max_wal_senders=64', '-c', 'fsync=off'])
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start();
    adminUrl = `postgres://postgres:walflow@${container.getHost()}:${container.getMappedPort(5432)}/walflow`;
    kind = 'testcontainers';
    teardown = async () => {
      await container.stop();
    };
  } else {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walflow-test-pg-'));
    fs.chmodSync(dir, 0o755);
    // fsync off: a crashed *process* (postgres -m immediate, SIGKILL) loses nothing without it;
    // only an OS crash would, which tests do not simulate.
    const cluster = new EmbeddedCluster({ dataDir: path.join(dir, 'data'), settings: { fsync: 'off', full_page_writes: 'off', max_connections: 300 } });
    adminUrl = await cluster.start();
    kind = 'embedded';
    teardown = async () => {
      await cluster.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    };
  }

  await buildTemplate(adminUrl);
  project.provide('walflowAdminUrl', adminUrl);
  project.provide('walflowServerKind', kind);
  return teardown;
}

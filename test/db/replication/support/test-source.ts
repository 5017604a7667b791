// Shared by the replication db tests: pipelines, a source with test-friendly timings, polling.
import pg from 'pg';
import pino from 'pino';
import { definePipeline, type Pipeline } from '../../../../src/pipeline/define.js';
import type { SourceDefinition } from '../../../../src/pipeline/types.js';
import { ReplicationSource, type ReplicationSourceOptions } from '../../../../src/replication/replication-source.js';
import { dropPublication } from '../../../../src/replication/setup/publication.js';
import { dropSlot } from '../../../../src/replication/setup/slot.js';

export const testLogger = pino({ level: process.env.WALFLOW_TEST_LOG ?? 'silent' });

export function pipeline(name: string, source: SourceDefinition): Pipeline {
  return definePipeline({ name, version: 'v1', source, steps: [{ name: 'noop', run: () => null }] });
}

export async function register(db: pg.Pool, ...names: string[]): Promise<void> {
  for (const n of names) {
    await db.query(`INSERT INTO walflow.pipelines (name, version, steps) VALUES ($1, 'v1', '{noop}') ON CONFLICT DO NOTHING`, [n]);
  }
}

let seq = 0;
/** A slot name unique within the test file's database. */
export function slotName(prefix = 'wf'): string {
  return `${prefix}_${process.pid}_${++seq}`;
}

export function source(url: string, pipelines: Pipeline[], extra: Partial<ReplicationSourceOptions> = {}): ReplicationSource {
  const slot = extra.slotName ?? slotName();
  return new ReplicationSource({
    url,
    pipelines,
    slotName: slot,
    publicationName: extra.publicationName ?? `${slot}_pub`,
    logger: testLogger,
    batch: { maxItems: 500, maxWaitMs: 5 },
    heartbeatMs: 200,
    standbyPollMs: 200,
    ...extra,
  });
}

/** Stops the source and removes its slot and publication (slots must not leak). */
export async function teardown(db: pg.Pool, src: ReplicationSource, slot: string, publication = `${slot}_pub`): Promise<void> {
  await src.stop();
  await dropSlot(db, slot);
  await dropPublication(db, publication);
}

// One waitFor for every test (it was duplicated here).
export { waitFor } from '../../../harness/wait.js';

export async function count(db: pg.Pool, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await db.query<{ n: string }>(sql, params);
  return Number(rows[0]?.n ?? 0);
}

export interface RunRow {
  pipeline: string;
  key: string | null;
  status: string;
  input: { op: string; table: string; key: Record<string, unknown> | null; row: Record<string, unknown> | null; old: Record<string, unknown> | null; lsn: string; index: number };
  dedupe_id: string;
}

/** A pipeline's runs in WAL order (runs of different keys are started by parallel writers, so start order is WAL order only per key). */
export async function runsOf(db: pg.Pool, pipelineName: string): Promise<RunRow[]> {
  const { rows } = await db.query<RunRow>(`SELECT pipeline, key, status, input, dedupe_id FROM walflow.runs WHERE pipeline = $1 ORDER BY source_lsn, source_index`, [pipelineName]);
  return rows;
}

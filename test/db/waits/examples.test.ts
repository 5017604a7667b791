// The example pipelines (pipelines/examples/) under a real `walflow run`. Comment moderation, driven as the
// README tells a user to: comments inserted with SQL, a flagged one decided by key with the
// `walflow signal --pipeline` CLI, a clean one published with no wait at all.
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';
import { startWalflowRun, walflowJson, type RunningWalflow } from '../ops/support/cli.js';

const EXAMPLES = fileURLToPath(new URL('../../../pipelines/examples/', import.meta.url));
const db = useTestDatabase();
const procs: RunningWalflow[] = [];
// Before the harness's own afterEach (hooks run in reverse), which checks that no slot leaked.
afterEach(async () => {
  for (const p of procs) await p.stop().catch(() => undefined);
  // The slot outlives `walflow run` on purpose (a restart resumes from it); the test drops it.
  await db.pool.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'walflow_examples'`);
});

const q = async (sql: string, params: unknown[] = []) => (await db.pool.query(sql, params)).rows;
const comment = async (id: string) => (await q('SELECT status FROM comments WHERE id = $1', [id]))[0]?.status as string;
const runOf = async (id: string) => (await q(`SELECT id, status FROM walflow.runs WHERE pipeline = 'comment-moderation' AND key = $1`, [id]))[0] as { id: string; status: string } | undefined;

describe('example: comment moderation', () => {
  it('publishes a clean comment at once; a flagged one waits for the moderator signal sent by key', async () => {
    await q(`CREATE TABLE comments (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, author text NOT NULL,
                                    body text NOT NULL, status text NOT NULL DEFAULT 'pending')`);
    const env = { DATABASE_URL: db.url, WALFLOW_PIPELINES_DIR: EXAMPLES, WALFLOW_POLL_INTERVAL_MS: '100',
      WALFLOW_SLOT_NAME: 'walflow_examples', WALFLOW_PUBLICATION_NAME: 'walflow_examples' };
    procs.push(await startWalflowRun(['--only', 'comment-moderation'], env));

    const [clean, spam, other] = (await q(`INSERT INTO comments (author, body) VALUES
      ('ann', 'Lovely recipe, thanks!'), ('bot', 'Win free money at www.example.com'), ('cy', 'Best casino in town')
      RETURNING id::text`)).map((r) => r.id as string) as [string, string, string];

    // The clean one: published by the pipeline, its review step skipped, never parked.
    await waitFor('the clean comment published', async () => (await comment(clean)) === 'published', 30_000);
    const cleanRun = (await runOf(clean))!;
    expect(cleanRun.status).toBe('completed');
    expect(await q('SELECT step, outcome FROM walflow.run_timeline WHERE run_id = $1 ORDER BY step_index', [cleanRun.id]))
      .toEqual([{ step: 'classify', outcome: 'completed' }, { step: 'review', outcome: 'skipped' }, { step: 'apply', outcome: 'completed' }]);

    // The flagged ones are parked on the signal, and walflow.status counts them as such.
    await waitFor('two comments awaiting a moderator', async () =>
      (await q(`SELECT awaiting_signal FROM walflow.status WHERE pipeline = 'comment-moderation'`))[0]?.awaiting_signal === '2', 30_000);
    expect(await comment(spam)).toBe('pending');

    // The moderator decides by key through the CLI; only that comment moves, exactly once.
    const sent = await walflowJson<{ signal: number }>(['signal', '--pipeline', 'comment-moderation', spam, 'moderation', '{"decision": "hide", "moderator": "ann"}'], env);
    expect(sent.json.signal).toBeGreaterThan(0);
    await waitFor('the flagged comment hidden', async () => (await runOf(spam))?.status === 'completed', 30_000);
    expect(await comment(spam)).toBe('hidden');
    expect(await q('SELECT comment_id::text AS id, status, decided_by, reasons FROM moderation_log ORDER BY comment_id'))
      .toEqual([
        { id: clean, status: 'published', decided_by: 'auto', reasons: [] },
        { id: spam, status: 'hidden', decided_by: 'ann', reasons: ['banned word "free money"', 'contains a link'] },
      ]);
    const status = await walflowJson<{ pipelines: Record<string, unknown>[] }>(['status'], env);
    expect(status.json.pipelines).toEqual([expect.objectContaining({ pipeline: 'comment-moderation', awaiting_signal: 1 })]);
    expect(await comment(other)).toBe('pending');
  });

  it('monthly invoices: one child run per customer, joined in customer order into the month total', async () => {
    const env = { DATABASE_URL: db.url, WALFLOW_PIPELINES_DIR: EXAMPLES, WALFLOW_POLL_INTERVAL_MS: '100' };
    procs.push(await startWalflowRun(['--only', 'monthly-invoices,invoice-customer'], env));
    const [{ id }] = await q(`SELECT walflow.start('monthly-invoices', $1) AS id`, [JSON.stringify({ month: '2026-11', orders: [
      { customer: 'globex', amount: 80 }, { customer: 'acme', amount: 120.5 }, { customer: 'acme', amount: 19.5 }] })]) as [{ id: string }];
    await waitFor('the month invoiced', async () => (await q('SELECT status FROM walflow.runs WHERE id = $1', [id]))[0]?.status === 'completed', 30_000);
    expect((await q('SELECT walflow.result($1) AS r', [id]))[0].r).toEqual({ month: '2026-11', customers: 2, total: 220 });
    expect(await q('SELECT customer, total::float8 AS total FROM invoices ORDER BY customer')).toEqual([{ customer: 'acme', total: 140 }, { customer: 'globex', total: 80 }]);
    expect(await q(`SELECT key, status FROM walflow.runs WHERE parent_run_id = $1 ORDER BY key`, [id]))
      .toEqual([{ key: '2026-11:acme', status: 'completed' }, { key: '2026-11:globex', status: 'completed' }]);
  });
});

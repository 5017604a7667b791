// Traces: with an OpenTelemetry SDK registered (the in-memory exporter), every execution of a run is
// a span, each step attempt a child span, with pipeline, run id, step, attempt and outcome; a run
// whose input carries a traceparent (SQL/TS `_trace`, or a WAL row's `_trace` column) joins that trace.
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../../src/config/config.js';
import { Engine } from '../../../src/engine/engine.js';
import { silentLogger } from '../../../src/log.js';
import { startWalflow } from '../../../src/ops/runner.js';
import { definePipeline } from '../../../src/pipeline/define.js';
import { dropSlot } from '../../../src/replication/setup/slot.js';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';

const db = useTestDatabase();
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let engine: Engine | undefined;

beforeAll(() => {
  trace.setGlobalTracerProvider(provider);
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
});
beforeEach(() => exporter.reset());
afterEach(async () => {
  await engine?.stop();
  engine = undefined;
});

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';

const flaky = definePipeline({
  name: 'traced',
  steps: [
    { name: 'prepare', run: () => ({ ok: true }) },
    { name: 'call', retry: { maxAttempts: 3, initialDelayMs: 20 }, run: (ctx) => {
      if (ctx.attempt === 1) throw new Error('upstream 503');
      return { attempt: ctx.attempt };
    } },
  ],
});

async function startEngine(): Promise<Engine> {
  engine = new Engine({ url: db.url, pipelines: [flaky], pollIntervalMs: 50, leaseMs: 2000 });
  await engine.register();
  await engine.runWorkers();
  return engine;
}

const attr = (s: ReadableSpan, k: string) => s.attributes[k];
const spansOf = (runId: string) => exporter.getFinishedSpans().filter((s) => attr(s, 'walflow.run_id') === runId);

async function completed(runId: string): Promise<void> {
  await waitFor(`run ${runId} completed`, async () => (await db.pool.query('SELECT status FROM walflow.runs WHERE id = $1', [runId])).rows[0]?.status === 'completed');
  // The run span ends right after the completing checkpoint.
  await waitFor('the completing run span', async () => spansOf(runId).some((s) => s.name === 'walflow.run traced' && attr(s, 'walflow.outcome') === 'completed'));
}

describe('traces', () => {
  it('a run started from SQL with _trace: run spans per execution, step spans per attempt, all in the caller\'s trace', async () => {
    await startEngine();
    const { rows } = await db.pool.query(`SELECT walflow.start('traced', $1) AS id`, [{ doc: 1, _trace: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` } }]);
    const id = rows[0].id as string;
    await completed(id);

    const spans = spansOf(id);
    const runs = spans.filter((s) => s.name === 'walflow.run traced').sort((a, b) => Number(attr(a, 'walflow.attempt')) - Number(attr(b, 'walflow.attempt')));
    // Attempt 1 of `call` failed: that execution ended `waiting`; the retry completed the run.
    expect(runs.map((s) => [attr(s, 'walflow.outcome'), attr(s, 'walflow.attempt'), attr(s, 'walflow.pipeline')])).toEqual([
      ['waiting', 1, 'traced'], ['completed', 2, 'traced'],
    ]);
    for (const r of runs) {
      expect(r.spanContext().traceId).toBe(TRACE_ID);
      expect(r.parentSpanContext?.spanId).toBe(PARENT_ID);
    }
    const steps = spans.filter((s) => s.name.startsWith('walflow.step '));
    expect(steps.map((s) => [attr(s, 'walflow.step'), attr(s, 'walflow.attempt'), attr(s, 'walflow.outcome')])).toEqual([
      ['prepare', 1, 'ok'], ['call', 1, 'error'], ['call', 2, 'ok'],
    ]);
    const failedCall = steps[1]!;
    expect(failedCall.status.message).toBe('upstream 503');
    expect(failedCall.events.some((e) => e.name === 'exception')).toBe(true);
    // Each step span is the child of the run execution that ran it.
    expect(steps[0]!.parentSpanContext?.spanId).toBe(runs[0]!.spanContext().spanId);
    expect(steps[2]!.parentSpanContext?.spanId).toBe(runs[1]!.spanContext().spanId);
    expect(steps.every((s) => s.spanContext().traceId === TRACE_ID)).toBe(true);
  });

  it('a WAL-shaped input carries it in the row\'s _trace column (text); without one a run starts its own trace', async () => {
    await startEngine();
    const withRow = await engine!.start('traced', { row: { id: 7, _trace: JSON.stringify({ traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` }) } });
    const plain = await engine!.start('traced', { doc: 2 });
    const broken = await engine!.start('traced', { _trace: { traceparent: 'not-a-traceparent' } });
    await completed(withRow);
    await completed(plain);
    await completed(broken);
    const rootOf = (id: string) => spansOf(id).find((s) => s.name === 'walflow.run traced')!;
    expect(rootOf(withRow).spanContext().traceId).toBe(TRACE_ID);
    for (const id of [plain, broken]) {
      expect(rootOf(id).spanContext().traceId).not.toBe(TRACE_ID);
      expect(rootOf(id).parentSpanContext).toBeUndefined();
    }
  });

  it("a run started from WAL joins the trace in its row's _trace column", async () => {
    const slot = `wf_trace_${randomBytes(4).toString('hex')}`;
    await db.pool.query('CREATE TABLE traced_rows (id int PRIMARY KEY, body text, _trace text)');
    const fromWal = definePipeline({ name: 'traced-wal', source: { table: 'traced_rows', events: ['insert'] }, steps: [{ name: 'read', run: () => null }] });
    const wf = await startWalflow({ url: db.url, config: loadConfig({ databaseUrl: db.url, slotName: slot, publicationName: slot, pollIntervalMs: 50 }, {}), pipelines: [fromWal], log: silentLogger });
    try {
      await db.pool.query(`INSERT INTO traced_rows VALUES (1, 'hello', $1), (2, 'untraced', NULL)`, [`00-${TRACE_ID}-${PARENT_ID}-01`]);
      const runSpan = (id: number) => exporter.getFinishedSpans().find((s) => s.name === 'walflow.run traced-wal' && attr(s, 'walflow.outcome') === 'completed' && String(attr(s, 'walflow.key')).includes(String(id)));
      const [traced, plain] = await waitFor('both WAL runs traced', async () => (runSpan(1) && runSpan(2) ? [runSpan(1)!, runSpan(2)!] : undefined));
      expect(traced.spanContext().traceId).toBe(TRACE_ID);
      expect(traced.parentSpanContext?.spanId).toBe(PARENT_ID);
      expect(plain.spanContext().traceId).not.toBe(TRACE_ID);
    } finally {
      await wf.stop();
      await dropSlot(db.pool, slot);
    }
  });
});

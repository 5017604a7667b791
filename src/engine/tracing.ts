// OpenTelemetry spans for runs and steps, through @opentelemetry/api only: the application decides
// whether traces exist by registering an SDK. Without one, every function here returns at the first
// check without allocating (the run executor is the engine's hot path, and it is benchmarked).
//
// A run's span is the child of the trace context its input carries, when there is one:
//   - runs started from SQL or TypeScript: `input._trace = {traceparent, tracestate?}` (or a string);
//   - runs started from WAL: a source column named `_trace` holding the same (text or jsonb),
//     which arrives as `input.row._trace`.
// So a producer that writes the row (or calls walflow.start) inside its own span sees the run, and
// every step of it, in the same trace.
import {
  context, createTraceState, ProxyTracerProvider, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags,
  type Context, type Span, type Tracer,
} from '@opentelemetry/api';

/** The api's no-op provider: what a proxy delegates to while no SDK is registered. */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();
let tracer: Tracer | undefined;

/** True once an application registered a tracer provider (checked per run: it can come late). */
function tracingEnabled(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NOOP_PROVIDER;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The remote parent named by `_trace` in a run's input (or its WAL row), else the root context. */
export function parentContextOf(input: unknown): Context {
  const carrier = traceCarrier(input);
  const raw = typeof carrier === 'string' ? carrier : carrier && typeof carrier === 'object' ? (carrier as Record<string, unknown>).traceparent : undefined;
  if (typeof raw !== 'string') return ROOT_CONTEXT;
  const m = TRACEPARENT.exec(raw.trim().toLowerCase());
  // Version ff is forbidden; all-zero ids are invalid (W3C Trace Context §3.2).
  if (!m || m[1] === 'ff' || /^0+$/.test(m[2]!) || /^0+$/.test(m[3]!)) return ROOT_CONTEXT;
  const state = carrier && typeof carrier === 'object' ? (carrier as Record<string, unknown>).tracestate : undefined;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: m[2]!, spanId: m[3]!, isRemote: true,
    traceFlags: parseInt(m[4]!, 16) & TraceFlags.SAMPLED,
    ...(typeof state === 'string' && state ? { traceState: createTraceState(state) } : {}),
  });
}

function traceCarrier(input: unknown): unknown {
  if (!input || typeof input !== 'object') return undefined;
  const top = (input as Record<string, unknown>)._trace;
  if (top !== undefined) return top;
  const row = (input as Record<string, unknown>).row;
  if (!row || typeof row !== 'object') return undefined;
  const col = (row as Record<string, unknown>)._trace;
  if (typeof col === 'string' && col.trimStart().startsWith('{')) {
    try {
      return JSON.parse(col) as unknown; // a text column holding the JSON form
    } catch {
      return undefined;
    }
  }
  return col;
}

export interface RunSpanInfo {
  id: string;
  pipeline: string;
  key: string | null;
  attempt: number;
  step_index: number;
  input: unknown;
}

/** Starts the span of one execution of a run (undefined when no SDK is registered). */
export function startRunSpan(run: RunSpanInfo): Span | undefined {
  if (!tracingEnabled()) return undefined;
  tracer ??= trace.getTracer('walflow');
  return tracer.startSpan(`walflow.run ${run.pipeline}`, {
    kind: SpanKind.CONSUMER,
    attributes: {
      'walflow.pipeline': run.pipeline, 'walflow.run_id': run.id, 'walflow.attempt': run.attempt,
      'walflow.step_index': run.step_index, ...(run.key !== null ? { 'walflow.key': run.key } : {}),
    },
  }, parentContextOf(run.input));
}

/** Ends a run span with how this execution ended (completed, failed, waiting, lost). */
export function endRunSpan(span: Span, outcome: string, error?: unknown): void {
  span.setAttribute('walflow.outcome', outcome);
  if (error !== undefined) span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: outcome === 'failed' || error !== undefined ? SpanStatusCode.ERROR : SpanStatusCode.UNSET });
  span.end();
}

/** Starts a step attempt's span under its run's span; the context to run the step in, so that spans the step makes nest under it. */
export function startStepSpan(runSpan: Span, step: string, attempt: number, runId: string, pipeline: string): { span: Span; ctx: Context } {
  tracer ??= trace.getTracer('walflow');
  const parent = trace.setSpan(context.active(), runSpan);
  const span = tracer.startSpan(`walflow.step ${step}`, {
    attributes: { 'walflow.pipeline': pipeline, 'walflow.run_id': runId, 'walflow.step': step, 'walflow.attempt': attempt },
  }, parent);
  return { span, ctx: trace.setSpan(parent, span) };
}

/** Ends a step span: outcome `ok` or `error` (with the error recorded). */
export function endStepSpan(span: Span, ok: boolean, error?: unknown): void {
  span.setAttribute('walflow.outcome', ok ? 'ok' : 'error');
  if (!ok) {
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  }
  span.end();
}

/** Runs `fn` with `ctx` active (so a step's own spans nest under its step span). */
export function withContext<T>(ctx: Context, fn: () => T): T {
  return context.with(ctx, fn);
}

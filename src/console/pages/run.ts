// A run: its input (pretty JSON, a preview of large values with a link to the whole), its step
// timeline as bars with durations, every attempt with its error and stack, outputs (size and
// preview), and where it came from (WAL position). Unfinished runs refresh while the page is open.
import { formatBytes } from '../../ops/output.js';
import { html, type Html } from '../html.js';
import { actionButton, actionsNote, isoTime, layout, statusBadge, type PageContext } from '../layout.js';
import { PREVIEW_CHARS, type RunDetail, type TimelineRow } from '../queries.js';
import type { RunFamily, SignalNotice } from '../wait-queries.js';

/** `family` (what it waits for, children, parent) and `signalNotice` feed the waits panel (./run-waits.ts). */
export interface RunView { run: RunDetail; steps: TimelineRow[]; family?: RunFamily; signalNotice?: SignalNotice }

/**
 * Extra panels of the run page, in order, each given the run and the viewer and returning markup
 * (or nothing when it does not apply). This is the seam for durable waits: a "waiting for" panel
 * (the signal or child a run waits on, its children) and a form to send a signal are added here,
 * reading their own views, without touching the rest of the page.
 */
export type RunPanel = (view: RunView, ctx: PageContext) => Html | undefined;
export const runPanels: RunPanel[] = [];

const FINISHED = new Set(['completed', 'failed', 'cancelled', 'superseded']);

function fmtMs(ms: number | null): string {
  if (ms === null) return '';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

function timeline(v: RunView, now = Date.now()): Html {
  // A parked step (sleeping, awaiting a signal or children) has started but not finished: its bar runs to now.
  const timed = v.steps.filter((s) => s.started_at);
  if (timed.length === 0) return html`<p class="empty">No step has started yet.</p>`;
  const end = (s: TimelineRow) => (s.finished_at ?? new Date(now)).getTime();
  const t0 = Math.min(...timed.map((s) => s.started_at!.getTime()));
  const t1 = Math.max(...timed.map(end));
  const span = Math.max(1, t1 - t0);
  // Bars are SVG geometry, not inline styles: the Content-Security-Policy allows no style attribute.
  return html`<table class="grid timeline" id="timeline">
<thead><tr><th>#</th><th>step</th><th>attempt</th><th>outcome</th><th class="bar-col">time</th><th class="n">duration</th></tr></thead>
<tbody>${v.steps.map((s) => {
    const x = s.started_at ? ((s.started_at.getTime() - t0) / span) * 1000 : 0;
    const w = s.started_at ? Math.max(3, ((end(s) - s.started_at.getTime()) / span) * 1000) : 0;
    return html`<tr><td class="n">${s.step_index}</td><td>${s.step}</td><td class="n">${s.attempt}</td><td>${statusBadge(s.outcome)}</td>
<td class="bar-col"><svg class="bar" viewBox="0 0 1000 12" preserveAspectRatio="none" role="img" aria-label="${s.step}: ${fmtMs(s.duration_ms)}"><rect x="${x.toFixed(1)}" y="0" width="${Math.min(w, 1000 - x).toFixed(1)}" height="12" rx="2" class="${s.outcome.replace(/\s+/g, '-')}"></rect></svg></td>
<td class="n">${fmtMs(s.duration_ms)}</td></tr>`;
  })}</tbody></table>`;
}

function attempts(v: RunView): Html {
  const failed = v.steps.filter((s) => s.outcome === 'failed');
  if (failed.length === 0) return html``;
  return html`<div class="card wide"><h2>Errors <span class="muted">every failed attempt</span></h2>
${failed.map((s) => html`<div class="attempt"><h3>${s.step} · attempt ${s.attempt} <span class="muted">${isoTime(s.finished_at)}${s.retry_at ? html` · retry at ${isoTime(s.retry_at)}` : ''}</span></h3>
<p class="err error-message">${s.error?.message ?? '(no message)'}</p>
${s.error?.stack ? html`<details open><summary>stack</summary><pre class="stack">${s.error.stack}</pre></details>` : ''}</div>`)}</div>`;
}

function outputs(v: RunView): Html {
  const done = v.steps.filter((s) => s.outcome === 'completed');
  if (done.length === 0) return html``;
  return html`<div class="card wide"><h2>Outputs</h2>
${done.map((s) => html`<details><summary>${s.step} <span class="muted">${s.output_bytes === null ? 'no output' : formatBytes(s.output_bytes)}</span></summary>
<pre class="json">${s.output_preview ?? 'null'}${s.output_preview && (s.output_bytes ?? 0) > 2000 ? '\n…' : ''}</pre></details>`)}</div>`;
}

export function runBody(ctx: PageContext, v: RunView): Html {
  const r = v.run;
  const inputCut = r.input_preview.length >= PREVIEW_CHARS;
  const canRetry = r.status === 'failed' || r.status === 'cancelled';
  const canCancel = !FINISHED.has(r.status);
  const actions = ctx.level === 'act'
    ? html`${canRetry ? actionButton(ctx, `/runs/${r.id}/retry`, 'Retry', {}, 'primary') : ''}${canCancel ? actionButton(ctx, `/runs/${r.id}/cancel`, 'Cancel', {}, 'danger') : ''}`
    : (canRetry || canCancel) ? actionsNote(ctx) : undefined;
  return html`<section class="cards">
<div class="card wide"><dl class="facts">
<div><dt>status</dt><dd id="run-status">${statusBadge(r.status)}</dd></div>
<div><dt>pipeline</dt><dd><a href="/runs?pipeline=${encodeURIComponent(r.pipeline)}">${r.pipeline}</a> <span class="muted mono">${r.pipeline_version ?? ''}</span></dd></div>
<div><dt>key</dt><dd class="mono">${r.key ?? '—'}</dd></div>
<div><dt>step</dt><dd>${r.step_index} · attempt ${r.attempt}</dd></div>
<div><dt>created</dt><dd>${isoTime(r.created_at)}</dd></div>
<div><dt>started</dt><dd>${isoTime(r.started_at) || '—'}</dd></div>
<div><dt>finished</dt><dd>${isoTime(r.finished_at) || '—'}</dd></div>
<div><dt>started by</dt><dd class="mono">${r.source_lsn ? `WAL ${r.source_lsn} #${r.source_index ?? 0}` : r.dedupe_id ? `dedupe id ${r.dedupe_id}` : 'SQL or code'}</dd></div>
</dl>
${actions ? html`<div class="actions">${actions}</div>` : ''}
${r.error?.message ? html`<p class="err run-error">${r.error.message}</p>` : ''}</div>
${runPanels.map((panel) => panel(v, ctx))}
<div class="card wide"><h2>Steps</h2>${timeline(v)}</div>
${attempts(v)}
<div class="card wide"><h2>Input <span class="muted">${formatBytes(r.input_bytes)}</span></h2>
<pre class="json" id="input">${r.input_preview}</pre>
${inputCut ? html`<p class="note">Showing the first ${PREVIEW_CHARS / 1024} kB of ${formatBytes(r.input_bytes)}. <a href="/runs/${r.id}/input" id="input-all">Show all</a> (plain text).</p>` : ''}</div>
${outputs(v)}
</section>`;
}

export function runPage(ctx: PageContext, v: RunView): Html {
  // An unfinished run's page follows it (htmx polling while open); a finished one stays still.
  const live = !FINISHED.has(v.run.status);
  return layout(ctx, `Run ${v.run.id}`, html`<h1>Run <span class="mono">${v.run.id}</span></h1>
<div id="live" ${live ? html`hx-get="/fragments/runs/${v.run.id}" hx-trigger="every 2s" hx-swap="innerHTML"` : ''}>${runBody(ctx, v)}</div>`);
}

// Overview: every pipeline's counts and completion rate, replication slots and their lag, worker
// processes. The body is also served alone as /fragments/overview, which the page re-fetches every
// few seconds (htmx polling) only while it is open.
import { formatBytes, formatSeconds } from '../../ops/output.js';
import { dataJson, html, type Html } from '../html.js';
import { ago, layout, type PageContext } from '../layout.js';
import type { Overview } from '../queries.js';

/** Completions per second over the last hour, one series per pipeline, per minute (uPlot's data shape). */
function completionSeries(o: Overview, now: number): { labels: string[]; data: number[][] } {
  const end = Math.floor(now / 60_000) * 60;
  const minutes = Array.from({ length: 60 }, (_, i) => end - (59 - i) * 60);
  const labels = o.pipelines.map((p) => p.pipeline);
  const data = [minutes, ...labels.map((name) => minutes.map((m) => {
    const hit = o.completions.find((c) => c.pipeline === name && c.minute === m);
    return hit ? Math.round((hit.count / 60) * 100) / 100 : 0;
  }))];
  return { labels, data };
}

function healthBadge(h: string): Html {
  return html`<span class="badge ${h === 'alive' ? 'ok' : h === 'none' ? 'muted' : 'bad'}">${h}</span>`;
}

export function overviewBody(o: Overview, now = Date.now()): Html {
  const series = completionSeries(o, now);
  const pipelines = o.pipelines.length === 0
    ? html`<p class="empty">No pipelines registered yet: start <code>walflow run</code>.</p>`
    : html`<table class="grid" id="pipelines">
<thead><tr><th>pipeline</th><th>version</th><th class="n">queued</th><th class="n">running</th><th class="n" title="waiting for the retry of a failed attempt">waiting (retry)</th><th class="n" title="parked until a time: a sleep step, or a step that asked to run again later">sleeping</th><th class="n">awaiting signal</th><th class="n">awaiting children</th><th class="n">failed</th><th class="n">completed (1h)</th><th class="n">per second (1m)</th><th class="n">oldest queued</th></tr></thead>
<tbody>${o.pipelines.map((p) => html`<tr data-pipeline="${p.pipeline}">
<td><a href="/runs?pipeline=${encodeURIComponent(p.pipeline)}">${p.pipeline}</a></td><td class="mono muted">${p.version}</td>
<td class="n" data-col="queued">${p.queued}</td><td class="n" data-col="running">${p.running}</td><td class="n" data-col="waiting">${p.waiting}</td>
<td class="n" data-col="sleeping">${p.sleeping + p.repeating}</td><td class="n" data-col="awaiting_signal">${p.awaiting_signal}</td><td class="n" data-col="awaiting_children">${p.awaiting_children}</td>
<td class="n ${p.failed > 0 ? 'bad' : ''}" data-col="failed">${p.failed > 0 ? html`<a href="/runs?pipeline=${encodeURIComponent(p.pipeline)}&amp;status=failed">${p.failed}</a>` : '0'}</td>
<td class="n" data-col="completed">${p.completed_1h}</td><td class="n">${p.completed_per_s_1m}</td><td class="n">${formatSeconds(p.oldest_queued_s) || '—'}</td>
</tr>`)}</tbody></table>`;
  const slots = o.replication.length === 0
    ? html`<p class="empty">No replication slot: no pipeline with a source table has run yet.</p>`
    : html`<table class="grid" id="replication">
<thead><tr><th>slot</th><th>active</th><th class="n">lag</th><th class="n">lag (time)</th><th>leader</th><th>health</th><th>heartbeat</th><th>WAL</th></tr></thead>
<tbody>${o.replication.map((r) => html`<tr><td class="mono">${r.slot}</td><td>${r.active ? 'yes' : 'no'}</td>
<td class="n">${formatBytes(r.lag_bytes) || '—'}</td><td class="n">${r.lag_seconds === null ? '—' : formatSeconds(r.lag_seconds)}</td>
<td class="mono">${r.leader ?? '—'}</td><td>${healthBadge(r.leader_health)}</td><td>${ago(r.leader_heartbeat_at, now)}</td><td>${r.wal_status ?? ''}</td></tr>`)}</tbody></table>`;
  const workers = o.workers.length === 0
    ? html`<p class="empty">No walflow process is registered.</p>`
    : html`<table class="grid" id="workers">
<thead><tr><th>process</th><th>host</th><th class="n">pid</th><th>health</th><th class="n">in flight</th><th>pipelines</th><th>started</th><th>heartbeat</th></tr></thead>
<tbody>${o.workers.map((w) => html`<tr><td class="mono">${w.owner}</td><td>${w.host}</td><td class="n">${w.pid}</td><td>${healthBadge(w.health)}</td>
<td class="n">${w.in_flight}</td><td>${w.pipelines.join(', ')}</td><td>${ago(w.started_at, now)}</td><td>${ago(w.heartbeat_at, now)}</td></tr>`)}</tbody></table>`;
  // Charts are drawn by /assets/console.js from these data attributes (JSON, escaped like any text).
  const lag = o.replication.map((r) => ({ slot: r.slot, bytes: r.lag_bytes, seconds: r.lag_seconds }));
  return html`<section class="cards">
<div class="card wide"><h2>Pipelines</h2>${pipelines}</div>
<div class="card"><h2>Completions per second <span class="muted">last hour, per minute</span></h2>
<div class="chart" data-chart="completions" data-series="${dataJson(series)}"></div></div>
<div class="card"><h2>Replication lag <span class="muted">sampled while this page is open</span></h2>
<div class="chart" data-chart="lag" data-lag="${dataJson({ t: Math.floor(now / 1000), slots: lag })}"></div></div>
<div class="card wide"><h2>Replication</h2>${slots}</div>
<div class="card wide"><h2>Workers</h2>${workers}</div>
</section>
<p class="updated muted">updated ${new Date(now).toISOString().slice(11, 19)} UTC · refreshes every 5 s while open</p>`;
}

export function overviewPage(ctx: PageContext, o: Overview): Html {
  return layout(ctx, 'Overview', html`<h1>Overview</h1>
<div id="live" hx-get="/fragments/overview" hx-trigger="every 5s" hx-swap="innerHTML">${overviewBody(o)}</div>`);
}

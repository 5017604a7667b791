// Runs: filter by pipeline, status, key and creation time; newest first; keyset pages ("Older",
// "Newer", "Newest", "Oldest") that cost the same on the first page and the last of millions.
import { html, type Html } from '../html.js';
import { isoTime, layout, statusBadge, type PageContext } from '../layout.js';
import { STATUSES, type RunFilter, type RunListRow } from '../queries.js';
import type { ParkedCounts } from '../wait-queries.js';

/** The parked runs (status waiting, in a durable wait) of the chosen pipeline, or of all, by what they wait for. */
function parkedLine(f: RunFilter, p: ParkedCounts): Html {
  const link = `/runs?${f.pipeline ? `pipeline=${encodeURIComponent(f.pipeline)}&` : ''}status=waiting`;
  return html`<p class="parked muted" id="parked">Parked${f.pipeline ? html` in ${f.pipeline}` : ''}: <a href="${link}"><b data-parked="sleeping">${p.sleeping + p.repeating}</b> sleeping · <b data-parked="awaiting_signal">${p.awaiting_signal}</b> awaiting a signal · <b data-parked="awaiting_children">${p.awaiting_children}</b> awaiting children</a></p>`;
}

function query(f: RunFilter, page: Partial<RunFilter>): string {
  const q = new URLSearchParams();
  if (f.pipeline) q.set('pipeline', f.pipeline);
  if (f.status) q.set('status', f.status);
  if (f.key) q.set('key', f.key);
  if (f.since) q.set('since', f.since.toISOString());
  if (f.until) q.set('until', f.until.toISOString());
  if (f.limit !== 50) q.set('limit', String(f.limit));
  if (page.before) q.set('before', page.before);
  if (page.after) q.set('after', page.after);
  if (page.oldest) q.set('oldest', '1');
  const s = q.toString();
  return s ? `/runs?${s}` : '/runs';
}

export function runsPage(ctx: PageContext, f: RunFilter, pipelines: string[], page: { runs: RunListRow[]; hasOlder: boolean; hasNewer: boolean }, parked?: ParkedCounts): Html {
  const { runs } = page;
  const first = runs[0];
  const last = runs[runs.length - 1];
  const opt = (value: string, selected: string | undefined) => html`<option value="${value}" ${value === selected ? html`selected` : ''}>${value}</option>`;
  const timeValue = (d: Date | undefined) => (d ? d.toISOString() : '');
  const pager = html`<nav class="pager">
<a href="${query(f, {})}" class="${page.hasNewer ? '' : 'disabled'}" id="page-newest">« Newest</a>
${page.hasNewer && first ? html`<a href="${query(f, { after: first.id })}" id="page-newer">‹ Newer</a>` : html`<span class="disabled">‹ Newer</span>`}
${page.hasOlder && last ? html`<a href="${query(f, { before: last.id })}" id="page-older">Older ›</a>` : html`<span class="disabled">Older ›</span>`}
<a href="${query(f, { oldest: true })}" class="${page.hasOlder ? '' : 'disabled'}" id="page-oldest">Oldest »</a>
</nav>`;
  const table = runs.length === 0
    ? html`<p class="empty">No runs match.</p>`
    : html`<table class="grid" id="runs">
<thead><tr><th>run</th><th>pipeline</th><th>key</th><th>status</th><th class="n">step</th><th class="n">attempt</th><th>created</th><th>finished</th><th>error</th></tr></thead>
<tbody>${runs.map((r) => html`<tr data-run="${r.id}">
<td class="mono"><a href="/runs/${r.id}">${r.id}</a></td><td>${r.pipeline}</td><td class="mono clip">${r.key ?? ''}</td><td>${statusBadge(r.status)}</td>
<td class="n">${r.step_index}</td><td class="n">${r.attempt}</td><td class="nowrap">${isoTime(r.created_at)}</td><td class="nowrap">${isoTime(r.finished_at)}</td>
<td class="clip err">${r.error_message ? r.error_message.slice(0, 200) : ''}</td></tr>`)}</tbody></table>`;
  return layout(ctx, 'Runs', html`<h1>Runs</h1>
<form method="get" action="/runs" class="filters">
<label>pipeline <select name="pipeline"><option value="">any</option>${pipelines.map((p) => opt(p, f.pipeline))}</select></label>
<label>status <select name="status"><option value="">any</option>${STATUSES.map((s) => opt(s, f.status))}</select></label>
<label>key <input name="key" value="${f.key ?? ''}" placeholder="exact key"></label>
<label>created since <input name="since" value="${timeValue(f.since)}" placeholder="2026-01-31T12:00Z"></label>
<label>until <input name="until" value="${timeValue(f.until)}" placeholder="ISO time"></label>
<label>per page <input name="limit" value="${f.limit}" size="4"></label>
<button class="btn">Filter</button> <a href="/runs">clear</a>
</form>
${parked ? parkedLine(f, parked) : ''}
${pager}
${table}
${runs.length > 10 ? pager : ''}`);
}

// Failures: failed runs grouped by pipeline and error message (retry a whole group), and runs
// waiting to retry after an error (cancel a whole group).
import { html, type Html } from '../html.js';
import { actionButton, actionsNote, ago, layout, statusBadge, type PageContext } from '../layout.js';
import type { FailureGroup } from '../queries.js';

export function failuresPage(ctx: PageContext, groups: FailureGroup[], flash?: string): Html {
  const rows = (status: FailureGroup['status']) => groups.filter((g) => g.status === status);
  const table = (list: FailureGroup[], action: 'retry' | 'cancel') => list.length === 0
    ? html`<p class="empty">${action === 'retry' ? 'No failed runs.' : 'No run is waiting to retry after an error.'}</p>`
    : html`<table class="grid failures">
<thead><tr><th>pipeline</th><th>error</th><th class="n">runs</th><th>last</th><th>example</th><th></th></tr></thead>
<tbody>${list.map((g) => html`<tr>
<td><a href="/runs?pipeline=${encodeURIComponent(g.pipeline)}&amp;status=${g.status}">${g.pipeline}</a></td>
<td class="err clip">${g.message ?? '(no message)'}</td><td class="n">${g.runs}</td><td>${ago(g.last_at)}</td>
<td class="mono"><a href="/runs/${g.example}">${g.example.slice(0, 13)}…</a></td>
<td>${ctx.level === 'act' ? actionButton(ctx, `/failures/${action}`, action === 'retry' ? `Retry ${g.runs}` : `Cancel ${g.runs}`,
    { pipeline: g.pipeline, message: g.message ?? '', nomessage: g.message === null ? '1' : '' }, action === 'retry' ? 'primary' : 'danger') : ''}</td></tr>`)}</tbody></table>`;
  return layout(ctx, 'Failures', html`<h1>Failures</h1>
${flash ? html`<p class="flash">${flash}</p>` : ''}
${actionsNote(ctx)}
<section class="cards">
<div class="card wide"><h2>${statusBadge('failed')} grouped by error</h2>${table(rows('failed'), 'retry')}</div>
<div class="card wide"><h2>${statusBadge('waiting')} retrying after an error</h2>${table(rows('waiting'), 'cancel')}</div>
</section>`);
}

export function loginPage(ctx: PageContext, next: string, error?: string): Html {
  const what = ctx.actionsEnabled
    ? 'Enter the console token (WALFLOW_UI_TOKEN) to retry and cancel runs, or the view token to look.'
    : 'Enter the view token (WALFLOW_UI_VIEW_TOKEN). Actions are disabled: WALFLOW_UI_TOKEN is not set.';
  return layout(ctx, 'Sign in', html`<h1>Sign in</h1>
<section class="cards"><div class="card narrow">
<p>${what}</p>
${error ? html`<p class="err" id="login-error">${error}</p>` : ''}
<form method="post" action="/login" class="stack">
<input type="hidden" name="next" value="${next}">
<label>token <input type="password" name="token" autocomplete="current-password" autofocus required></label>
<button class="btn primary">Sign in</button>
</form></div></section>`);
}

export function messagePage(ctx: PageContext, title: string, message: string): Html {
  return layout(ctx, title, html`<h1>${title}</h1><section class="cards"><div class="card wide"><p class="message">${message}</p></div></section>`);
}

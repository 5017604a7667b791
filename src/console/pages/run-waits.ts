// The run page's durable-waits panel (through the runPanels seam of ./run.ts): what a parked run
// waits for (a time, a signal, its children, its own next try), its child runs and its parent as
// links, and a form to send it a signal (POST, behind the action token and CSRF like retry and
// cancel; a refusal is shown on the page next to the form).
import { html, type Html } from '../html.js';
import { actionsNote, isoTime, statusBadge, type PageContext } from '../layout.js';
import type { RunFamily, SignalNotice, WaitRow } from '../wait-queries.js';
import { runPanels, type RunView } from './run.js';

const FINISHED = new Set(['completed', 'failed', 'cancelled', 'superseded']);

function describe(w: WaitRow): Html {
  const until = isoTime(w.until);
  switch (w.kind) {
    case 'sleep': return html`sleeping until <b>${until}</b>`;
    case 'signal': return html`a signal <b class="mono">${w.signal}</b>${until ? html` · times out at <b>${until}</b>` : ' · no timeout'}`;
    case 'children': return html`its children: <b>${w.children_left}</b> of ${w.children} left · join <span class="mono">${w.mode}</span>${until ? html` · timeout at <b>${until}</b>` : ''}`;
    default: return html`its next try at <b>${until}</b> · repeated ${w.repeats} time(s)`;
  }
}

function signalForm(ctx: PageContext, v: RunView, family: RunFamily, notice: SignalNotice | undefined): Html {
  if (ctx.level !== 'act') return actionsNote(ctx) ?? html``;
  const awaiting = family.waitingFor?.kind === 'signal';
  const name = notice && !notice.ok ? notice.name ?? '' : awaiting ? family.waitingFor!.signal ?? '' : '';
  const payload = notice && !notice.ok ? notice.payload ?? '' : '';
  // Open when the run waits for a signal now; folded otherwise (a signal sent early waits in its
  // mailbox). hx-preserve: the page's live refresh (every 2 s) must not wipe what is being typed.
  return html`<details class="signal-form" id="signal-box" hx-preserve ${awaiting || notice ? html`open` : ''}><summary>Send a signal</summary>
<form method="post" action="/runs/${v.run.id}/signal" id="signal-form">
<input type="hidden" name="csrf" value="${ctx.csrf}">
<label>name <input name="name" value="${name}" required placeholder="e.g. review"></label>
<label>payload (JSON, optional) <textarea name="payload" rows="3" placeholder='{"approved": true}'>${payload}</textarea></label>
<button class="btn primary">Send signal</button>
</form></details>`;
}

export function waitsPanel(v: RunView, ctx: PageContext): Html | undefined {
  const family = v.family;
  if (!family) return undefined;
  const open = !FINISHED.has(v.run.status);
  const notice = v.signalNotice;
  if (!open && !family.parent && family.childCount === 0 && !notice) return undefined;
  const w = family.waitingFor;
  const children = family.childCount === 0 ? '' : html`<h3>Children <span class="muted">${family.childCount}</span></h3>
<table class="grid" id="children"><thead><tr><th class="n">#</th><th>run</th><th>pipeline</th><th>status</th></tr></thead>
<tbody>${family.children.map((c) => html`<tr><td class="n">${c.child_index}</td><td class="mono"><a href="/runs/${c.id}">${c.id}</a></td><td>${c.pipeline}</td><td>${statusBadge(c.status)}</td></tr>`)}</tbody></table>
${family.childCount > family.children.length ? html`<p class="note">Showing the first ${family.children.length} (<code>walflow inspect</code> lists up to 1000).</p>` : ''}`;
  return html`<div class="card wide" id="waits"><h2>Waiting for</h2>
${w ? html`<p id="waiting-for" data-kind="${w.kind}">In step <b>${w.step}</b>, since ${isoTime(w.since)}: ${describe(w)}</p>` : open ? html`<p class="muted" id="waiting-for">Not parked${v.run.status === 'waiting' ? ' (waiting for the retry of a failed attempt)' : ''}.</p>` : ''}
${family.parent ? html`<p id="parent">Child run (child_index ${family.parent.child_index ?? ''}) of <a href="/runs/${family.parent.id}" class="mono">${family.parent.id}</a> (${family.parent.pipeline}, ${statusBadge(family.parent.status)})</p>` : ''}
${children}
${notice ? html`<p class="${notice.ok ? 'note' : 'err'}" id="signal-notice">${notice.text}</p>` : ''}
${open ? signalForm(ctx, v, family, notice) : ''}
</div>`;
}

// Registered once, when the console's server module imports this one.
runPanels.push(waitsPanel);

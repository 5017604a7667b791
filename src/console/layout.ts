// The page shell: navigation, sign-in state, and the only scripts a page loads (from /assets, no
// inline script: the Content-Security-Policy forbids it).
import { html, type Html } from './html.js';
import type { Level } from './auth.js';

export interface PageContext {
  level: Level;
  actionsEnabled: boolean;
  viewNeedsToken: boolean;
  /** The CSRF token forms carry (empty when the viewer cannot act). */
  csrf: string;
  path: string;
}

const NAV: [string, string][] = [['/', 'Overview'], ['/runs', 'Runs'], ['/failures', 'Failures'], ['/search', 'Search']];

export function layout(ctx: PageContext, title: string, body: Html): Html {
  const active = (href: string) => (href === '/' ? ctx.path === '/' : ctx.path.startsWith(href));
  const who = ctx.level === 'act'
    ? html`<span class="badge ok">signed in: can retry and cancel</span> <form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="${ctx.csrf}"><button class="link">sign out</button></form>`
    : ctx.actionsEnabled
      ? html`<a href="/login?next=${encodeURIComponent(ctx.path)}">sign in to retry and cancel</a>`
      : html`<span class="muted" title="Set WALFLOW_UI_TOKEN to enable retry and cancel">read-only</span>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{"allowEval":false,"allowScriptTags":false,"includeIndicatorStyles":false,"historyCacheSize":0}'>
<title>${title} · walflow</title>
<link rel="stylesheet" href="/assets/uPlot.min.css">
<link rel="stylesheet" href="/assets/console.css">
<script src="/assets/htmx.min.js" defer></script>
<script src="/assets/uPlot.iife.min.js" defer></script>
<script src="/assets/console.js" defer></script>
</head>
<body>
<header class="top">
  <a class="brand" href="/">walflow</a>
  <nav>${NAV.map(([href, label]) => html`<a href="${href}" class="${active(href) ? 'active' : ''}">${label}</a>`)}</nav>
  <div class="who">${who}</div>
</header>
<main>
${body}
</main>
</body>
</html>`;
}

/** Why an action is not offered: disabled by configuration, or the viewer has not signed in. */
export function actionsNote(ctx: PageContext): Html | undefined {
  if (!ctx.actionsEnabled) return html`<p class="note">Retry and cancel are disabled: start the console with <code>WALFLOW_UI_TOKEN</code> set (at least 16 characters) to enable them.</p>`;
  if (ctx.level !== 'act') return html`<p class="note"><a href="/login?next=${encodeURIComponent(ctx.path)}">Sign in</a> with the console token to retry or cancel.</p>`;
  return undefined;
}

/** A one-button POST form carrying the CSRF token. */
export function actionButton(ctx: PageContext, action: string, label: string, fields: Record<string, string> = {}, kind = ''): Html {
  return html`<form method="post" action="${action}" class="inline">
<input type="hidden" name="csrf" value="${ctx.csrf}">${Object.entries(fields).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}
<button class="btn ${kind}">${label}</button></form>`;
}

export function statusBadge(status: string): Html {
  // Timeline outcomes have spaces ('awaiting signal'): one class per status.
  return html`<span class="status s-${status.replace(/\s+/g, '-')}">${status}</span>`;
}

export function ago(d: Date | null | undefined, now = Date.now()): string {
  if (!d) return '';
  const s = Math.max(0, Math.round((now - d.getTime()) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function isoTime(d: Date | null | undefined): string {
  return d ? d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '';
}

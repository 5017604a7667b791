// The web console: a small Hono app over a pg pool, served by @hono/node-server. Pages are
// rendered on the server (src/console/html.ts escapes every value); the browser loads only
// /assets (htmx for live refresh, uPlot for charts, console.js). Security: binds loopback by
// default and then answers only to loopback Host names (no DNS rebinding); optional view token;
// actions need the action token's session, a CSRF token and a same-origin Origin; a strict
// Content-Security-Policy (no inline script or style).
import { serve, type ServerType } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { getCookie, setCookie, deleteCookie } from 'hono/cookie';
import type { Logger } from 'pino';
import type pg from 'pg';
import { redactSecrets, UserError } from '../errors.js';
import { loadAssets } from './assets.js';
import { ConsoleAuth, COOKIE, type AuthConfig, type Level } from './auth.js';
import type { Html } from './html.js';
import type { PageContext } from './layout.js';
import { failuresPage, loginPage, messagePage } from './pages/failures.js';
import { overviewBody, overviewPage } from './pages/overview.js';
import { runBody, runPage, type RunView } from './pages/run.js';
import './pages/run-waits.js'; // registers the waits panel (what a run waits for, its family, send a signal)
import { runsPage } from './pages/runs.js';
import { searchPage, type ConsoleSearch } from './pages/search.js';
import {
  cancelGroup, cancelRun, listRuns, pipelineNames, readFailureGroups, readInput, readOverview, readRun, retryGroup, retryRun,
  STATUSES, UUID, type RunFilter,
} from './queries.js';
import { readParkedCounts, readRunFamily, sendRunSignal } from './wait-queries.js';

const CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'",
].join('; ');

type Env = { Variables: { level: Level; page: PageContext } };

export interface ConsoleOptions extends AuthConfig {
  db: pg.Pool;
  /** Bound to a loopback address: only loopback Host headers are answered. */
  loopbackOnly?: boolean;
  /** Nearest-chunk search over the embedding pipelines of the serving process. */
  search?: ConsoleSearch;
}

const LOOPBACK_HOST = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/i;

function pageOf(c: Context<Env>): PageContext {
  return c.get('page');
}

function send(c: Context<Env>, body: Html, status: 200 | 400 | 403 | 404 | 503 = 200) {
  return c.html(body.value, status);
}

function parseTime(v: string | undefined, name: string): Date | undefined {
  if (!v) return undefined;
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new UserError(`${name} must be a time such as 2026-01-31T12:00:00Z (got "${v}")`);
  return d;
}

function runFilter(q: Record<string, string>): RunFilter {
  const limit = q.limit ? Number(q.limit) : 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UserError(`per page must be a whole number from 1 to 1000 (got "${q.limit}")`);
  if (q.status && !(STATUSES as readonly string[]).includes(q.status)) throw new UserError(`unknown status "${q.status}" (use one of ${STATUSES.join(', ')})`);
  for (const k of ['before', 'after'] as const) if (q[k] && !UUID.test(q[k])) throw new UserError(`${k} must be a run id`);
  return {
    pipeline: q.pipeline || undefined, status: q.status || undefined, key: q.key || undefined,
    since: parseTime(q.since, 'created since'), until: parseTime(q.until, 'until'),
    before: q.before || undefined, after: q.after || undefined, oldest: q.oldest === '1', limit,
  };
}

/** The host:port of an Origin header; undefined for `null` or anything unparsable. */
function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}

/** A relative path on this console (never an open redirect). */
function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])/.test(next) ? next : '/';
}

export function createConsoleApp(o: ConsoleOptions): Hono<Env> {
  const auth = new ConsoleAuth(o);
  const assets = loadAssets();
  const app = new Hono<Env>();
  const db = o.db;

  app.use('*', async (c, next) => {
    c.header('Content-Security-Policy', CSP);
    c.header('X-Content-Type-Options', 'nosniff');
    // same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on its own form posts.
    c.header('Referrer-Policy', 'same-origin');
    c.header('X-Frame-Options', 'DENY');
    if (o.loopbackOnly && !LOOPBACK_HOST.test(c.req.header('host') ?? '')) {
      return c.text('walflow console: this console listens on a loopback address and answers only to localhost or 127.0.0.1 (start it with --host to serve other names)\n', 421);
    }
    const cookie = getCookie(c, COOKIE);
    const level = auth.levelOf(cookie);
    c.set('level', level);
    c.set('page', {
      level, actionsEnabled: auth.actionsEnabled, viewNeedsToken: auth.viewNeedsToken, path: c.req.path + (new URL(c.req.url).search),
      csrf: level === 'act' ? auth.csrfFor(cookie) : '',
    });
    const open = c.req.path.startsWith('/assets/') || c.req.path === '/login';
    if (level === 'none' && !open) {
      if (c.req.method === 'GET' && !c.req.path.startsWith('/fragments/')) return c.redirect(`/login?next=${encodeURIComponent(pageOf(c).path)}`, 303);
      return c.text('walflow console: sign in with the view token first\n', 401);
    }
    if (c.req.method === 'POST' && c.req.path !== '/login' && c.req.path !== '/logout') {
      // Cross-site request forgery: a same-origin Origin (when sent) and the session's CSRF token.
      const origin = c.req.header('origin');
      const host = c.req.header('host');
      const form = await c.req.parseBody();
      const refused = (why: string) => send(c, messagePage(pageOf(c), 'Refused', why), 403);
      if (origin !== undefined && (!host || hostOf(origin) !== host)) return refused('This request came from another site.');
      if (!auth.actionsEnabled) return refused('Retry and cancel are disabled: start the console with WALFLOW_UI_TOKEN set (at least 16 characters) to enable them.');
      if (level !== 'act') return refused('Retry and cancel need the console token: sign in first.');
      if (!auth.csrfValid(cookie, typeof form.csrf === 'string' ? form.csrf : undefined)) return refused('The form had expired or did not come from this console: reload the page and try again.');
    }
    c.header('Cache-Control', 'no-store');
    await next();
  });

  app.get('/assets/:name', (c) => {
    const a = assets.get(c.req.param('name'));
    if (!a) return c.text('not found\n', 404);
    c.header('Cache-Control', 'public, max-age=3600');
    return c.body(new Uint8Array(a.body), 200, { 'content-type': a.type });
  });

  app.get('/login', (c) => send(c, loginPage(pageOf(c), safeNext(c.req.query('next')))));
  app.post('/login', async (c) => {
    const form = await c.req.parseBody();
    const next = safeNext(form.next);
    const level = typeof form.token === 'string' ? auth.levelOfToken(form.token) : undefined;
    if (!level) return send(c, loginPage(pageOf(c), next, 'That token is not valid for this console.'), 403);
    setCookie(c, COOKIE, auth.cookieFor(level), { httpOnly: true, sameSite: 'Strict', path: '/', secure: new URL(c.req.url).protocol === 'https:' });
    return c.redirect(next, 303);
  });
  app.post('/logout', (c) => {
    deleteCookie(c, COOKIE, { path: '/' });
    return c.redirect('/', 303);
  });

  app.get('/', async (c) => send(c, overviewPage(pageOf(c), await readOverview(db))));
  app.get('/fragments/overview', async (c) => send(c, overviewBody(await readOverview(db))));

  app.get('/runs', async (c) => {
    const f = runFilter(c.req.query());
    const [names, page, parked] = await Promise.all([pipelineNames(db), listRuns(db, f), readParkedCounts(db, f.pipeline)]);
    return send(c, runsPage(pageOf(c), f, names, page, parked));
  });

  const runOr404 = async (c: Context<Env>): Promise<RunView | undefined> => {
    const id = c.req.param('id') ?? '';
    if (!UUID.test(id)) return undefined;
    const v = await readRun(db, id);
    return v && { ...v, family: await readRunFamily(db, id, v.run.status) };
  };
  app.get('/runs/:id', async (c) => {
    const v = await runOr404(c);
    if (!v) return send(c, messagePage(pageOf(c), 'Not found', `No run ${c.req.param('id')}.`), 404);
    const sent = c.req.query('signal');
    if (sent && /^\d+$/.test(sent)) v.signalNotice = { ok: true, text: `Signal sent (id ${sent}).` };
    return send(c, runPage(pageOf(c), v));
  });
  // Send a signal (behind the action token and CSRF, checked above). A refusal (a finished run, bad
  // JSON, no name) is shown on the run page with what was typed, status 400, not thrown.
  app.post('/runs/:id/signal', async (c) => {
    const id = c.req.param('id');
    if (!UUID.test(id)) return send(c, messagePage(pageOf(c), 'Not found', 'That is not a run id.'), 404);
    const form = await c.req.parseBody();
    const name = typeof form.name === 'string' ? form.name : '';
    const payload = typeof form.payload === 'string' ? form.payload : '';
    const r = await sendRunSignal(db, id, name, payload);
    if (r.ok) return c.redirect(`/runs/${id}?signal=${r.signal}`, 303);
    const v = await runOr404(c);
    if (!v) return send(c, messagePage(pageOf(c), 'Not found', `No run ${id}.`), 404);
    v.signalNotice = { ok: false, text: `Signal not sent: ${r.error}`, name, payload };
    return send(c, runPage(pageOf(c), v), 400);
  });
  app.get('/fragments/runs/:id', async (c) => {
    const v = await runOr404(c);
    if (!v) return c.text('no such run\n', 404);
    // 286 tells htmx to stop polling: a finished run does not change any more.
    const finished = ['completed', 'failed', 'cancelled', 'superseded'].includes(v.run.status);
    return c.html(runBody(pageOf(c), v).value, finished ? (286 as 200) : 200);
  });
  app.get('/runs/:id/input', async (c) => {
    const id = c.req.param('id');
    const input = UUID.test(id) ? await readInput(db, id) : undefined;
    if (input === undefined) return c.text('no such run\n', 404);
    // Plain text with nosniff: the whole value, inert whatever it holds.
    return c.text(redactSecrets(input), 200, { 'content-type': 'text/plain; charset=utf-8' });
  });

  app.post('/runs/:id/:action{retry|cancel}', async (c) => {
    const id = c.req.param('id');
    if (!UUID.test(id)) return send(c, messagePage(pageOf(c), 'Not found', 'That is not a run id.'), 404);
    const ok = c.req.param('action') === 'retry' ? await retryRun(db, id) : await cancelRun(db, id);
    if (!ok) return send(c, messagePage(pageOf(c), 'Nothing to do', c.req.param('action') === 'retry' ? 'The run is neither failed nor cancelled.' : 'The run has already finished.'), 400);
    return c.redirect(`/runs/${id}`, 303);
  });

  app.get('/failures', async (c) => send(c, failuresPage(pageOf(c), await readFailureGroups(db), c.req.query('done'))));
  app.post('/failures/:action{retry|cancel}', async (c) => {
    const form = await c.req.parseBody();
    const pipeline = typeof form.pipeline === 'string' ? form.pipeline : '';
    const message = form.nomessage === '1' ? null : typeof form.message === 'string' ? form.message : null;
    const retry = c.req.param('action') === 'retry';
    const n = retry ? await retryGroup(db, pipeline, message) : await cancelGroup(db, pipeline, message);
    return c.redirect(`/failures?done=${encodeURIComponent(`${retry ? 'Retried' : 'Cancelled'} ${n} run(s) of ${pipeline}.`)}`, 303);
  });

  app.get('/search', async (c) => {
    const names = o.search?.pipelines ?? [];
    const q = c.req.query();
    const k = q.k ? Number(q.k) : 10;
    if (!Number.isInteger(k) || k < 1 || k > 100) throw new UserError(`k must be a whole number from 1 to 100 (got "${q.k}")`);
    const form = { pipeline: q.pipeline || names[0], query: q.q, k };
    if (!o.search || !q.q?.trim()) return send(c, searchPage(pageOf(c), names, form));
    if (!form.pipeline || !names.includes(form.pipeline)) throw new UserError(`"${form.pipeline}" is not an embedding pipeline loaded here (${names.join(', ')})`);
    try {
      return send(c, searchPage(pageOf(c), names, form, await o.search.search(form.pipeline, q.q, k)));
    } catch (err) {
      // The provider said no, or nothing is embedded yet: say so on the page.
      const e = err as { code?: string; message?: string };
      const why = e.code === '42P01' ? 'no embeddings yet (the target table does not exist)' : (e.message ?? String(err));
      return send(c, searchPage(pageOf(c), names, form, undefined, `search failed: ${why}`), 503);
    }
  });

  app.notFound((c) => send(c, messagePage(pageOf(c), 'Not found', 'There is no such page.'), 404));
  app.onError((err, c) => {
    if (err instanceof UserError) return send(c, messagePage(pageOf(c), 'Bad request', err.message), 400);
    const code = (err as { code?: string }).code;
    const msg = code === 'WF003' ? 'No such run.' : `The database did not answer: ${(err as Error).message}`;
    return send(c, messagePage(pageOf(c), code === 'WF003' ? 'Not found' : 'Unavailable', msg), code === 'WF003' ? 404 : 503);
  });
  return app;
}

export interface ConsoleServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export async function serveConsole(o: ConsoleOptions & { port: number; host: string; log: Logger }): Promise<ConsoleServer> {
  const loopback = /^(127\.|localhost$|::1$)/.test(o.host);
  const app = createConsoleApp({ ...o, loopbackOnly: loopback });
  let server: ServerType | undefined;
  const port = await new Promise<number>((resolve, reject) => {
    server = serve({ fetch: app.fetch, port: o.port, hostname: o.host }, (info) => resolve(info.port));
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' || err.code === 'EACCES'
        ? new UserError(`cannot serve the console on ${o.host}:${o.port}: ${err.code === 'EADDRINUSE' ? 'the port is in use' : 'permission denied'} (choose another with --ui-port / --port or WALFLOW_UI_PORT)`)
        : err));
  });
  const shown = o.host.includes(':') ? `[${o.host}]` : o.host;
  const url = `http://${shown}:${port}/`;
  o.log.info({ url, actions: !!o.actionToken, viewToken: !!o.viewToken }, o.actionToken ? 'console serving' : 'console serving (read-only: set WALFLOW_UI_TOKEN to enable retry and cancel)');
  return {
    port, url,
    close: () => new Promise<void>((r) => {
      const s = server as unknown as { close(cb: () => void): void; closeAllConnections?: () => void };
      s.close(() => r());
      s.closeAllConnections?.();
    }),
  };
}

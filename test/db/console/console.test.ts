// The web console in a real headless Chromium against a real `walflow run --ui-port` process:
// live counts on the overview, a failed run's error and stack, retry from the page (and refused
// without the token), hostile row data rendered inert, and keyset pages down to the oldest of
// 100,000 runs; a parked parent and child (what they wait for, the signal form). WALFLOW_SCREENSHOTS=1
// also saves docs/images/console-*.png.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';
import { freePort, ROOT, startWalflowRun, type RunningWalflow } from '../ops/support/cli.js';
import { launchBrowser, type Browser } from './support/browser.js';

const db = useTestDatabase();
const TOKEN = 'console-test-token-0123456789';
const PIPELINES = path.join(ROOT, 'test/fixtures/console/pipelines');
const SCREENSHOTS = process.env.WALFLOW_SCREENSHOTS === '1';
let wf: RunningWalflow;
let browser: Browser;
let base: string;

async function start(input: Record<string, unknown>): Promise<string> {
  return (await db.pool.query(`SELECT walflow.start('console-jobs', $1) AS id`, [input])).rows[0].id as string;
}

async function statusOf(id: string): Promise<string> {
  return (await db.pool.query('SELECT status FROM walflow.runs WHERE id = $1', [id])).rows[0].status as string;
}

async function until(id: string, status: string): Promise<void> {
  await waitFor(`run ${id} to be ${status}`, async () => (await statusOf(id)) === status, 60_000);
}

/** Messages the browser logged about blocked content (an inline script or style the CSP refused). */
const cspViolations: string[] = [];

async function page(): Promise<Page> {
  const p = await browser.context.newPage();
  p.setDefaultTimeout(30_000);
  p.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(`${p.url()}: ${m.text()}`);
  });
  return p;
}

async function signIn(p: Page, next: string): Promise<void> {
  await p.goto(`${base}/login?next=${encodeURIComponent(next)}`);
  await p.fill('input[name=token]', TOKEN);
  await p.click('button:has-text("Sign in")');
  await p.waitForURL(`${base}${next}`);
}

beforeAll(async () => {
  await db.pool.query('CREATE TABLE console_flags (broken boolean NOT NULL)');
  await db.pool.query('INSERT INTO console_flags VALUES (true)');
  await db.pool.query('CREATE TABLE console_items (id int PRIMARY KEY, n int NOT NULL)');
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  wf = await startWalflowRun(['--ui-port', String(port)], {
    DATABASE_URL: db.url, WALFLOW_PIPELINES_DIR: PIPELINES, WALFLOW_UI_TOKEN: TOKEN, WALFLOW_POLL_INTERVAL_MS: '100',
  });
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  const r = await wf?.stop();
  expect(r?.code).toBe(0);
});

describe('walflow console', () => {
  it('the overview shows a pipeline\'s counts once its runs complete, and follows new ones live', async () => {
    const ids = await Promise.all([1, 2, 3, 4, 5].map((id) => start({ id })));
    for (const id of ids) await until(id, 'completed');
    await db.pool.query('INSERT INTO console_items SELECT g, g FROM generate_series(1, 20) g');
    const p = await page();
    await p.goto(`${base}/`);
    const completed = p.locator('tr[data-pipeline="console-jobs"] td[data-col="completed"]');
    await expect.poll(() => completed.textContent()).toBe('5');
    expect(await p.locator('#replication').textContent()).toContain('walflow');
    expect(await p.locator('#workers').textContent()).toContain('alive');
    // Two more runs: the open page shows 7 without being reloaded (htmx polling of the fragment).
    const more = await Promise.all([6, 7].map((id) => start({ id })));
    for (const id of more) await until(id, 'completed');
    await p.waitForFunction(() => (globalThis as unknown as { document: { querySelector(s: string): { textContent: string | null } | null } }).document.querySelector('tr[data-pipeline="console-jobs"] td[data-col="completed"]')?.textContent === '7', undefined, { timeout: 30_000 });
    await waitFor('console-items runs', async () => (await db.pool.query(`SELECT count(*)::int AS n FROM walflow.runs WHERE pipeline = 'console-items' AND status = 'completed'`)).rows[0].n === 20, 60_000);
    // The charts drew (uPlot under the CSP), and nothing was blocked.
    await p.waitForSelector('[data-chart="completions"] .uplot');
    expect(cspViolations).toEqual([]);
    if (SCREENSHOTS) {
      await p.reload();
      await p.waitForSelector('.chart .uplot');
      await p.screenshot({ path: path.join(ROOT, 'docs/images/console-overview.png'), fullPage: true });
    }
    await p.close();
  });

  it('a failed run\'s page shows its error and stack; a retry without the token is refused', async () => {
    const id = await start({ id: 100, upstream: true });
    await until(id, 'failed');
    await browser.context.clearCookies();
    const p = await page();
    await p.goto(`${base}/runs/${id}`);
    expect(await p.locator('#run-status').textContent()).toBe('failed');
    expect(await p.locator('.error-message').first().textContent()).toBe('upstream refused job 100: 503 Service Unavailable');
    expect(await p.locator('pre.stack').first().textContent()).toMatch(/NonRetryableError: upstream refused job 100[\s\S]*\n\s+at /);
    // Not signed in: no retry button, a note saying how; a forged POST is refused.
    expect(await p.locator('button:has-text("Retry")').count()).toBe(0);
    expect(await p.locator('.note').textContent()).toContain('Sign in');
    const anonymous = await p.evaluate(async (url) => (await fetch(url, { method: 'POST', body: new URLSearchParams({ csrf: 'x' }) })).status, `${base}/runs/${id}/retry`);
    expect(anonymous).toBe(403);
    // Signed in, but without the page's CSRF token: refused too.
    await signIn(p, `/runs/${id}`);
    const noCsrf = await p.evaluate(async (url) => (await fetch(url, { method: 'POST', body: new URLSearchParams({}) })).status, `${base}/runs/${id}/retry`);
    expect(noCsrf).toBe(403);
    expect(await statusOf(id)).toBe('failed');
    if (SCREENSHOTS) await p.screenshot({ path: path.join(ROOT, 'docs/images/console-run.png'), fullPage: true });
    // The failures page groups it by its error, with a retry for the group.
    await p.goto(`${base}/failures`);
    const group = p.locator('table.failures tr', { hasText: 'upstream refused job 100' });
    expect(await group.locator('td.n').textContent()).toBe('1');
    expect(await group.locator('button').textContent()).toBe('Retry 1');
    expect(cspViolations).toEqual([]);
    await p.close();
  });

  it('retry from the run page completes the run once the cause is fixed', async () => {
    const id = await start({ id: 101, upstream: true });
    await until(id, 'failed');
    await db.pool.query('UPDATE console_flags SET broken = false');
    const p = await page();
    await signIn(p, `/runs/${id}`);
    await p.click('button:has-text("Retry")');
    // The page follows the run (live refresh while it is unfinished) until it completes.
    await p.waitForFunction(() => (globalThis as unknown as { document: { querySelector(s: string): { textContent: string | null } | null } }).document.querySelector('#run-status')?.textContent === 'completed', undefined, { timeout: 60_000 });
    expect(await statusOf(id)).toBe('completed');
    expect(await p.locator('#timeline').textContent()).toContain('work');
    await db.pool.query('UPDATE console_flags SET broken = true');
    await p.close();
  });

  it('renders hostile row data as inert text: markup, script, right-to-left override, 5 MB', async () => {
    const hostile = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"><b>bold</b> \u202Egnp.exe';
    const big = 'x'.repeat(5 * 1024 * 1024);
    // jsonb orders keys by length: `t` comes first in the preview, `big` after it.
    const id = await start({ id: 200, t: hostile, big });
    await until(id, 'completed');
    const p = await page();
    const res = await p.goto(`${base}/runs/${id}`);
    const body = await res!.text();
    expect(body.length).toBeLessThan(200_000); // a preview, not 5 MB
    expect(await p.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await p.locator('#input b').count()).toBe(0);
    const shown = (await p.locator('#input').textContent())!;
    expect(shown).toContain('<script>window.__pwned = 1</script>');
    expect(shown).toContain('<b>bold</b>');
    expect(shown).toContain('⟨U+202E⟩gnp.exe');
    expect(shown).not.toContain('\u202E');
    // The whole value is one click away, as plain text.
    const all = await p.request.get(`${base}/runs/${id}/input`);
    expect(all.headers()['content-type']).toMatch(/^text\/plain/);
    expect((await all.text()).length).toBeGreaterThan(5 * 1024 * 1024);
    expect(await p.locator('#input-all').count()).toBe(1);
    expect(await p.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    await p.close();
  });

  it('a parked run shows what it waits for, its parent and children; its signal form sends (bad JSON shown, not sent)', async () => {
    const parent = (await db.pool.query(`SELECT walflow.start('console-approvals', '{"id": 7}') AS id`)).rows[0].id as string;
    const kindOf = async (id: string) => (await db.pool.query('SELECT kind FROM walflow.waits WHERE run_id = $1', [id])).rows[0]?.kind as string | undefined;
    await waitFor('the parent parked on its child', async () => (await kindOf(parent)) === 'children', 60_000);
    const child = (await db.pool.query('SELECT id FROM walflow.runs WHERE parent_run_id = $1', [parent])).rows[0].id as string;
    await waitFor('the child parked on its signal', async () => (await kindOf(child)) === 'signal', 60_000);
    await browser.context.clearCookies();
    const p = await page();
    // Overview and runs list: the parked counts from walflow.status.
    await p.goto(`${base}/`);
    expect(await p.locator('tr[data-pipeline="console-review"] td[data-col="awaiting_signal"]').textContent()).toBe('1');
    expect(await p.locator('tr[data-pipeline="console-approvals"] td[data-col="awaiting_children"]').textContent()).toBe('1');
    await p.goto(`${base}/runs?pipeline=console-review`);
    expect(await p.locator('#parked b[data-parked="awaiting_signal"]').textContent()).toBe('1');
    // The parent: waits for its children, one left, linked.
    await p.goto(`${base}/runs/${parent}`);
    expect(await p.locator('#waiting-for').getAttribute('data-kind')).toBe('children');
    expect(await p.locator('#waiting-for').textContent()).toContain('1 of 1 left');
    expect(await p.locator(`#children a[href="/runs/${child}"]`).count()).toBe(1);
    // The child, not signed in: what it waits for and its parent; no form, and a forged POST is refused.
    await p.goto(`${base}/runs/${child}`);
    expect(await p.locator('#waiting-for').textContent()).toMatch(/In step approval, since .*: a signal approval · times out at /);
    expect(await p.locator(`#parent a[href="/runs/${parent}"]`).count()).toBe(1);
    expect(await p.locator('#signal-form').count()).toBe(0);
    const forged = await p.evaluate(async (url) => (await fetch(url, { method: 'POST', body: new URLSearchParams({ csrf: 'x', name: 'approval', payload: '{}' }) })).status, `${base}/runs/${child}/signal`);
    expect(forged).toBe(403);
    // Signed in: bad JSON is shown next to the form (what was typed kept) and nothing is sent.
    await signIn(p, `/runs/${child}`);
    expect(await p.inputValue('#signal-form input[name=name]')).toBe('approval');
    await p.fill('#signal-form textarea[name=payload]', '{approved: yes}');
    const [bad] = await Promise.all([p.waitForResponse((r) => r.url().endsWith('/signal')), p.click('#signal-form button')]);
    expect(bad.status()).toBe(400);
    expect(await p.locator('#signal-notice').textContent()).toMatch(/^Signal not sent: The payload is not JSON/);
    expect(await p.inputValue('#signal-form textarea[name=payload]')).toBe('{approved: yes}');
    expect((await db.pool.query('SELECT count(*)::int AS n FROM walflow.signals WHERE run_id = $1', [child])).rows[0].n).toBe(0);
    if (SCREENSHOTS) {
      await p.goto(`${base}/runs/${child}`);
      await p.screenshot({ path: path.join(ROOT, 'docs/images/console-waits.png'), fullPage: true });
    }
    // A good payload: sent, consumed by the wait, and the child and then its parent complete.
    await p.fill('#signal-form textarea[name=payload]', '{"approved": true, "by": "ann"}');
    // The page's live refresh (every 2 s while the run is unfinished) keeps what is being typed.
    await p.evaluate(() => new Promise((settled) => (globalThis as unknown as { document: { body: { addEventListener(e: string, f: (v: unknown) => void, o: object): void } } })
      .document.body.addEventListener('htmx:afterSettle', settled, { once: true })));
    expect(await p.inputValue('#signal-form textarea[name=payload]')).toBe('{"approved": true, "by": "ann"}');
    await Promise.all([p.waitForURL(/\?signal=\d+$/), p.click('#signal-form button')]);
    await until(child, 'completed');
    await until(parent, 'completed');
    expect((await db.pool.query('SELECT walflow.result($1) AS r', [parent])).rows[0].r).toEqual({ results: [{ approved: { approved: true, by: 'ann' }, timedOut: false }] });
    // A finished run takes no signal: the refusal is shown on the page, not thrown.
    const late = await p.evaluate(async ({ url, csrf }) => {
      const r = await fetch(url, { method: 'POST', body: new URLSearchParams({ csrf, name: 'approval', payload: '' }) });
      return { status: r.status, text: await r.text() };
    }, { url: `${base}/runs/${child}/signal`, csrf: await p.locator('input[name=csrf]').first().inputValue() });
    expect(late.status).toBe(400);
    expect(late.text).toMatch(/Signal not sent: run [0-9a-f-]+ is completed: signals go only to unfinished runs/);
    expect(cspViolations).toEqual([]);
    await p.close();
  });

  it('keyset pages reach the oldest of 100,000 runs', async () => {
    await db.pool.query(`INSERT INTO walflow.pipelines (name, version, steps) VALUES ('console-bulk', 'v1', '{one}')`);
    // Ids are UUIDv7 of distinct milliseconds, one per run, oldest first (what walflow would make).
    await db.pool.query(`
      INSERT INTO walflow.runs (id, pipeline, key, status, input, step_index, created_at, finished_at)
      SELECT (substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid,
             'console-bulk', 'k' || g, 'completed', '{}'::jsonb, 1, t, t
        FROM generate_series(1, 100000) g,
             LATERAL (SELECT now() - interval '1 day' + g * interval '1 ms' AS t) tt,
             LATERAL (SELECT lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') AS h) hh`);
    const { rows: [ends] } = await db.pool.query(`SELECT min(id::text) AS oldest, max(id::text) AS newest FROM walflow.runs WHERE pipeline = 'console-bulk'`);
    const p = await page();
    // What this test is about is which rows the pages hold, not how fast 1,000-row pages render:
    // under a full parallel test run on two cores a page can take longer than Playwright's 30 s.
    p.setDefaultTimeout(150_000);
    p.setDefaultNavigationTimeout(150_000);
    await p.goto(`${base}/runs?pipeline=console-bulk&limit=1000`);
    // Follow a pager link and wait for the whole new page (a 1,000-row table arrives in pieces).
    const follow = async (link: string) => void (await Promise.all([p.waitForEvent('load'), p.click(link)]));
    const ids = () => p.locator('#runs tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run')!));
    const first = await ids();
    expect(first).toHaveLength(1000);
    expect(first[0]).toBe(ends.newest);
    // Older: the next page starts right below this one.
    await follow('#page-older');
    const second = await ids();
    expect(second).toHaveLength(1000);
    expect(second[0]! < first[999]!).toBe(true);
    expect(new Set([...first, ...second]).size).toBe(2000);
    // Oldest: the last page ends with the oldest run; Newer walks back up without a gap.
    await follow('#page-oldest');
    const last = await ids();
    expect(last[last.length - 1]).toBe(ends.oldest);
    expect(last).toHaveLength(1000);
    expect(await p.locator('#page-older').count()).toBe(0);
    await follow('#page-newer');
    const above = await ids();
    expect(above[above.length - 1]! > last[0]!).toBe(true);
    const { rows: [gap] } = await db.pool.query(
      `SELECT count(*)::int AS n FROM walflow.runs WHERE pipeline = 'console-bulk' AND id > $1 AND id < $2`, [above[above.length - 1], last[0]]);
    expect(gap.n).toBe(0);
    await p.close();
  }, 600_000);
});

if (SCREENSHOTS) fs.mkdirSync(path.join(ROOT, 'docs/images'), { recursive: true });

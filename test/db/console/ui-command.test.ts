// `walflow ui` as a real process against this file's database: it serves the console on loopback,
// refuses other Host names (DNS rebinding), and without WALFLOW_UI_TOKEN offers no action and
// refuses one with a message saying how to enable it; with a view token, nothing shows without it.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';
import { BIN, childEnv, freePort, ROOT } from '../ops/support/cli.js';

const db = useTestDatabase();
const children: ChildProcess[] = [];

async function startUi(env: Record<string, string>): Promise<string> {
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, 'ui', '--port', String(port)], { cwd: ROOT, env: childEnv({ DATABASE_URL: db.url, ...env }), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor('walflow ui to print its URL', async () => out.includes(`walflow console on http://127.0.0.1:${port}/`) || (child.exitCode !== null && Promise.reject(new Error(out))), 30_000);
  return `http://127.0.0.1:${port}`;
}

afterEach(async () => {
  for (const c of children.splice(0)) {
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
    expect(c.exitCode).toBe(0);
  }
});

describe('walflow ui', () => {
  it('serves the console read-only without WALFLOW_UI_TOKEN, and refuses actions saying how to enable them', async () => {
    const id = (await db.pool.query(`INSERT INTO walflow.runs (pipeline, status, input, error, finished_at) VALUES ('p', 'failed', '{}', '{"message": "boom"}', now()) RETURNING id`)).rows[0].id as string;
    const base = await startUi({});
    const page = await fetch(`${base}/runs/${id}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain('boom');
    expect(html).not.toMatch(/<button[^>]*>Retry/);
    expect(html).toContain('Retry and cancel are disabled: start the console with <code>WALFLOW_UI_TOKEN</code> set');
    const post = await fetch(`${base}/runs/${id}/retry`, { method: 'POST', body: new URLSearchParams({ csrf: 'x' }) });
    expect(post.status).toBe(403);
    expect(await post.text()).toContain('WALFLOW_UI_TOKEN');
    expect((await db.pool.query('SELECT status FROM walflow.runs WHERE id = $1', [id])).rows[0].status).toBe('failed');
    // A page reached through another host name (DNS rebinding) is refused.
    // (node:http: fetch does not let a caller set Host.)
    const rebound = await new Promise<number>((resolve, reject) => {
      http.get(`${base}/`, { headers: { host: 'attacker.example' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      }).on('error', reject);
    });
    expect(rebound).toBe(421);
  });

  it('with WALFLOW_UI_VIEW_TOKEN, shows nothing until signed in', async () => {
    const base = await startUi({ WALFLOW_UI_VIEW_TOKEN: 'view-token-0123456789' });
    const anonymous = await fetch(`${base}/runs`, { redirect: 'manual' });
    expect(anonymous.status).toBe(303);
    expect(anonymous.headers.get('location')).toBe('/login?next=%2Fruns');
    expect((await fetch(`${base}/fragments/overview`)).status).toBe(401);
    const wrong = await fetch(`${base}/login`, { method: 'POST', body: new URLSearchParams({ token: 'nope', next: '/runs' }), redirect: 'manual' });
    expect(wrong.status).toBe(403);
    const login = await fetch(`${base}/login`, { method: 'POST', body: new URLSearchParams({ token: 'view-token-0123456789', next: '/runs' }), redirect: 'manual' });
    expect(login.status).toBe(303);
    const cookie = login.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    const runs = await fetch(`${base}/runs`, { headers: { cookie: cookie.split(';')[0]! } });
    expect(runs.status).toBe(200);
    expect(await runs.text()).toContain('<h1>Runs</h1>');
  });
});

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const bin = new URL('../../bin/walflow.js', import.meta.url).pathname;

async function walflow(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('node', [bin, ...args], { env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('walflow CLI user errors', () => {
  it.each([
    ['a malformed DATABASE_URL', { DATABASE_URL: 'localhost:5432' }, /must start with postgres:\/\/|not a valid URL/],
    ['an unreachable server', { DATABASE_URL: 'postgres://u:topsecret@127.0.0.1:1/db' }, /cannot connect to 127\.0\.0\.1:1\/db: connection refused/],
    ['an invalid setting', { WALFLOW_WORKERS: '-1', DATABASE_URL: 'postgres://127.0.0.1:1/db' }, /workers \(WALFLOW_WORKERS\)/],
  ])('migrate with %s prints one line and exits 2', async (_what, env, pattern) => {
    const { code, stderr } = await walflow(['migrate'], env);
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(pattern);
    expect(stderr).not.toContain('topsecret');
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses `db` commands when DATABASE_URL points elsewhere', async () => {
    const { code, stderr } = await walflow(['db', 'status'], { DATABASE_URL: 'postgres://h/db' });
    expect(code).toBe(2);
    expect(stderr).toMatch(/DATABASE_URL is set/);
  });
});

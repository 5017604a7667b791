// The CLI's usage errors and help, which need no database: exit 2 and one line on stderr for a
// mistake, exit 0 for --help and --version.
import { describe, expect, it } from 'vitest';
import { failure, walflow } from '../../db/ops/support/cli.js';

const noDb = { DATABASE_URL: 'postgres://u:pw-unit-usage@127.0.0.1:1/none' };

describe('walflow usage', () => {
  it.concurrent.each([
    [['bogus'], /^walflow: unknown command 'bogus' \(see `walflow --help`\)$/],
    [['runs', '--bogus'], /^walflow: unknown option '--bogus' \(see `walflow runs --help`\)$/],
    [['inspect'], /^walflow: missing required argument 'run' \(see `walflow inspect --help`\)$/],
    [['db', 'url', 'extra'], /^walflow: too many arguments for 'url'\. Expected 0 arguments but got 1\. \(see `walflow db url --help`\)$/],
    [['runs', '--limit'], /^walflow: option '--limit <n>' argument missing \(see `walflow runs --help`\)$/],
    [['runs', '--limit', 'ten'], /^walflow: --limit must be a positive whole number \(got "ten"\)$/],
    [['inspect', 'not-a-run'], /^walflow: "not-a-run" is not a run id/],
    [['runs', '--status', 'done'], /^walflow: unknown status "done"/],
    [['search', 'p', 'q', '-k', '0'], /^walflow: -k must be a whole number from 1 to 1000 \(got "0"\)$/],
    [['backfill', 'p', '--batch-size', '1e9'], /^walflow: --batch-size must be a whole number from 1 to 100000 \(got "1e9"\)$/],
    [['run', '--workers', '-3'], /^walflow: invalid configuration: workers \(--workers\): must be a whole number from 0 to 256 \(got "-3"\)$/],
    [['status'], /^walflow: cannot connect to 127\.0\.0\.1:1\/none: connection refused/],
  ])('%j: exit 2, one line, no stack', async (args, pattern) => {
    const r = failure(await walflow(args, noDb));
    expect(r).toMatchObject({ code: 2, lines: 1, stack: false, stdout: '' });
    expect(r.line).toMatch(pattern);
    expect(r.line).not.toContain('pw-unit-usage');
  });

  it('--help and --version exit 0 on stdout; no command prints usage and exits 2', async () => {
    const [help, version, runHelp, none] = await Promise.all([walflow(['--help'], {}), walflow(['--version'], {}), walflow(['run', '--help'], {}), walflow([], {})]);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    for (const cmd of ['db', 'migrate', 'run', 'pipelines', 'backfill', 'search', 'status', 'runs', 'inspect', 'retry', 'cancel']) expect(help.stdout).toMatch(new RegExp(`\\n  ${cmd} `));
    expect(version).toMatchObject({ code: 0, stdout: '0.1.0\n' });
    expect(runHelp.stdout).toMatch(/--no-replication/);
    expect(none.code).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/^Usage: walflow/);
  });
});

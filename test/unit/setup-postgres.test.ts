// scripts/setup-postgres.sh on a machine that lacks PostgreSQL and pgvector, with apt-get, make
// and friends replaced by shims that record what they are asked (and the apt sources directory,
// the PostgreSQL paths, redirected to a temporary directory). The script must say what it will
// install and upgrade before installing, never upgrade what is installed (--no-upgrade), and
// leave no Debian trixie deb-src entry behind (removed, then apt-get update), even on failure.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const SCRIPT = fileURLToPath(new URL('../../scripts/setup-postgres.sh', import.meta.url));
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

interface Machine {
  root: string;
  entry: string;
  run(args?: string[], env?: Record<string, string>): { code: number | null; out: string };
}

/** A fake Debian machine: shims print "SHIM <command> <args>" on stderr, which the run merges with stdout in order. */
function machine(opts: { installed?: boolean; leftoverEntry?: boolean } = {}): Machine {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wf-setup-'));
  dirs.push(root);
  const bin = path.join(root, 'shims');
  const pgbin = path.join(root, 'pg/bin');
  const share = path.join(root, 'pg/share');
  const sources = path.join(root, 'sources.list.d');
  for (const d of [bin, pgbin, share, sources, path.join(root, 'include')]) fs.mkdirSync(d, { recursive: true });
  const entry = path.join(sources, 'walflow-trixie-src.sources');
  const shim = (name: string, body: string) => fs.writeFileSync(path.join(bin, name), `#!/usr/bin/env bash\necho "SHIM ${name} $*" >&2\n${body}\n`, { mode: 0o755 });
  shim('apt-get', `
case " $* " in
  *" -s "*) echo "Inst postgresql-99 (99.1-1 Debian:12/stable [amd64])"; echo "Inst libpq5 [15.5-0] (15.8-0 Debian:12/stable [amd64])";;
  *" update "*) if [ -f "${entry}" ]; then echo "SHIM update with trixie entry" >&2; else echo "SHIM update without trixie entry" >&2; fi;;
  *" install "*) touch "${pgbin}/initdb"; chmod +x "${pgbin}/initdb";;
  *" source "*) [ -z "\${FAIL_SOURCE:-}" ] || exit 100; touch pgvector_0.8.0-1.dsc;;
esac`);
  shim('apt-cache', 'exit 0');
  shim('dpkg-source', 'mkdir -p src');
  shim('gcc', 'exit 0');
  shim('make', `case " $* " in *" install "*) mkdir -p "${share}/extension"; touch "${share}/extension/vector.control";; esac`);
  shim('sudo', '[ "$1" != -n ] || shift; exec "$@"');
  shim('pg_lsclusters', 'exit 0');
  fs.writeFileSync(path.join(pgbin, 'pg_config'), `#!/usr/bin/env bash\necho "${share}"\n`, { mode: 0o755 });
  if (opts.installed) {
    fs.writeFileSync(path.join(pgbin, 'initdb'), '', { mode: 0o755 });
    fs.mkdirSync(path.join(share, 'extension'));
    fs.writeFileSync(path.join(share, 'extension/vector.control'), '');
  }
  if (opts.leftoverEntry) fs.writeFileSync(entry, 'Types: deb-src\n');
  return {
    root, entry,
    run(args = [], env = {}) {
      const r = spawnSync('bash', ['-c', `bash "${SCRIPT}" "$@" 2>&1`, 'setup', ...args], {
        encoding: 'utf8',
        env: {
          PATH: `${bin}:/usr/bin:/bin`, HOME: root, PG_MAJOR: '99', PG_BINDIR: pgbin, PG_INCLUDEDIR: path.join(root, 'include'), APT_SOURCES_DIR: sources, ...env,
        },
      });
      return { code: r.status, out: r.stdout };
    },
  };
}

const lines = (out: string) => out.trim().split('\n');
const indexOf = (out: string, re: RegExp) => lines(out).findIndex((l) => re.test(l));

describe('scripts/setup-postgres.sh', () => {
  it('says what it will install and upgrade before installing, and installs with --no-upgrade', () => {
    const m = machine();
    const { code, out } = m.run();
    expect(code, out).toBe(0);
    const plan = indexOf(out, /^setup-postgres: will install: postgresql-99 99\.1-1$/);
    const upgrades = indexOf(out, /^setup-postgres: will upgrade: libpq5 15\.5-0 -> 15\.8-0$/);
    const install = indexOf(out, /^SHIM apt-get .*install -y .*--no-upgrade .*postgresql-99 postgresql-server-dev-99$/);
    expect(plan, out).toBeGreaterThanOrEqual(0);
    expect(upgrades, out).toBeGreaterThan(plan);
    expect(install, out).toBeGreaterThan(upgrades);
    expect(out).toContain('setup-postgres: pgvector installed');
  });

  it('removes the trixie deb-src entry once the source is fetched, then refreshes the lists without it', () => {
    const m = machine();
    const { code, out } = m.run();
    expect(code, out).toBe(0);
    expect(fs.existsSync(m.entry)).toBe(false);
    const fetched = indexOf(out, /^SHIM apt-get source/);
    const updates = lines(out).map((l, i) => [l, i] as const).filter(([l]) => /^SHIM update /.test(l));
    expect(updates.some(([l, i]) => i < fetched && l === 'SHIM update with trixie entry'), out).toBe(true);
    expect(updates.at(-1)![0], out).toBe('SHIM update without trixie entry');
    expect(updates.at(-1)![1]).toBeGreaterThan(fetched);
    expect(out).toMatch(/removing the Debian trixie deb-src entry/);
  });

  it('removes the entry also when fetching the source fails', () => {
    const m = machine();
    const { code, out } = m.run([], { FAIL_SOURCE: '1' });
    expect(code, out).not.toBe(0);
    expect(out).toContain('SHIM update with trixie entry'); // it was there for the fetch
    expect(fs.existsSync(m.entry)).toBe(false);
    expect(lines(out).filter((l) => l.startsWith('SHIM update')).at(-1), out).toBe('SHIM update without trixie entry');
  });

  it('--dry-run prints the plan and changes nothing', () => {
    const m = machine();
    const { code, out } = m.run(['--dry-run']);
    expect(code, out).toBe(0);
    expect(out).toMatch(/will install: postgresql-99 99\.1-1/);
    expect(out).toMatch(/will upgrade: libpq5 15\.5-0 -> 15\.8-0/);
    expect(out).not.toMatch(/^SHIM apt-get (update|.*install -y|source)/m);
    expect(fs.existsSync(m.entry)).toBe(false);
  });

  it('already installed: does nothing, but removes a trixie entry an earlier version left behind', () => {
    const clean = machine({ installed: true });
    expect(clean.run()).toEqual({ code: 0, out: 'setup-postgres: PostgreSQL 99 and pgvector are installed\n' });
    const m = machine({ installed: true, leftoverEntry: true });
    const { code, out } = m.run();
    expect(code, out).toBe(0);
    expect(fs.existsSync(m.entry)).toBe(false);
    expect(lines(out).at(-1)).toBe('SHIM update without trixie entry');
  });
});

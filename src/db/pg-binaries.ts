// Finds PostgreSQL server binaries and checks that pgvector is installed for them.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';

export interface PgBinaries {
  bindir: string;
  initdb: string;
  pgCtl: string;
  postgres: string;
  major: number;
  /** `share/extension` directory of this installation. */
  extensionDir: string;
}

const SETUP_HINT = 'run `sudo bash scripts/setup-postgres.sh` (Debian/Ubuntu: installs PostgreSQL and builds pgvector), or set DATABASE_URL to a server you already have';

function tryExec(file: string, args: string[]): string | undefined {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

function candidateBindirs(searchPath: string): string[] {
  const dirs: string[] = [];
  for (const dir of searchPath.split(path.delimiter)) {
    if (dir && fs.existsSync(path.join(dir, 'initdb'))) dirs.push(dir);
  }
  const fromPgConfig = tryExec('pg_config', ['--bindir']);
  if (fromPgConfig) dirs.push(fromPgConfig);
  // Debian/Ubuntu keep server binaries out of PATH; prefer the newest major.
  const debRoot = '/usr/lib/postgresql';
  if (fs.existsSync(debRoot)) {
    const majors = fs
      .readdirSync(debRoot)
      .filter((d) => /^\d+$/.test(d))
      .sort((a, b) => Number(b) - Number(a));
    for (const m of majors) dirs.push(path.join(debRoot, m, 'bin'));
  }
  return [...new Set(dirs)].filter((d) => fs.existsSync(path.join(d, 'initdb')) && fs.existsSync(path.join(d, 'pg_ctl')));
}

export function findPgBinaries(searchPath = ''): PgBinaries {
  const bindir = candidateBindirs(searchPath)[0];
  if (!bindir) throw new UserError(`PostgreSQL server binaries (initdb, pg_ctl) not found on PATH, via pg_config, or under /usr/lib/postgresql: ${SETUP_HINT}`);
  const version = tryExec(path.join(bindir, 'postgres'), ['--version']) ?? '';
  const major = Number(/(\d+)(?:\.\d+)?/.exec(version.replace(/^[^\d]*/, ''))?.[1] ?? NaN);
  if (!Number.isFinite(major) || major < 14) {
    throw new UserError(`PostgreSQL in ${bindir} reports "${version}"; walflow needs PostgreSQL 14 or newer: ${SETUP_HINT}`);
  }
  const pgConfig = path.join(bindir, 'pg_config');
  const sharedir =
    (fs.existsSync(pgConfig) ? tryExec(pgConfig, ['--sharedir']) : undefined) ?? `/usr/share/postgresql/${major}`;
  return {
    bindir,
    initdb: path.join(bindir, 'initdb'),
    pgCtl: path.join(bindir, 'pg_ctl'),
    postgres: path.join(bindir, 'postgres'),
    major,
    extensionDir: path.join(sharedir, 'extension'),
  };
}

export function assertPgvectorInstalled(bins: PgBinaries): void {
  if (!fs.existsSync(path.join(bins.extensionDir, 'vector.control'))) {
    throw new UserError(`pgvector is not installed for PostgreSQL ${bins.major} (no vector.control in ${bins.extensionDir}): ${SETUP_HINT}`);
  }
}

// How the embedded cluster authenticates. TCP on 127.0.0.1 is reachable by every local user, so it
// takes a password (scram-sha-256): a generated one, kept in a file of the data directory that only
// its owner can read, and carried in the URL that `walflow db url` prints. The Unix socket stays
// passwordless (trust) but private: it lives in a directory only the server's user can enter (the
// data directory, or a 0700 one under /tmp) and is itself mode 0700, so whoever can open it could
// read the data directory anyway.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { registerSecret, UserError } from '../errors.js';

export const PASSWORD_FILE = 'walflow-password';

const HBA = `# Written by walflow (src/db/cluster-auth.ts); rewritten at every \`walflow db start\`.
# The Unix socket is private (a 0700 directory, unix_socket_permissions 0700): trust.
# TCP is open to every local user: the password in ${PASSWORD_FILE} (mode 0600).
local   all          all                  trust
local   replication  all                  trust
host    all          all   127.0.0.1/32   scram-sha-256
host    replication  all   127.0.0.1/32   scram-sha-256
host    all          all   ::1/128        scram-sha-256
host    replication  all   ::1/128        scram-sha-256
`;

export const AUTH_SETTINGS = { unix_socket_permissions: '0700', password_encryption: "'scram-sha-256'" };

function passwordPath(dataDir: string): string {
  return path.join(dataDir, PASSWORD_FILE);
}

/** The cluster's password, or undefined for a cluster made before passwords (upgraded at its next start). */
export function readPassword(dataDir: string): string | undefined {
  const file = passwordPath(dataDir);
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return undefined;
  }
  if ((st.mode & 0o077) !== 0) {
    throw new UserError(`${file} holds the embedded cluster's password and is readable by others: chmod 600 ${file}`);
  }
  const password = fs.readFileSync(file, 'utf8').trim();
  registerSecret(password); // never in a log line or an error message
  return password;
}

/** Reads the password, generating it (mode 0600, created exclusively) the first time. */
export function ensurePassword(dataDir: string): string {
  const existing = readPassword(dataDir);
  if (existing) return existing;
  try {
    fs.writeFileSync(passwordPath(dataDir), randomBytes(24).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err; // another `db start` made it first
  }
  return readPassword(dataDir)!;
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677, as psql's
 * \password computes it), so that the password itself never travels in SQL text, where a failed
 * statement would write it to the server log.
 */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** Whether pg_hba.conf is walflow's password-protected one (a cluster made before it trusts TCP). */
export function hbaIsCurrent(dataDir: string): boolean {
  try {
    return fs.readFileSync(path.join(dataDir, 'pg_hba.conf'), 'utf8') === HBA;
  } catch {
    return false;
  }
}

export function writeHba(dataDir: string, runAs: { uid: number; gid: number } | undefined): void {
  const file = path.join(dataDir, 'pg_hba.conf');
  fs.writeFileSync(file, HBA, { mode: 0o600 });
  if (runAs) fs.chownSync(file, runAs.uid, runAs.gid);
}

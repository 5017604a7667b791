// Where the embedded cluster's Unix socket lives. A socket path holds at most 107 bytes (sun_path),
// and PostgreSQL refuses to start when it can create none of its sockets: a data directory too deep
// for "<dir>/.s.PGSQL.<port>" gets a short directory of its own under /tmp, with a random name,
// owned by the server's user, mode 0700.
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';

const MAX_SOCKET_PATH = 107;

export function socketFitsIn(dir: string): boolean {
  return Buffer.byteLength(path.join(dir, '.s.PGSQL.65535')) <= MAX_SOCKET_PATH;
}

/**
 * Creates the short socket directory: a fresh random one, or `dir` again (same path, since the
 * server's settings name it). An existing `dir` is used only if it is a real directory owned by
 * the server's user and closed to others: /tmp is shared, and a planted one would let another
 * user stand in for the server's socket.
 */
export function makePrivateSocketDir(dir: string | undefined, runAs: { uid: number; gid: number } | undefined): string {
  let made: string;
  let created = true;
  if (dir) {
    created = !fs.existsSync(dir);
    if (created) fs.mkdirSync(dir, { mode: 0o700 });
    made = dir;
  } else {
    made = fs.mkdtempSync(path.join('/tmp', 'walflow-'));
  }
  // Only what we just made changes hands; a directory found there is judged as it is.
  if (runAs && created) fs.chownSync(made, runAs.uid, runAs.gid);
  const st = fs.lstatSync(made);
  const owner = runAs?.uid ?? process.getuid?.();
  if (!st.isDirectory() || (owner !== undefined && st.uid !== owner) || (st.mode & 0o077) !== 0) {
    throw new UserError(`socket directory ${made} is not a private directory of the server's user (another user may have created it): remove it and start again`);
  }
  return made;
}

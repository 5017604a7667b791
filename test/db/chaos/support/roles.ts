// Test helper: connecting as a role created by a least-privilege test (TCP needs its password).
import pg from 'pg';

/** `url` with `role` and `password` as its user. */
export function urlAs(url: string, role: string, password: string): string {
  const u = new URL(url);
  u.username = role;
  u.password = password;
  return u.toString();
}

/** Runs `fn` on a connection of its own as `role`, closed afterwards. */
export async function asRole<T>(url: string, role: string, password: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: urlAs(url, role, password) });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

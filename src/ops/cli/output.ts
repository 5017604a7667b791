// Command output: human tables by default, one JSON document with --json.
import { loadConfig, type ConfigInput, type WalflowConfig } from '../../config/config.js';
import { connectClient, resolveDatabaseUrl } from '../../db/connection.js';
import type pg from 'pg';

export function formatTable(rows: Record<string, unknown>[], columns?: string[]): string {
  if (rows.length === 0) return '(none)';
  const cols = columns ?? Object.keys(rows[0]!);
  const cell = (v: unknown): string => (v === null || v === undefined ? '' : v instanceof Date ? v.toISOString() : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const widths = cols.map((c) => Math.min(60, Math.max(c.length, ...rows.map((r) => cell(r[c]).length))));
  const line = (vals: string[]) => vals.map((v, i) => (v.length > widths[i]! ? v.slice(0, widths[i]! - 1) + '…' : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(cols.map((c) => c.toUpperCase())), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n');
}

export function emit(json: boolean | undefined, value: unknown, human: () => string): void {
  process.stdout.write((json ? JSON.stringify(value, null, 0) : human()) + '\n');
}

/** Runs `fn` with a connected client to the configured database, then closes it. */
export async function withClient<T>(fn: (c: pg.Client, config: WalflowConfig) => Promise<T>, overrides: Partial<ConfigInput> = {}): Promise<T> {
  const config = loadConfig(overrides);
  const client = await connectClient(await resolveDatabaseUrl(config));
  try {
    return await fn(client, config);
  } finally {
    await client.end();
  }
}

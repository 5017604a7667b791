// Command output: human tables by default, one JSON document with --json; number and size formatting
// shared by the CLI and the console (which is why it sits here, below both, not in cli/).
import { loadConfig, type ConfigInput, type WalflowConfig } from '../config/config.js';
import { connectClient, resolveDatabaseUrl } from '../db/connection.js';
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

/** A bigint / numeric column (a string in node-pg) as a number; null stays null. */
export function num(v: unknown): number | null {
  return v === null || v === undefined ? null : Number(v);
}

/** 95 → "1m35s", 0.4 → "0s", null → "". */
export function formatSeconds(s: number | null): string {
  if (s === null) return '';
  const t = Math.round(s);
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, '0')}s`;
  return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, '0')}m`;
}

/** 1536 → "1.5 kB". */
export function formatBytes(b: number | null): string {
  if (b === null) return '';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = b;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** Runs `fn` with a connected client to the configured database, then closes it. */
export async function withClient<T>(fn: (c: pg.Client, config: WalflowConfig) => Promise<T>, overrides: Partial<ConfigInput> = {}): Promise<T> {
  const config = loadConfig(overrides);
  const client = await connectClient(await resolveDatabaseUrl(config));
  // A connection that drops mid-command fails the running query; do not crash on the event too.
  client.on('error', () => undefined);
  try {
    return await fn(client, config);
  } finally {
    await client.end().catch(() => undefined);
  }
}

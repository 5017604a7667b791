// Durations as people write them in pipeline definitions, SQL and the CLI: '500ms', '30s', '10m',
// '2h', '1d', '1w', or several together ('1h30m'); a number is milliseconds.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const PART = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)/gy;

/** True when `text` reads as a duration (so that an ISO instant is not taken for one). */
export function isDurationText(text: string): boolean {
  return /^\s*(\d+(?:\.\d+)?\s*(ms|s|m|h|d|w)\s*)+$/.test(text);
}

/** Milliseconds of a duration; throws an Error saying what is accepted. */
export function parseDuration(value: unknown, what = 'duration'): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return Math.round(value);
    throw new Error(`${what} must be a non-negative number of milliseconds (got ${value})`);
  }
  if (typeof value === 'string') {
    const text = value.trim();
    if (isDurationText(text)) {
      let total = 0;
      PART.lastIndex = 0;
      const compact = text.replace(/\s+/g, '');
      let m: RegExpExecArray | null;
      while ((m = PART.exec(compact)) !== null) total += Number(m[1]) * UNIT_MS[m[2]!]!;
      return Math.round(total);
    }
  }
  throw new Error(`${what}: ${JSON.stringify(value)} is not a duration (write milliseconds, or e.g. '500ms', '30s', '10m', '2h', '1d', '1h30m')`);
}

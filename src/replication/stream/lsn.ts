// LSNs ("16/B374D848") as bigints: compare, order and step them without losing the high word.

/** Parses "X/Y" (hex halves) into a 64-bit position. */
export function parseLsn(lsn: string): bigint {
  const slash = lsn.indexOf('/');
  if (slash <= 0) throw new Error(`not an LSN: "${lsn}"`);
  const hi = BigInt(`0x${lsn.slice(0, slash)}`);
  const lo = BigInt(`0x${lsn.slice(slash + 1)}`);
  return (hi << 32n) | lo;
}

/** Formats a position the way PostgreSQL prints pg_lsn ("16/B374D848"). */
export function formatLsn(pos: bigint): string {
  return `${(pos >> 32n).toString(16).toUpperCase()}/${(pos & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function compareLsn(a: string, b: string): number {
  const d = parseLsn(a) - parseLsn(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

export function maxLsn(a: string, b: string): string {
  return compareLsn(a, b) >= 0 ? a : b;
}

export const ZERO_LSN = '0/0';

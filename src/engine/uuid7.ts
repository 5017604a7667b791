// Time-ordered UUIDs (RFC 9562 version 7), made in the process that starts the runs: Postgres'
// walflow.uuid_v7() costs a few microseconds per row, which on a 50,000-changes/s stream is a
// noticeable share of the writer's time. Same layout: 48-bit Unix milliseconds, version 7, the
// RFC variant, and random bits, so the primary key index stays append-mostly.
import { randomFillSync } from 'node:crypto';

const POOL_SIZE = 16 * 1024;
const pool = Buffer.alloc(POOL_SIZE);
let offset = POOL_SIZE;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function randomBytes10(): number {
  if (offset + 10 > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const at = offset;
  offset += 10;
  return at;
}

export function uuidv7(now = Date.now()): string {
  const r = randomBytes10();
  // 48-bit timestamp as 12 hex digits.
  const ts = now.toString(16).padStart(12, '0');
  const b0 = (pool[r]! & 0x0f) | 0x70; // version 7
  const b2 = (pool[r + 2]! & 0x3f) | 0x80; // RFC 9562 variant
  return (
    `${ts.slice(0, 8)}-${ts.slice(8, 12)}-${HEX[b0]}${HEX[pool[r + 1]!]}-${HEX[b2]}${HEX[pool[r + 3]!]}-` +
    `${HEX[pool[r + 4]!]}${HEX[pool[r + 5]!]}${HEX[pool[r + 6]!]}${HEX[pool[r + 7]!]}${HEX[pool[r + 8]!]}${HEX[pool[r + 9]!]}`
  );
}

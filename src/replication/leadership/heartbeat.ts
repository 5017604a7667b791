// Runs the leader's periodic duties without overlap: a non-transactional logical message that moves
// an idle slot forward, the lag figure, and checks that source tables still exist.
import type { Logger } from 'pino';
import { repeatWithoutOverlap, type Repeating } from '../../util/repeat.js';

export function startHeartbeat(intervalMs: number, tick: () => Promise<void>, log: Logger): Repeating {
  return repeatWithoutOverlap(intervalMs, tick, (err) => log.warn({ err }, 'replication: heartbeat failed'));
}

/** Writes a heartbeat into the WAL; the stream sees it as a safe position to acknowledge. */
export const EMIT_HEARTBEAT = `SELECT pg_logical_emit_message(false, 'walflow', 'heartbeat')`;

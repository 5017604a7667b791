// Runs the leader's periodic duties without overlap: a non-transactional logical message that moves
// an idle slot forward, the lag figure, and checks that source tables still exist.
import type { Logger } from 'pino';

export interface Heartbeat {
  stop(): void;
}

export function startHeartbeat(intervalMs: number, tick: () => Promise<void>, log: Logger): Heartbeat {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    tick()
      .catch((err: unknown) => log.warn({ err }, 'replication: heartbeat failed'))
      .finally(() => (running = false));
  }, intervalMs);
  return { stop: () => clearInterval(timer) };
}

/** Writes a heartbeat into the WAL; the stream sees it as a safe position to acknowledge. */
export const EMIT_HEARTBEAT = `SELECT pg_logical_emit_message(false, 'walflow', 'heartbeat')`;

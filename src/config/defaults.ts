// The one table of defaults. The configuration schema (config.ts), the Engine and the
// ReplicationSource all read these, so that `walflow run` and an application embedding the engine
// behave alike unless told otherwise.
import type { BackoffPolicy } from '../util/backoff.js';

export const DEFAULTS = {
  /** Worker loops per `walflow run` process. */
  workers: 2,
  /**
   * Worker loops of an Engine built in code without `workers` (tests, embedding applications):
   * one, so that an embedded engine adds a single loop to its host unless asked for more.
   */
  engineWorkers: 1,
  /** Runs executing at once per worker loop; a claim takes at most the free part of it. */
  maxInFlight: 200,
  /** Run lease length; renewed while a step runs. */
  leaseMs: 30_000,
  /** Polling backstop for runs started by other processes. */
  pollIntervalMs: 1_000,
  /** Completed, superseded and cancelled runs older than this are pruned. */
  retentionHours: 168,
  /** How long graceful shutdown waits for running steps. */
  shutdownTimeoutMs: 30_000,
  /** Database connections of an Engine's pool. */
  enginePoolSize: 10,
  /** Connections that write run starts from WAL in parallel. */
  replicationWriters: 2,
  /** Queued runs above which WAL reading pauses. */
  highWatermark: 50_000,
  /** Run starts per replication writer transaction, and the longest a change waits for its batch. */
  replicationBatch: { maxItems: 2_000, maxWaitMs: 5 },
  /** Leader heartbeat (idle slot advance, lag, source table checks). */
  replicationHeartbeatMs: 10_000,
  /** Longest the scheduler sleeps between looks at walflow.schedules (it wakes at the nearest tick and on NOTIFY). */
  schedulePollMs: 5_000,
  /** How often a standby tries to take the lead. */
  standbyPollMs: 1_000,
} as const;

/** Queued runs below which WAL reading resumes: half the high watermark unless configured. */
export function defaultLowWatermark(highWatermark: number): number {
  return Math.floor(highWatermark / 2);
}

/**
 * Reconnect pacing of the replication leader and standbys: from 200 ms up to 5 s, never less than
 * half the ceiling, so a fleet of standbys that lost their server together does not reconnect in
 * lockstep nor hammer it.
 */
export const RECONNECT_BACKOFF: BackoffPolicy = { initialMs: 200, maxMs: 5_000, minFraction: 0.5 };

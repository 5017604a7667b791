// Exponential backoff with jitter and a cap: the one formula behind step retries, replication
// reconnects and provider (HTTP) retries. Jitter keeps many clients that failed together (a fleet
// of standbys, the runs of one batch) from retrying in lockstep.

export interface BackoffPolicy {
  /** The first delay's ceiling. */
  initialMs: number;
  /** The largest ceiling: delays stop growing here. */
  maxMs: number;
  /**
   * The smallest share of the ceiling a delay may be: 0 is full jitter (anywhere in [0, ceiling]);
   * 0.5 keeps a floor, for callers that must give the other side a break every time.
   */
  minFraction?: number;
}

/**
 * The delay before retry number `step` (0 for the first): uniform in
 * [minFraction·c, c] where c = min(maxMs, initialMs·2^step).
 */
export function backoffMs(step: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  // The exponent is capped only so that huge step numbers cannot overflow to Infinity·0.
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(Math.max(0, step), 64));
  const floor = policy.minFraction ?? 0;
  return Math.round(ceiling * (floor + (1 - floor) * random()));
}

// Which ticks of a due schedule to fire now, by its catch-up policy, and where it goes on from.
// Pure: the scheduler passes the database's clock, so every process decides alike.
import { nextTick, type CatchUp, type ScheduleTiming } from '../pipeline/schedule.js';

/** Most runs one schedule starts in one transaction; 'all' goes on from the next tick in the next one. */
export const MAX_TICKS_PER_FIRING = 500;
/** The latest due tick counts as on time (not missed) for catchUp 'none' while it is this late, at most. */
export const ON_TIME_MS = 30_000;
const MAX_STEPS = 100_000;

export interface Firing {
  /** Ticks to start a run for, oldest first. */
  fire: Date[];
  /** The schedule's next tick (may still be due when 'all' stopped at MAX_TICKS_PER_FIRING). */
  next: Date;
  /** Due ticks skipped by the policy. */
  skipped: number;
}

/** The due ticks from `due` (the stored next tick, ≤ now) up to `now`, chosen by `policy`. */
export function ticksToFire(t: ScheduleTiming, policy: CatchUp, due: Date, now: Date): Firing {
  if (policy === 'all') {
    const fire: Date[] = [];
    let tick = due;
    while (tick <= now && fire.length < MAX_TICKS_PER_FIRING) {
      fire.push(tick);
      tick = nextTick(t, tick);
    }
    return { fire, next: tick, skipped: 0 };
  }
  const { latest, count } = latestDue(t, due, now);
  const next = nextTick(t, latest);
  // 'none': only a tick that is due just now (late by less than half its period, and 30 s at most).
  const onTime = now.getTime() - latest.getTime() < Math.min(ON_TIME_MS, (next.getTime() - latest.getTime()) / 2);
  const fire = policy === 'latest' || onTime ? [latest] : [];
  return { fire, next, skipped: count - fire.length };
}

/** The last tick ≤ now, given that `due` ≤ now is one, and how many ticks there are from `due` to it. */
function latestDue(t: ScheduleTiming, due: Date, now: Date): { latest: Date; count: number } {
  if (t.every_ms !== null) {
    const n = Math.floor((now.getTime() - due.getTime()) / t.every_ms);
    return { latest: new Date(due.getTime() + n * t.every_ms), count: n + 1 };
  }
  let latest = due;
  let count = 1;
  for (let tick = nextTick(t, due); tick <= now && count < MAX_STEPS; tick = nextTick(t, tick)) {
    latest = tick;
    count++;
  }
  // A cron with ticks this dense and a downtime this long: go on from the last tick before now.
  if (count >= MAX_STEPS) {
    let tick = nextTick(t, new Date(now.getTime() - 3_600_000));
    while (tick <= now) {
      latest = tick;
      tick = nextTick(t, tick);
    }
  }
  return { latest, count };
}

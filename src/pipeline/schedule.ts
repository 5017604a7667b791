// Schedules: when a pipeline without a source starts runs by itself. The cron text is read by
// croner (5 fields, or 6 with seconds first; time zones by IANA name); `every` is a fixed interval
// whose ticks are multiples of it since the Unix epoch, so every process computes the same ticks.
import { Cron } from 'croner';

export type CatchUp = 'latest' | 'all' | 'none';
export const CATCH_UPS: readonly CatchUp[] = ['latest', 'all', 'none'];

export interface ScheduleDefinition {
  /** Unique among all schedules (default: the pipeline's name; `<pipeline>-2`, … for the 2nd, … of a list). */
  name?: string;
  /** Cron text: 5 fields, or 6 with seconds first (`*\/5 * * * * *`); nicknames such as `@daily`. */
  cron?: string;
  /** A fixed interval instead of cron: `500ms`, `5s`, `10m`, `2h`, `1d`. */
  every?: string;
  /** IANA time zone of the cron text (default UTC); not used by `every`. */
  timezone?: string;
  /** After downtime: 'latest' (default) one run for the latest missed tick; 'all' every one; 'none' none. */
  catchUp?: CatchUp;
  /** Merged into each run's input, beside `tick` (ISO time) and `schedule` (its name). */
  input?: Record<string, unknown>;
}

/** What the scheduler needs of a schedule to compute its ticks (a row of walflow.schedules). */
export interface ScheduleTiming {
  cron: string | null;
  every_ms: number | null;
  timezone: string;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `5s` → 5000; throws with a message naming the accepted forms. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(text);
  const ms = m ? Math.round(Number(m[1]) * UNITS[m[2]!]!) : NaN;
  if (!(ms >= 1)) throw new Error(`"${text}" is not a duration (use a number and one of ms, s, m, h, d: "5s", "10m")`);
  return ms;
}

/** The first tick strictly after `after`; throws for a bad cron text or an unknown time zone. */
export function nextTick(t: ScheduleTiming, after: Date): Date {
  if (t.every_ms !== null) return new Date((Math.floor(after.getTime() / t.every_ms) + 1) * t.every_ms);
  if (t.cron === null) throw new Error('a schedule needs cron or every');
  const next = new Cron(t.cron, { timezone: t.timezone, paused: true }).nextRun(after);
  if (!next) throw new Error(`cron "${t.cron}" has no future tick`);
  return next;
}

/** Checks one declared schedule (the message names what is wrong; definePipeline adds the pipeline). */
export function checkSchedule(s: ScheduleDefinition): ScheduleTiming {
  if (!s || typeof s !== 'object') throw new Error('each schedule must be an object such as { cron: "0 3 * * *" }');
  if ((s.cron === undefined) === (s.every === undefined)) throw new Error('a schedule needs exactly one of cron or every');
  if (s.cron !== undefined && (typeof s.cron !== 'string' || s.cron.trim() === '')) throw new Error('schedule.cron must be cron text such as "0 3 * * *"');
  if (s.catchUp !== undefined && !CATCH_UPS.includes(s.catchUp)) throw new Error(`schedule.catchUp must be one of ${CATCH_UPS.join(', ')} (got ${JSON.stringify(s.catchUp)})`);
  if (s.input !== undefined && (s.input === null || typeof s.input !== 'object' || Array.isArray(s.input))) throw new Error('schedule.input must be a JSON object');
  if (s.timezone !== undefined && typeof s.timezone !== 'string') throw new Error('schedule.timezone must be an IANA time zone name such as "Europe/Berlin"');
  if (s.every !== undefined && s.timezone !== undefined) throw new Error('schedule.timezone applies to cron only (every counts from the Unix epoch)');
  const timing: ScheduleTiming = {
    cron: s.cron ?? null,
    every_ms: s.every !== undefined ? parseDuration(String(s.every)) : null,
    timezone: s.timezone ?? 'UTC',
  };
  try {
    nextTick(timing, new Date());
  } catch (err) {
    throw new Error(`schedule ${s.cron !== undefined ? `cron "${s.cron}"` : `every "${s.every}"`}: ${(err as Error).message}`);
  }
  return timing;
}

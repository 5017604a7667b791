// Schedule ticks without a database: cron in a time zone across DST changes (croner), the interval
// form, the catch-up policies after downtime, and definePipeline's checks of a declared schedule.
import { describe, expect, it } from 'vitest';
import { ticksToFire } from '../../src/engine/schedule-ticks.js';
import { definePipeline } from '../../src/pipeline/define.js';
import { nextTick, parseDuration, type ScheduleTiming } from '../../src/pipeline/schedule.js';

const ticks = (t: ScheduleTiming, from: string, n: number) => {
  const out: string[] = [];
  let at = new Date(from);
  for (let i = 0; i < n; i++) out.push((at = nextTick(t, at)).toISOString());
  return out;
};
const noop = [{ name: 'a', run: () => null }];

describe('schedule ticks', () => {
  it("'0 3 * * *' Europe/Berlin is 03:00 local on both sides of each DST change", () => {
    const berlin: ScheduleTiming = { cron: '0 3 * * *', every_ms: null, timezone: 'Europe/Berlin' };
    // Spring forward on 2026-03-29 (02:00 → 03:00 CEST): 03:00 exists, and is 01:00 UTC from that day.
    expect(ticks(berlin, '2026-03-27T12:00:00Z', 3)).toEqual(['2026-03-28T02:00:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T01:00:00.000Z']);
    // Fall back on 2026-10-25 (03:00 CEST → 02:00 CET): one 03:00 tick, at 02:00 UTC from that day.
    expect(ticks(berlin, '2026-10-23T12:00:00Z', 3)).toEqual(['2026-10-24T01:00:00.000Z', '2026-10-25T02:00:00.000Z', '2026-10-26T02:00:00.000Z']);
  });

  it('every: multiples of the interval since the epoch, the same in every process', () => {
    const t: ScheduleTiming = { cron: null, every_ms: parseDuration('5s'), timezone: 'UTC' };
    expect(ticks(t, '2026-01-01T00:00:03.200Z', 2)).toEqual(['2026-01-01T00:00:05.000Z', '2026-01-01T00:00:10.000Z']);
    expect(() => parseDuration('5 parsecs')).toThrow(/not a duration/);
  });

  it('catch-up after 10 missed per-second ticks: latest → the last one, all → all ten, none → none', () => {
    const t: ScheduleTiming = { cron: '* * * * * *', every_ms: null, timezone: 'UTC' };
    const due = new Date('2026-01-01T00:00:01Z');
    const now = new Date('2026-01-01T00:00:10.700Z');
    const latest = ticksToFire(t, 'latest', due, now);
    expect([latest.fire.map((d) => d.toISOString()), latest.next.toISOString(), latest.skipped]).toEqual([['2026-01-01T00:00:10.000Z'], '2026-01-01T00:00:11.000Z', 9]);
    const all = ticksToFire(t, 'all', due, now);
    expect([all.fire.length, all.fire[0]!.toISOString(), all.fire[9]!.toISOString(), all.next.toISOString()]).toEqual([10, '2026-01-01T00:00:01.000Z', '2026-01-01T00:00:10.000Z', '2026-01-01T00:00:11.000Z']);
    const none = ticksToFire(t, 'none', due, now);
    expect([none.fire.length, none.next.toISOString(), none.skipped]).toEqual([0, '2026-01-01T00:00:11.000Z', 10]);
    // On time (not downtime): every policy fires the tick that is due now.
    for (const p of ['latest', 'all', 'none'] as const) expect(ticksToFire(t, p, new Date('2026-01-01T00:00:10Z'), new Date('2026-01-01T00:00:10.050Z')).fire.length).toBe(1);
  });

  it('definePipeline refuses a bad cron, an unknown time zone, and a schedule on a source pipeline, naming the pipeline', () => {
    expect(() => definePipeline({ name: 'bad-cron', schedule: { cron: '61 * * * *' }, steps: noop })).toThrow(/pipeline "bad-cron": schedule cron "61 \* \* \* \*": .*minute/);
    expect(() => definePipeline({ name: 'bad-tz', schedule: { cron: '0 3 * * *', timezone: 'Mars/Base' }, steps: noop })).toThrow(/pipeline "bad-tz": .*time zone/i);
    expect(() => definePipeline({ name: 'both', schedule: { cron: '0 3 * * *', every: '5s' }, steps: noop })).toThrow(/pipeline "both": a schedule needs exactly one of cron or every/);
    expect(() => definePipeline({ name: 'src', source: { table: 't' }, schedule: { every: '5s' }, steps: noop } as never)).toThrow(/pipeline "src": a source pipeline cannot have a schedule/);
    const p = definePipeline({ name: 'ok', schedule: [{ every: '1s' }, { cron: '0 3 * * *', timezone: 'Europe/Berlin', catchUp: 'all', input: { a: 1 } }], steps: noop });
    expect(p.schedules.map((s) => [s.name, s.every_ms, s.cron, s.timezone, s.catch_up])).toEqual([['ok', 1000, null, 'UTC', 'latest'], ['ok-2', null, '0 3 * * *', 'Europe/Berlin', 'all']]);
  });
});

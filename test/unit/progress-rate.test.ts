// The demo's and backfill's progress: rate and ETA from a moving window of completions. A job that
// loads a model for 10 s and then completes 64 items every 2 s must show ~32/s and a sane ETA, not
// 0/s, an ETA that climbs, or NaN/Infinity; and nothing before there is a rate.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgress } from '../../src/ops/progress.js';
import { formatEta, formatRate, RateWindow } from '../../src/ops/progress-rate.js';

describe('RateWindow', () => {
  it('gives no rate and no ETA before anything completed, or over a span too short to measure', () => {
    const w = new RateWindow(20_000, 1_000);
    for (let t = 0; t <= 10_000; t += 250) {
      w.record(0, t);
      expect(w.estimate(300, t)).toEqual({ rate: undefined, etaSeconds: undefined });
    }
  });

  it('a model load, then bursts of 64 every 2 s: ~32/s and an ETA that falls, never NaN or Infinity', () => {
    const w = new RateWindow(20_000, 1_000);
    const total = 6400;
    let done = 0;
    const etas: number[] = [];
    for (let t = 0; t <= 200_000; t += 250) {
      if (t >= 10_000 && t % 2000 === 0) done = Math.min(total, done + 64);
      w.record(done, t);
      const e = w.estimate(total, t);
      for (const v of [e.rate, e.etaSeconds]) if (v !== undefined) expect(Number.isFinite(v)).toBe(true);
      if (e.rate === 0) expect(e.etaSeconds).toBeUndefined();
      if (t >= 30_000 && done < total) {
        // Once the window no longer holds the load, the rate is the true one (±1 burst).
        expect(e.rate!).toBeGreaterThan(28);
        expect(e.rate!).toBeLessThan(36);
        etas.push(e.etaSeconds!);
      }
    }
    // Remaining work / 32 per second, within a burst's worth of error, and never climbing far.
    expect(etas[0]).toBeGreaterThan(150);
    expect(etas[0]).toBeLessThan(200);
    for (let i = 1; i < etas.length; i++) expect(etas[i]!).toBeLessThanOrEqual(etas[i - 1]! + 3);
  });

  it('a start-up pause longer than the window does not stretch the span: the first completions are measured over the window', () => {
    const w = new RateWindow(20_000, 1_000);
    for (let t = 0; t < 200_000; t += 250) w.record(0, t);
    w.record(4, 200_000);
    // 4 items in the last 20 s, not in the last 200 s (which read 0.02/s and an ETA of hours).
    expect(w.estimate(40, 200_000)).toEqual({ rate: 0.2, etaSeconds: 180 });
    w.record(8, 210_000);
    expect(w.estimate(40, 210_000)).toEqual({ rate: 0.4, etaSeconds: 80 });
  });

  it('between bursts the ETA counts down instead of climbing', () => {
    const w = new RateWindow(20_000, 1_000);
    w.record(0, 0);
    for (let t = 5_000; t <= 30_000; t += 5_000) w.record(t / 500, t); // 10 items every 5 s: 2/s
    const etas = [31_000, 32_000, 33_000, 34_000].map((t) => w.estimate(100, t));
    expect(etas.map((e) => e.rate)).toEqual([2, 2, 2, 2]);
    expect(etas.map((e) => e.etaSeconds)).toEqual([19, 18, 17, 16]); // 40 left at 2/s from t = 30 s
  });

  it('a stall longer than the window: rate 0 and no ETA (not a growing one); done: ETA 0', () => {
    const w = new RateWindow(20_000, 1_000);
    w.record(0, 0);
    w.record(100, 5_000);
    expect(w.estimate(200, 5_000)).toEqual({ rate: 20, etaSeconds: 5 });
    expect(w.estimate(200, 60_000)).toEqual({ rate: 0, etaSeconds: undefined });
    w.record(200, 61_000);
    expect(w.estimate(200, 61_000).etaSeconds).toBe(0);
  });
});

describe('formatting', () => {
  it('rates and ETAs read as a person would write them; unknown is a dash', () => {
    expect([formatRate(undefined), formatRate(0), formatRate(0.04), formatRate(1.64), formatRate(32.4)]).toEqual(['–/s', '0/s', '0.04/s', '1.6/s', '32/s']);
    expect([formatEta(undefined), formatEta(Infinity), formatEta(NaN), formatEta(42.2), formatEta(185), formatEta(7620), formatEta(3 * 86_400 + 4 * 3600)])
      .toEqual(['–', '–', '–', '43s', '3m 05s', '2h 07m', '3d 04h']);
  });

  it('the plain-text progress lines: a dash until there is a rate, then rate and ETA', () => {
    let t = 0;
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const p = createProgress('embedding', false, out as unknown as NodeJS.WriteStream, () => t);
    p.update(0, 100);
    t = 3_000;
    p.update(0, 100);
    t = 6_000;
    p.update(50, 100);
    const lines = text.trim().split('\n');
    expect(lines).toEqual(['embedding: 0/100 (0%) –/s ETA –', 'embedding: 0/100 (0%) –/s ETA –', 'embedding: 50/100 (50%) 8.3/s ETA 6s']);
    expect(text).not.toMatch(/NaN|Infinity|NF/);
  });

  it('the terminal bar shows the window\'s rate and ETA, a dash before there is one, never NF/NaN', () => {
    let t = 0;
    const out = Object.assign(new PassThrough(), { isTTY: true, columns: 120, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const p = createProgress('embedding', true, out as unknown as NodeJS.WriteStream, () => t);
    p.update(0, 100);
    expect(text).toMatch(/embedding \[.*\] 0\/100 0% \| –\/s \| ETA –/);
    t = 3_000;
    p.update(50, 100);
    p.stop();
    expect(text).toMatch(/50\/100 50% \| 17\/s \| ETA 3s/);
    expect(text).not.toMatch(/NaN|Infinity|NF|\{wf_/);
  });
});

describe('RateWindow with bursts further apart than its window', () => {
  it('bursts of 460 chunks every 30 s: the rate holds between bursts (no 0/s) and the ETA counts down', () => {
    const w = new RateWindow(20_000, 1_000);
    w.record(0, 0);
    w.record(460, 40_000); // after a model load
    w.record(920, 70_000);
    w.record(1380, 100_000);
    // 20 s after the last burst, a fixed 20 s window would hold no completion: 0/s, no ETA.
    const mid = w.estimate(5000, 120_000);
    expect(mid.rate).toBeGreaterThan(10);
    expect(mid.etaSeconds).toBeGreaterThan(0);
    const later = w.estimate(5000, 125_000);
    expect(later.etaSeconds!).toBeLessThan(mid.etaSeconds!);
    // A real stall (several times the bursts' spacing) still reads 0/s and no ETA.
    expect(w.estimate(5000, 400_000)).toEqual({ rate: 0, etaSeconds: undefined });
  });
});

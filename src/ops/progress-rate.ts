// Rate and ETA for a progress display, from a moving window of completions. Work here completes in
// bursts (a batch of chunks is embedded at once) after a start-up pause (loading a model), so a
// rate over the whole run starts near 0 and an ETA from it is absurd (minutes for a job of
// seconds, then Infinity). This estimator shows no rate until something has completed over a
// measurable span, measures over the last `windowMs` only, and gives no ETA while the rate is 0.
// The window widens to span the last few bursts when they come further apart than it (the local
// model returns a whole batch of chunks at once, every 20-60 s on two cores): a fixed 20 s window
// then held no completion most of the time and showed 0/s for a job that was progressing.

export interface RateEstimate {
  /** Items per second over the window; undefined until there is one. */
  rate: number | undefined;
  /** Seconds left at that rate; undefined without a positive rate. Always finite. */
  etaSeconds: number | undefined;
}

/** The widest a window grows (see RateWindow.window). */
const MAX_WINDOW_MS = 300_000;

interface Sample {
  t: number;
  done: number;
}

export class RateWindow {
  /** Samples at which `done` changed (plus the first), oldest first; bounded by the window. */
  private readonly samples: Sample[] = [];

  /**
   * @param windowMs how far back the rate looks (default 20 s)
   * @param minSpanMs the shortest span a rate is computed over (default 1 s): two samples a few
   *   milliseconds apart would give a wild rate
   */
  constructor(
    private readonly windowMs = 20_000,
    private readonly minSpanMs = 1_000,
  ) {}

  /** Notes that `done` items are complete at time `now` (ms). */
  record(done: number, now: number): void {
    if (!Number.isFinite(done) || !Number.isFinite(now)) return;
    const last = this.samples[this.samples.length - 1];
    if (last && done === last.done) return;
    this.samples.push({ t: now, done });
    // Keep one sample at or before the widest window's start, so the rate spans the whole window.
    while (this.samples.length > 2 && this.samples[1]!.t <= now - MAX_WINDOW_MS) this.samples.shift();
  }

  /**
   * The window in force: `windowMs`, or twice the longest of the last two gaps between
   * completions when bursts come further apart than that (the gap before the first completion,
   * a model load, does not count), at most MAX_WINDOW_MS.
   */
  private window(): number {
    const n = this.samples.length;
    let gap = 0;
    for (let i = Math.max(2, n - 2); i < n; i++) gap = Math.max(gap, this.samples[i]!.t - this.samples[i - 1]!.t);
    return Math.min(MAX_WINDOW_MS, Math.max(this.windowMs, 2 * gap));
  }

  estimate(total: number, now: number): RateEstimate {
    const none: RateEstimate = { rate: undefined, etaSeconds: undefined };
    if (this.samples.length < 2) return none; // nothing has completed since we started watching
    const latest = this.samples[this.samples.length - 1]!;
    const left = Math.max(0, total - latest.done);
    // The rate as of the latest completion holds while the next burst is awaited, and the ETA
    // counts down meanwhile: re-measuring at `now` would make the ETA climb between bursts.
    const atLatest = this.rateAt(latest.t);
    if (left === 0) return { rate: atLatest, etaSeconds: 0 };
    if (atLatest !== undefined && atLatest > 0 && now - latest.t < this.window()) {
      const eta = left / atLatest - (now - latest.t) / 1000;
      if (eta > 0 && Number.isFinite(eta)) return { rate: atLatest, etaSeconds: eta };
    }
    // Longer than expected without a completion: the rate over the window up to now, which falls
    // to 0 (and the ETA to unknown) once the window holds no completion.
    const rate = this.rateAt(now);
    if (rate === undefined) return none;
    const eta = rate > 0 ? left / rate : undefined;
    return { rate, etaSeconds: eta !== undefined && Number.isFinite(eta) ? eta : undefined };
  }

  /** Items per second over the window ending at `end` (not before the latest sample); undefined over too short a span. */
  private rateAt(end: number): number | undefined {
    // `done` only changes at samples, so at the window's start it is the value of the last sample
    // at or before it; a sample older than the window must not stretch the span (a long model load
    // before the first completion would make the rate tiny and the ETA hours).
    const windowStart = end - this.window();
    let start = this.samples[0]!;
    let last = start;
    for (const s of this.samples) {
      if (s.t <= windowStart) start = s;
      if (s.t <= end) last = s;
    }
    const spanMs = end - Math.max(start.t, windowStart);
    if (!(spanMs >= this.minSpanMs)) return undefined;
    const rate = Math.max(0, last.done - start.done) / (spanMs / 1000);
    return Number.isFinite(rate) ? rate : undefined;
  }
}

/** "12/s", "1.6/s", "0.04/s"; "–/s" without a rate. */
export function formatRate(rate: number | undefined): string {
  if (rate === undefined || !Number.isFinite(rate)) return '–/s';
  if (rate >= 10) return `${Math.round(rate)}/s`;
  if (rate >= 1) return `${rate.toFixed(1)}/s`;
  return `${rate.toPrecision(1)}/s`;
}

/** "42s", "3m 05s", "2h 07m", "3d 04h"; "–" without an estimate. */
export function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '–';
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d ${pad(Math.floor((s % 86_400) / 3600))}h`;
}

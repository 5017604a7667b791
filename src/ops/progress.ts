// Progress for long CLI work: a bar with rate and ETA on a terminal, plain periodic lines otherwise
// (logs and CI stay readable). Rate and ETA come from a moving window of completions
// (progress-rate.ts), not from cli-progress's own ETA, which counts updates without progress and
// so climbs while a batch is in flight, then prints "NF" (Infinity).
import cliProgress from 'cli-progress';
import { formatEta, formatRate, RateWindow } from './progress-rate.js';

export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

export function createProgress(label: string, tty: boolean, stream: NodeJS.WriteStream = process.stderr, now: () => number = Date.now): Progress {
  const window = new RateWindow();
  const measure = (done: number, total: number) => {
    const t = now();
    window.record(done, t);
    const { rate, etaSeconds } = window.estimate(total, t);
    return { wf_rate: formatRate(rate), wf_eta: formatEta(etaSeconds) };
  };
  if (tty) {
    const bar = new cliProgress.SingleBar(
      // Own token names: cli-progress fills {eta} and {rate}-like names it knows itself, over the payload.
      { format: `${label.replace(/[{}]/g, '')} [{bar}] {value}/{total} {percentage}% | {wf_rate} | ETA {wf_eta}`, stream, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(done, total) {
        const shown = measure(done, total);
        if (!started) {
          bar.start(total, done, shown);
          started = true;
        }
        bar.setTotal(total);
        bar.update(done, shown);
      },
      stop: () => bar.stop(),
    };
  }
  let last = -Infinity;
  return {
    update(done, total) {
      const shown = measure(done, total);
      const t = now();
      if (t - last < 2000 && done < total) return;
      last = t;
      stream.write(`${label}: ${done}/${total} (${total > 0 ? Math.round((100 * done) / total) : 100}%) ${shown.wf_rate} ETA ${shown.wf_eta}\n`);
    },
    stop: () => undefined,
  };
}

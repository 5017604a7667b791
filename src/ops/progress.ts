// Progress for long CLI work: a bar with rate and ETA on a terminal, plain periodic lines otherwise
// (logs and CI stay readable).
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

export function createProgress(label: string, tty: boolean, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (tty) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {value}/{total} {percentage}% | {rate}/s | ETA {eta_formatted}`, stream, hideCursor: true, etaBuffer: 50 },
      cliProgress.Presets.shades_classic,
    );
    const t0 = Date.now();
    let started = false;
    return {
      update(done, total) {
        const rate = Math.round(done / Math.max(0.001, (Date.now() - t0) / 1000));
        if (!started) {
          bar.start(total, done, { rate });
          started = true;
        }
        bar.setTotal(total);
        bar.update(done, { rate });
      },
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  const t0 = Date.now();
  return {
    update(done, total) {
      const now = Date.now();
      if (now - last < 2000 && done < total) return;
      last = now;
      const secs = (now - t0) / 1000;
      const rate = done / Math.max(0.001, secs);
      const eta = rate > 0 ? Math.round((total - done) / rate) : 0;
      stream.write(`${label}: ${done}/${total} (${total ? Math.round((100 * done) / total) : 100}%) ${Math.round(rate)}/s ETA ${eta}s\n`);
    },
    stop: () => undefined,
  };
}

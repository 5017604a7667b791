// A periodic chore that never overlaps itself: a tick that finds the previous run still going is
// skipped, so a slow database does not pile up concurrent heartbeats, reaps or maintenance runs.

export interface Repeating {
  stop(): void;
}

/** Runs `task` every `ms` ms, skipping ticks while it runs; its failures go to `onError` (the next tick retries). */
export function repeatWithoutOverlap(ms: number, task: () => Promise<void>, onError: (err: unknown) => void): Repeating {
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    task().catch(onError).finally(() => (busy = false));
  }, ms);
  return { stop: () => clearInterval(timer) };
}

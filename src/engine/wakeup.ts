// A coalescing wake-up: any number of fire() calls while nobody waits collapse into one.

export class Wakeup {
  private pending = false;
  private waiter: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private scheduled: NodeJS.Timeout | undefined;
  private scheduledAt = Infinity;

  fire(): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      clearTimeout(this.timer);
      w();
    } else {
      this.pending = true;
    }
  }

  /** Fires at `at` (keeps only the earliest pending schedule). */
  fireAt(at: Date): void {
    const t = at.getTime();
    if (t >= this.scheduledAt) return;
    clearTimeout(this.scheduled);
    this.scheduledAt = t;
    this.scheduled = setTimeout(() => {
      this.scheduledAt = Infinity;
      this.fire();
    }, Math.min(Math.max(0, t - Date.now()) + 5, 86_400_000)); // setTimeout overflows past 24.8 days; an early fire only re-arms
  }

  /** Resolves on the next fire(), or after `timeoutMs`. */
  wait(timeoutMs: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiter = resolve;
      this.timer = setTimeout(() => {
        this.waiter = undefined;
        resolve();
      }, timeoutMs);
    });
  }

  close(): void {
    clearTimeout(this.timer);
    clearTimeout(this.scheduled);
    this.fire();
  }
}

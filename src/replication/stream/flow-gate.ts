// Decides whether the WAL stream may read on. Closed while too many items wait to be written (the
// writer is behind) or while paused (the run queue is above its high watermark). The stream's data
// handler awaits `wait()`, the library keeps its socket paused meanwhile, and the server holds WAL.
export class FlowGate {
  private backlog = 0;
  private readonly pauses = new Set<string>();
  private waiters: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  get pending(): number {
    return this.backlog;
  }

  get paused(): boolean {
    return this.pauses.size > 0;
  }

  private get open(): boolean {
    return this.pauses.size === 0 && this.backlog < this.limit;
  }

  /** Items entering (+n) or leaving (-n) a stage that buffers them. */
  add(delta: number): void {
    this.backlog += delta;
    if (delta < 0) this.wake();
  }

  pause(reason: string): void {
    this.pauses.add(reason);
  }

  resume(reason: string): void {
    this.pauses.delete(reason);
    this.wake();
  }

  /** undefined when reading may go on; else a promise that resolves once it may. */
  wait(): Promise<void> | undefined {
    if (this.open) return undefined;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Lets every waiter go (the stream is being torn down) and forgets the backlog. */
  reset(): void {
    this.backlog = 0;
    this.pauses.clear();
    this.wake();
  }

  private wake(): void {
    if (!this.open || this.waiters.length === 0) return;
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }
}

// Backpressure on the run queue: once queued runs pass the high watermark, reading WAL stops until
// workers drain them below the low watermark. Counting stops at the watermark (LIMIT), so a check
// costs at most `high` index entries however large the queue is.
import type pg from 'pg';
import type { Logger } from 'pino';
import type { FlowGate } from './flow-gate.js';

export interface WatermarkOptions {
  high: number;
  low: number;
  /** Check after every this many batches. */
  checkEveryBatches?: number;
  /** While paused, re-check this often. */
  pollMs?: number;
}

const REASON = 'watermark';

export class WatermarkMonitor {
  private batches = 0;
  private checking = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly gate: FlowGate,
    private readonly opts: WatermarkOptions,
    private readonly log: Logger,
  ) {}

  private async queuedUpTo(limit: number): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM (SELECT 1 FROM walflow.runs WHERE status = 'queued' LIMIT $1) q`,
      [limit],
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** Called after each committed batch. */
  afterBatch(): void {
    if (this.stopped || this.checking || this.gate.paused) return;
    if (++this.batches % (this.opts.checkEveryBatches ?? 10) !== 0) return;
    this.checking = true;
    this.queuedUpTo(this.opts.high)
      .then((n) => {
        if (n >= this.opts.high && !this.stopped) {
          this.log.info({ queued: n, high: this.opts.high }, 'replication: run queue above high watermark; pausing WAL reading');
          this.gate.pause(REASON);
          this.poll();
        }
      })
      .catch((err: unknown) => this.log.warn({ err }, 'replication: watermark check failed'))
      .finally(() => (this.checking = false));
  }

  private poll(): void {
    this.timer = setTimeout(() => {
      this.queuedUpTo(this.opts.low)
        .then((n) => {
          if (this.stopped) return;
          if (n < this.opts.low) {
            this.log.info({ queued: n, low: this.opts.low }, 'replication: run queue below low watermark; resuming');
            this.gate.resume(REASON);
          } else this.poll();
        })
        .catch((err: unknown) => {
          this.log.warn({ err }, 'replication: watermark check failed');
          if (!this.stopped) this.poll();
        });
    }, this.opts.pollMs ?? 500);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.gate.resume(REASON);
  }
}

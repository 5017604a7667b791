// Records the durable position in walflow.replication_state, then lets the slot be acknowledged to
// it. It is told a position only once every run start up to it has committed (writeInLanes), so a
// crash at any moment restarts from a position whose effects are all in the database; changes
// after it are replayed, and their dedupe ids make the replay harmless. One write at a time:
// positions that arrive meanwhile are coalesced into the next.
import type pg from 'pg';
import { compareLsn } from '../stream/lsn.js';
import { recordDurableLsn } from './state-store.js';

export class DurableRecorder {
  private target: string | null = null;
  private writing: Promise<void> | null = null;

  constructor(
    private readonly pool: pg.Pool,
    private readonly slotName: string,
    /** Called after the position committed: acknowledge the slot up to it. */
    private readonly onRecorded: (lsn: string) => void,
    private readonly onError: (err: unknown) => void,
  ) {}

  advance(lsn: string): void {
    if (this.target === null || compareLsn(lsn, this.target) > 0) this.target = lsn;
    this.writing ??= this.drain();
  }

  /** Resolves when nothing is being written (for a clean stop). */
  async idle(): Promise<void> {
    await this.writing?.catch(() => undefined);
  }

  private async drain(): Promise<void> {
    try {
      while (this.target !== null) {
        const lsn = this.target;
        this.target = null;
        await recordDurableLsn(this.pool, this.slotName, lsn);
        this.onRecorded(lsn);
      }
    } catch (err) {
      this.onError(err);
    } finally {
      this.writing = null;
    }
  }
}

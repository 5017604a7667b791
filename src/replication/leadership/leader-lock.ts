// Leader election: exactly one process consumes a slot. The leader holds a session advisory lock
// (keyed by the slot name) on a dedicated connection; standbys poll for it. When the leader dies,
// the server ends its session, the lock is free, and the next poll of a standby takes it.
import pg from 'pg';
import type { Logger } from 'pino';

export class LeaderLock {
  private client: pg.Client | undefined;
  private lostReason: Error | undefined;
  private lostWaiters: ((err: Error) => void)[] = [];

  constructor(
    private readonly url: string,
    private readonly slotName: string,
    private readonly log: Logger,
  ) {}

  private get key(): string {
    return `walflow.replication:${this.slotName}`;
  }

  /** Connects (if needed) and tries the lock once; true when this process leads. */
  async tryAcquire(): Promise<boolean> {
    if (!this.client) await this.connect();
    const { rows } = await this.client!.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [this.key]);
    return rows[0]?.ok === true;
  }

  /** Round trip on the lock's connection: throws if it (and so the lock) is gone. */
  async ping(): Promise<void> {
    if (this.lostReason || !this.client) throw this.lostReason ?? new Error('leader lock connection closed');
    await this.client.query('SELECT 1');
  }

  /** Resolves when the connection holding the lock is lost. */
  lost(): Promise<Error> {
    if (this.lostReason) return Promise.resolve(this.lostReason);
    return new Promise((resolve) => this.lostWaiters.push(resolve));
  }

  /** Closes the connection, which releases the lock. */
  async release(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    this.lostReason = undefined;
    this.lostWaiters = [];
    await c?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, keepAlive: true, application_name: 'walflow-leader' });
    const onLost = (err: Error): void => {
      if (this.client !== client || this.lostReason) return;
      this.lostReason = err;
      this.log.warn({ err: err.message }, 'replication: leader lock connection lost');
      const ws = this.lostWaiters;
      this.lostWaiters = [];
      for (const w of ws) w(err);
    };
    client.on('error', onLost);
    client.on('end', () => onLost(new Error('leader lock connection ended')));
    this.client = client;
    this.lostReason = undefined;
    try {
      await client.connect();
    } catch (err) {
      this.client = undefined;
      throw err;
    }
  }
}

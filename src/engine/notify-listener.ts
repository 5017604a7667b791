// LISTEN on channels with one dedicated connection, reconnecting with backoff. Notifications are
// only hints (the polling backstop guarantees progress), so a gap while reconnecting is harmless.
import pg from 'pg';
import type { Logger } from 'pino';

export class NotifyListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    /** Channel → handler; a handler called with undefined: notifications may have been missed. */
    private readonly channels: Record<string, (payload: string | undefined) => void>,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.connect(0);
  }

  private async connect(attempt: number): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.url });
    client.on('notification', (m) => this.channels[m.channel]?.(m.payload));
    client.on('error', (err) => {
      this.log.warn({ err }, 'notification connection lost; reconnecting');
      this.scheduleReconnect(client, 0);
    });
    try {
      await client.connect();
      for (const channel of Object.keys(this.channels)) await client.query(`LISTEN ${client.escapeIdentifier(channel)}`);
      this.client = client;
      // We may have missed notifications while disconnected: behave as if one arrived.
      if (attempt > 0) for (const handler of Object.values(this.channels)) handler(undefined);
    } catch (err) {
      this.log.warn({ err }, 'could not LISTEN; retrying');
      this.scheduleReconnect(client, attempt + 1);
    }
  }

  private scheduleReconnect(client: pg.Client, attempt: number): void {
    if (this.stopped || this.retryTimer) return;
    client.end().catch(() => undefined);
    if (this.client === client) this.client = undefined;
    const delay = Math.min(30_000, 250 * 2 ** attempt);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect(Math.max(1, attempt));
    }, delay);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.client?.end().catch(() => undefined);
  }
}

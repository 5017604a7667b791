// LISTEN on a channel with a dedicated connection, reconnecting with backoff. Notifications are
// only hints (the polling backstop guarantees progress), so a gap while reconnecting is harmless.
import pg from 'pg';
import type { Logger } from 'pino';

export class NotifyListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly channel: string,
    private readonly onNotify: (payload: string | undefined) => void,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.connect(0);
  }

  private async connect(attempt: number): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.url });
    client.on('notification', (m) => this.onNotify(m.payload));
    client.on('error', (err) => {
      this.log.warn({ err }, 'notification connection lost; reconnecting');
      this.scheduleReconnect(client, 0);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${client.escapeIdentifier(this.channel)}`);
      this.client = client;
      // We may have missed notifications while disconnected: behave as if one arrived.
      if (attempt > 0) this.onNotify(undefined);
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

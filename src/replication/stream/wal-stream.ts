// The one module that touches pg-logical-replication. It exposes a slot as an Observable of
// WalItems and avoids the library's at-most-once defaults:
//  - no auto-acknowledge and no library status timer (it would acknowledge *received* positions);
//    the slot is acknowledged only with positions from `durable$` (committed run starts);
//  - it always starts from the caller's durable position, never the library's "last received";
//  - keepalives that ask for a reply get the durable position, and a status update goes out every
//    `statusIntervalMs` even while reading is paused, so wal_sender_timeout never fires;
//  - flow control is on, and the data handler awaits `gate()`: while it waits the library keeps
//    the socket paused, TCP fills, and the server holds the WAL (memory stays bounded).
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { Observable, type Subscription } from 'rxjs';
import type { Logger } from 'pino';
import { formatLsn, parseLsn, ZERO_LSN } from './lsn.js';
import { PgoutputMapper } from './pgoutput-mapper.js';
import type { WalItem } from '../types.js';

export interface WalStreamOptions {
  url: string;
  slotName: string;
  publicationName: string;
  /** Where to resume: the durable position (the server starts at max(this, confirmed_flush_lsn)). */
  startLsn: string;
  /** The durable position; each emission is acknowledged to the server. */
  durable$: Observable<string>;
  /** Awaited before each message is processed; resolve to let reading go on. */
  gate: () => Promise<void> | undefined;
  statusIntervalMs?: number;
  /** Called for each row change decoded (for the `received` counter). */
  onChange?: () => void;
  log: Logger;
}

/**
 * The library's status update reports `lsn + 1` as flushed. PostgreSQL skips, on restart, every
 * transaction whose commit record starts before confirmed_flush_lsn, and the next transaction's
 * commit may start exactly at the previous one's end: acknowledging end + 1 could skip it. So we
 * hand the library the position minus one, and the server receives exactly the durable position.
 */
function libraryAckArg(lsn: string): string | null {
  const pos = parseLsn(lsn);
  return pos > 0n ? formatLsn(pos - 1n) : null;
}

/** The library's client and socket (internal): needed only to close them safely. */
function internalsOf(service: LogicalReplicationService): { socket?: Duplex; client?: EventEmitter } {
  const s = service as unknown as { _connection?: { stream?: Duplex } | null; _client?: EventEmitter | null };
  return { socket: s._connection?.stream, client: s._client ?? undefined };
}

export function walStream(opts: WalStreamOptions): Observable<WalItem> {
  return new Observable<WalItem>((sub) => {
    const service = new LogicalReplicationService(
      // Named, so that operators can tell walflow's walsender apart in pg_stat_replication.
      { connectionString: opts.url, keepAlive: true, application_name: 'walflow-stream' },
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
    );
    const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [opts.publicationName], messages: true });
    const mapper = new PgoutputMapper();
    let durable = opts.startLsn;
    let closed = false;

    const ack = (): void => {
      const arg = libraryAckArg(durable);
      if (arg && !closed) service.acknowledge(arg).catch((err: unknown) => opts.log.warn({ err }, 'replication: status update failed'));
    };

    service.on('data', (_lsn: string, msg: Pgoutput.Message) => {
      if (closed) return undefined;
      for (const item of mapper.map(msg)) {
        if (item.kind === 'change') opts.onChange?.();
        sub.next(item);
      }
      return opts.gate();
    });
    service.on('heartbeat', (_lsn: string, _ts: number, shouldRespond: boolean) => {
      if (shouldRespond) ack();
    });
    service.on('error', (err: Error) => {
      if (!closed) sub.error(err);
    });

    const durableSub: Subscription = opts.durable$.subscribe((lsn) => {
      durable = lsn;
      ack();
    });
    const timer = setInterval(ack, opts.statusIntervalMs ?? 10_000);

    service.subscribe(plugin, opts.slotName, opts.startLsn || ZERO_LSN).then(
      () => {
        if (!closed) sub.error(new Error('replication stream ended'));
      },
      (err: unknown) => {
        if (!closed) sub.error(err);
      },
    );

    return () => {
      closed = true;
      clearInterval(timer);
      durableSub.unsubscribe();
      // The library leaves the socket paused when stopped mid-backpressure, and a paused socket
      // never sees the server's EOF, so its end() would hang and the walsender would keep the
      // slot busy. Resume it first, and cut it if closing still takes too long.
      const { socket, client } = internalsOf(service);
      socket?.resume();
      const cut = setTimeout(() => socket?.destroy(), 2_000);
      service
        .destroy()
        .catch(() => undefined)
        .finally(() => {
          clearTimeout(cut);
          // destroy() removes every listener of its pg client; a late "connection terminated"
          // (the server went away) would then be an uncaught 'error' event and kill the process.
          client?.on('error', () => undefined);
        });
    };
  });
}

// Pipelines defined from SQL, for a running `walflow run`: create/alter/drop NOTIFY
// walflow_pipelines (on commit), and this process LISTENs on its own connection, so a change
// reaches it within about a second; a poll (every 10 s) compares the (name, version) list as a
// backstop for a lost connection or notification. Either asks the pipeline reloader to reload,
// which merges these pipelines with the files' and applies the set through its usual path.
import pg from 'pg';
import type { Logger } from 'pino';
import { connectClient } from '../../db/connection.js';
import type { Pipeline } from '../../pipeline/define.js';
import type { Queryable } from '../../pipeline/types.js';
import { repeatWithoutOverlap, type Repeating } from '../../util/repeat.js';
import { buildSqlPipeline, readSqlPipelines, type BuildOptions } from './build.js';

export interface SqlPipelineSet {
  pipelines: Pipeline[];
  /** Definitions this process could not build, by pipeline name. */
  errors: Map<string, string>;
}

export interface SqlPipelineWatcherOptions {
  url: string;
  log: Logger;
  /** Called on a notification, or when the poll sees another (name, version) list. */
  onChange: () => void;
  pollMs?: number;
  build: BuildOptions;
}

export class SqlPipelineWatcher {
  /** Built pipelines by "name@version": an unchanged definition stays the same object (no reload churn). */
  private built = new Map<string, Pipeline>();
  private seen = '';
  private client: pg.Client | undefined;
  private poll: Repeating | undefined;
  private reconnect: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly o: SqlPipelineWatcherOptions) {}

  /** Every SQL-defined pipeline, built (each definition once per version). */
  async load(db: Queryable): Promise<SqlPipelineSet> {
    const rows = await readSqlPipelines(db);
    this.seen = rows.map((r) => `${r.name}@${r.version}`).join('\n');
    const pipelines: Pipeline[] = [];
    const errors = new Map<string, string>();
    const next = new Map<string, Pipeline>();
    for (const row of rows) {
      const k = `${row.name}@${row.version}`;
      try {
        const p = this.built.get(k) ?? buildSqlPipeline(row, this.o.build);
        next.set(k, p);
        pipelines.push(p);
      } catch (err) {
        errors.set(row.name, (err as Error).message);
      }
    }
    this.built = next;
    return { pipelines, errors };
  }

  start(db: Queryable): void {
    void this.listen();
    this.poll = repeatWithoutOverlap(this.o.pollMs ?? 10_000, async () => {
      const { rows } = await db.query<{ k: string | null }>(`SELECT string_agg(name || '@' || version, E'\\n' ORDER BY name) AS k FROM walflow.sql_pipelines`);
      if ((rows[0]?.k ?? '') !== this.seen) this.o.onChange();
    }, (err) => this.o.log.warn({ err }, 'could not poll walflow.sql_pipelines'));
  }

  private async listen(): Promise<void> {
    if (this.stopped) return;
    try {
      const c = await connectClient(this.o.url);
      const retry = (err?: unknown) => {
        if (this.client !== c) return;
        this.client = undefined;
        void c.end().catch(() => undefined);
        if (this.stopped) return;
        this.o.log.warn({ err }, 'lost the connection listening for SQL pipeline changes; reconnecting (the poll covers the gap)');
        this.reconnect = setTimeout(() => void this.listen(), 1000);
      };
      c.on('error', retry);
      c.on('end', () => retry());
      c.on('notification', () => this.o.onChange());
      this.client = c;
      await c.query('LISTEN walflow_pipelines');
      if (this.stopped) await this.stop();
      // A change committed while this connection was down: the reload reads the table anyway.
      else this.o.onChange();
    } catch (err) {
      this.o.log.warn({ err }, 'could not listen for SQL pipeline changes; retrying (the poll covers the gap)');
      this.reconnect = setTimeout(() => void this.listen(), 1000);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.poll?.stop();
    clearTimeout(this.reconnect);
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }
}

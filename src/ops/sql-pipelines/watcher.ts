// Pipelines defined from SQL, for a running `walflow run`: create/alter/drop NOTIFY
// walflow_pipelines (on commit), and this process LISTENs on its own connection, so a change
// reaches it within about a second; a poll (every 10 s) compares the (name, version) list as a
// backstop for a lost connection or notification. Either asks the pipeline reloader to reload,
// which merges these pipelines with the files' and applies the set through its usual path.
import type { Logger } from 'pino';
import { NotifyListener } from '../../engine/notify-listener.js';
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
  /** LISTEN walflow_pipelines on a connection of its own, reconnecting (the engine's listener). */
  private listener: NotifyListener | undefined;
  private poll: Repeating | undefined;

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
    this.listener = new NotifyListener(this.o.url, { walflow_pipelines: () => this.o.onChange() }, this.o.log);
    // A change committed between load() and the LISTEN: the reload reads the table anyway.
    void this.listener.start().then(() => this.o.onChange());
    this.poll = repeatWithoutOverlap(this.o.pollMs ?? 10_000, async () => {
      const { rows } = await db.query<{ k: string | null }>(`SELECT string_agg(name || '@' || version, E'\\n' ORDER BY name) AS k FROM walflow.sql_pipelines`);
      if ((rows[0]?.k ?? '') !== this.seen) this.o.onChange();
    }, (err) => this.o.log.warn({ err }, 'could not poll walflow.sql_pipelines'));
  }

  async stop(): Promise<void> {
    this.poll?.stop();
    await this.listener?.stop();
  }
}

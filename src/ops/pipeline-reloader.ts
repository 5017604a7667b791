// Live reload of the pipelines directory for `walflow run`: on a change in the directory (fs.watch,
// debounced) or on SIGHUP, every file is loaded again; added, changed and removed pipelines are
// applied to the running process and logged. A file that fails to load (syntax error, throws, bad
// definition, invalid source) keeps its previous pipelines running; the error is logged, counted
// (walflow_pipeline_load_errors) and recorded in walflow.pipeline_load_errors for `walflow status`.
// Reloading never stops the process. Pipelines defined from SQL (./sql-pipelines/) join the set as
// if each were a file named "sql:<name>": a file pipeline with a SQL pipeline's name is that
// file's load error, and a SQL definition this process cannot build is "sql:<name>"'s.
import fs from 'node:fs';
import type { Logger } from 'pino';
import type { Pipeline } from '../pipeline/define.js';
import { loadPipelineFile, pipelineFiles } from '../pipeline/load.js';
import type { WalflowMetrics } from './metrics.js';
import type { Walflow } from './runner.js';
import type { SqlPipelineSet } from './sql-pipelines/watcher.js';

export interface LoadedFile {
  file: string;
  pipelines: readonly Pipeline[];
}

export interface ReloaderOptions {
  dir: string;
  /** `--only`: pipelines outside this list are ignored. */
  only?: readonly string[];
  walflow: Walflow;
  metrics: WalflowMetrics;
  log: Logger;
  /** The files as loaded at start. */
  initial: readonly LoadedFile[];
  debounceMs?: number;
  /** Pipelines defined from SQL (the SqlPipelineWatcher), merged with the files' on every reload. */
  sql?: { load(db: Walflow['engine']['pool']): Promise<SqlPipelineSet> };
}

const SQL = 'sql:';

export class PipelineReloader {
  /** The last version of each file that loaded (and applied) cleanly. */
  private good = new Map<string, readonly Pipeline[]>();
  private errors = new Map<string, string>();
  private watcher: fs.FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private again = false;
  private busy = false;
  private stopped = false;

  constructor(private readonly o: ReloaderOptions) {
    for (const f of o.initial) this.good.set(f.file, f.pipelines);
  }

  start(): void {
    this.watcher = fs.watch(this.o.dir, () => this.schedule());
    this.watcher.on('error', (err) => this.o.log.warn({ err, dir: this.o.dir }, 'watching the pipelines directory failed; reload with SIGHUP'));
    void this.record();
  }

  /** A burst of file events (an editor's save is several) makes one reload. */
  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.reload(), this.o.debounceMs ?? 300);
  }

  /** Reloads now (SIGHUP); one reload at a time, and a request during one makes one more. */
  reload(): Promise<void> {
    if (this.stopped) return this.running;
    if (this.busy) {
      this.again = true;
      return this.running;
    }
    this.busy = true;
    this.running = (async () => {
      do {
        this.again = false;
        await this.reloadOnce().catch((err: unknown) => this.o.log.error({ err }, 'pipelines: reload failed; the previous pipelines keep running'));
      } while (this.again && !this.stopped);
      this.busy = false;
    })();
    return this.running;
  }

  private async reloadOnce(): Promise<void> {
    const { dir, log, walflow } = this.o;
    const errors = new Map<string, string>();
    const files = new Map<string, readonly Pipeline[]>();
    for (const file of pipelineFiles(dir)) {
      try {
        files.set(file, await loadPipelineFile(dir, file));
      } catch (err) {
        errors.set(file, (err as Error).message);
        const prev = this.good.get(file);
        if (prev) files.set(file, prev);
      }
    }
    const sql = await this.loadSql(errors);
    // A name defined by two files: the file that had it keeps it; the other one is in error. A
    // SQL-defined pipeline keeps its name against any file (walflow.create_pipeline refused the
    // name of a file pipeline registered then).
    const owner = new Map<string, string>();
    for (const [file, ps] of this.good) for (const p of ps) owner.set(p.name, file);
    const byName = new Map<string, { file: string; pipeline: Pipeline }>();
    for (const [file, ps] of [...sql, ...[...files].sort(([a], [b]) => Number(owner.has(b)) - Number(owner.has(a)))]) {
      const clash = ps.find((p) => byName.has(p.name) && byName.get(p.name)!.file !== file);
      if (clash) {
        const other = byName.get(clash.name)!.file;
        errors.set(file, other.startsWith(SQL)
          ? `pipeline "${clash.name}" is defined in SQL (walflow.create_pipeline): rename this file's pipeline, or drop the SQL one (SELECT walflow.drop_pipeline('${clash.name}'))`
          : `pipeline "${clash.name}" is defined in both ${other} and ${file}`);
        const prev = this.good.get(file);
        files.set(file, prev ?? []);
        for (const p of prev ?? []) if (!byName.has(p.name)) byName.set(p.name, { file, pipeline: p });
        continue;
      }
      for (const p of ps) byName.set(p.name, { file, pipeline: p });
    }
    for (const [file, ps] of sql) files.set(file, ps);
    const only = this.o.only?.length ? new Set(this.o.only) : undefined;
    let next = [...byName.values()].filter((e) => !only || only.has(e.pipeline.name));

    // A new or changed source that cannot be streamed (no such table, no key…) is that file's error.
    const before = new Map(walflow.pipelines.map((p) => [p.name, p]));
    for (let tries = 0; ; tries++) {
      try {
        await walflow.apply(next.map((e) => e.pipeline));
        break;
      } catch (err) {
        const culprit = tries <= next.length ? this.findCulprit(next, before, err) : undefined;
        if (!culprit) throw err;
        errors.set(culprit.file, (err as Error).message);
        const prev = this.good.get(culprit.file) ?? [];
        next = next.filter((e) => e.file !== culprit.file).concat(prev.filter((p) => !only || only.has(p.name)).map((pipeline) => ({ file: culprit.file, pipeline })));
        files.set(culprit.file, prev);
      }
    }
    for (const [file, ps] of files) if (!errors.has(file)) this.good.set(file, ps);
    for (const file of [...this.good.keys()]) if (!files.has(file)) this.good.delete(file);
    this.logChanges(before, next.map((e) => e.pipeline));
    for (const [file, message] of errors) if (this.errors.get(file) !== message) log.error({ file, err: message }, `pipelines: ${file} failed to load; its previous version (if any) keeps running`);
    this.errors = errors;
    await this.record();
  }

  /**
   * The SQL-defined pipelines as pseudo-files "sql:<name>". One that does not build keeps its
   * previous version (if any) and is in error; if the table cannot be read, the previous ones stay.
   */
  private async loadSql(errors: Map<string, string>): Promise<Map<string, readonly Pipeline[]>> {
    const out = new Map<string, readonly Pipeline[]>();
    if (!this.o.sql) return out;
    try {
      const set = await this.o.sql.load(this.o.walflow.engine.pool);
      for (const p of set.pipelines) out.set(SQL + p.name, [p]);
      for (const [name, message] of set.errors) {
        errors.set(SQL + name, message);
        out.set(SQL + name, this.good.get(SQL + name) ?? []);
      }
    } catch (err) {
      this.o.log.warn({ err }, 'pipelines: could not read the SQL-defined pipelines; the loaded ones keep running');
      for (const [file, ps] of this.good) if (file.startsWith(SQL)) out.set(file, ps);
    }
    return out;
  }

  /** The file whose (new) pipeline made apply() fail: the first new or changed one whose message names it. */
  private findCulprit(next: { file: string; pipeline: Pipeline }[], before: Map<string, Pipeline>, err: unknown): { file: string } | undefined {
    const message = (err as Error).message ?? '';
    const changed = next.filter((e) => before.get(e.pipeline.name) !== e.pipeline);
    return changed.find((e) => message.includes(`"${e.pipeline.name}"`)) ?? (changed.length === 1 ? changed[0] : undefined);
  }

  private logChanges(before: Map<string, Pipeline>, after: readonly Pipeline[]): void {
    const now = new Map(after.map((p) => [p.name, p]));
    const added = after.filter((p) => !before.has(p.name)).map((p) => ({ name: p.name, version: p.version }));
    const changed = after.filter((p) => before.has(p.name) && before.get(p.name) !== p)
      .map((p) => ({ name: p.name, from: before.get(p.name)!.version, to: p.version }));
    const removed = [...before.keys()].filter((n) => !now.has(n));
    if (added.length + changed.length + removed.length === 0) return;
    const parts = [
      ...added.map((a) => `added ${a.name} (${a.version})`),
      ...changed.map((c) => `changed ${c.name} (${c.from} → ${c.to})`),
      ...removed.map((r) => `removed ${r}`),
    ];
    this.o.log.info({ added, changed, removed }, `pipelines reloaded: ${parts.join(', ')}`);
  }

  /** This process's load errors, for other processes' `walflow status`, and the metric. */
  private async record(): Promise<void> {
    this.o.metrics.setPipelineLoadErrors(this.errors.size);
    const { engine } = this.o.walflow;
    const files = [...this.errors.keys()];
    await engine.pool.query(
      `WITH gone AS (DELETE FROM walflow.pipeline_load_errors WHERE owner = $1 AND NOT (file = ANY($2::text[])))
       INSERT INTO walflow.pipeline_load_errors (owner, file, message)
       SELECT $1, f, m FROM unnest($2::text[], $3::text[]) AS e(f, m)
       ON CONFLICT (owner, file) DO UPDATE SET message = EXCLUDED.message,
         failed_at = CASE WHEN walflow.pipeline_load_errors.message = EXCLUDED.message THEN walflow.pipeline_load_errors.failed_at ELSE now() END`,
      [engine.owner, files, files.map((f) => this.errors.get(f)!)],
    ).catch((err: unknown) => this.o.log.warn({ err }, 'could not record pipeline load errors'));
  }

  /** Stops watching; removes this process's recorded errors (call before the engine stops). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.watcher?.close();
    await this.running;
    await this.o.walflow.engine.pool.query(`DELETE FROM walflow.pipeline_load_errors WHERE owner = $1`, [this.o.walflow.engine.owner]).catch(() => undefined);
  }
}

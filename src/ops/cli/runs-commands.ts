// Inspecting and steering runs: status, runs, inspect, retry, cancel.
import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { emit, formatBytes, formatSeconds, formatTable, num, withClient } from '../output.js';

const STATUSES = ['queued', 'running', 'waiting', 'completed', 'failed', 'cancelled', 'superseded'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function runId(id: string): string {
  if (!UUID.test(id)) throw new UserError(`"${id}" is not a run id (a UUID such as 0193c4e2-7d1a-7b3c-9a4e-1f2d3c4b5a69)`);
  return id;
}

function positive(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new UserError(`${name} must be a positive whole number (got "${v}")`);
    return n;
  };
}

export function registerRunCommands(program: Command): void {
  program
    .command('status')
    .description('per pipeline: runs by status, oldest queued age, throughput; replication slot, lag and leader; worker processes')
    .option('--json', 'machine-readable output: {pipelines, replication, workers, pipeline_errors, schedules}')
    .action(async (opts: { json?: boolean }) => {
      await withClient(async (c) => {
        const pipelines = (await c.query(
          `SELECT pipeline, version, queued, running, waiting, failed, completed_1h, completed_per_s_1m,
                  extract(epoch FROM oldest_queued_age)::float8 AS oldest_queued_s,
                  sleeping, awaiting_signal, awaiting_children, repeating, next_wake
             FROM walflow.status ORDER BY pipeline`,
        )).rows.map((r) => ({
          pipeline: r.pipeline as string, version: r.version as string,
          queued: num(r.queued), running: num(r.running), waiting: num(r.waiting), failed: num(r.failed),
          completed_1h: num(r.completed_1h), completed_per_s_1m: num(r.completed_per_s_1m), oldest_queued_s: num(r.oldest_queued_s),
          // Parked runs (durable waits), told apart from `waiting` (a retry of a failed attempt).
          sleeping: num(r.sleeping), awaiting_signal: num(r.awaiting_signal), awaiting_children: num(r.awaiting_children),
          repeating: num(r.repeating), next_wake: r.next_wake as Date | null,
        }));
        const replication = (await c.query(
          `SELECT slot_name, publication, active, lag_bytes, lag_seconds, leader_id, leader_health, leader_heartbeat_at, wal_status
             FROM walflow.replication_status ORDER BY slot_name`,
        )).rows.map((r) => ({
          slot: r.slot_name as string, publication: r.publication as string, active: r.active as boolean,
          lag_bytes: num(r.lag_bytes), lag_seconds: num(r.lag_seconds),
          leader: r.leader_id as string | null, leader_health: r.leader_health as string, leader_heartbeat_at: r.leader_heartbeat_at as Date | null,
          wal_status: r.wal_status as string | null,
        }));
        const workers = (await c.query(
          `SELECT owner, host, pid, pipelines, in_flight, started_at, heartbeat_at, health FROM walflow.worker_health ORDER BY health, started_at, owner`,
        )).rows as { owner: string; host: string; pid: number; pipelines: string[]; in_flight: number | null; started_at: Date; heartbeat_at: Date; health: string }[];
        // Pipeline files a running `walflow run` could not (re)load: their previous version keeps running.
        const pipeline_errors = (await c.query(
          `SELECT file, message, owner, failed_at FROM walflow.pipeline_load_errors ORDER BY file, owner`,
        )).rows as { file: string; message: string; owner: string; failed_at: Date }[];
        // Schedules by state (details: `walflow schedules`).
        const schedules = Object.fromEntries((await c.query(`SELECT state, count(*)::int AS n FROM walflow.schedule_status GROUP BY state`)).rows
          .map((r) => [r.state as string, r.n as number])) as Record<string, number>;
        emit(opts.json, { pipelines, replication, workers, pipeline_errors, schedules }, () => {
          const ago = (d: Date | null) => (d ? `${formatSeconds((Date.now() - d.getTime()) / 1000)} ago` : '');
          return [
            formatTable(pipelines.map((p) => ({ ...p, oldest_queued: formatSeconds(p.oldest_queued_s), parked: parkedText(p) })),
              ['pipeline', 'version', 'queued', 'running', 'waiting', 'parked', 'failed', 'completed_1h', 'completed_per_s_1m', 'oldest_queued']),
            '',
            'replication',
            formatTable(replication.map((r) => ({ ...r, lag: formatBytes(r.lag_bytes), lag_age: formatSeconds(r.lag_seconds), heartbeat: ago(r.leader_heartbeat_at) })),
              ['slot', 'active', 'lag', 'lag_age', 'leader', 'leader_health', 'heartbeat', 'wal_status']),
            '',
            'workers',
            formatTable(workers.map((w) => ({ ...w, pipelines: w.pipelines.join(','), heartbeat: ago(w.heartbeat_at) })),
              ['owner', 'pid', 'health', 'in_flight', 'pipelines', 'heartbeat']),
            ...(Object.keys(schedules).length > 0 ? ['', `schedules: ${Object.entries(schedules).map(([k, n]) => `${n} ${k}`).join(', ')} (walflow schedules)`] : []),
            ...(pipeline_errors.length > 0
              ? ['', 'pipeline errors (the previous version keeps running)', formatTable(pipeline_errors.map((e) => ({ ...e, since: ago(e.failed_at) })), ['file', 'owner', 'since', 'message'])]
              : []),
          ].join('\n');
        });
      });
    });

  program
    .command('runs')
    .description('list runs, newest first (in start order); --before pages on')
    .option('--pipeline <name>', 'only this pipeline')
    .option('--status <status>', `only this status (${STATUSES.join(', ')})`)
    .option('--key <key>', 'only runs of this key')
    .option('--limit <n>', 'at most this many', positive('--limit'), 20)
    .option('--before <run>', 'page: runs older than this run id')
    .option('--json', 'machine-readable output')
    .action(async (opts: { pipeline?: string; status?: string; key?: string; limit: number; before?: string; json?: boolean }) => {
      if (opts.status && !STATUSES.includes(opts.status)) throw new UserError(`unknown status "${opts.status}" (use one of ${STATUSES.join(', ')})`);
      if (opts.before) runId(opts.before);
      await withClient(async (c) => {
        const { rows } = await c.query(
          'SELECT * FROM walflow.list_runs($1, $2, $3, $4, $5)',
          [opts.pipeline ?? null, opts.status ?? null, opts.key ?? null, opts.before ?? null, opts.limit],
        );
        emit(opts.json, { runs: rows }, () => formatTable(rows, ['id', 'pipeline', 'key', 'status', 'steps_done', 'current_step', 'attempt', 'created_at', 'error_message']));
      });
    });

  program
    .command('inspect <run>')
    .description("a run's step timeline: each step's attempts, durations, errors (with stack) and output size")
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }) => {
      runId(id);
      await withClient(async (c) => {
        const run = (await c.query(
          `SELECT r.id, r.pipeline, r.pipeline_version AS started_version, p.version AS loaded_version, r.key, r.status, r.step_index, r.attempt,
                  r.input, r.error, r.created_at, r.started_at, r.finished_at, r.parent_run_id, r.child_index
             FROM walflow.runs r LEFT JOIN walflow.pipelines p ON p.name = r.pipeline WHERE r.id = $1`, [id])).rows[0];
        if (!run) throw new UserError(`no run ${id}`, 3);
        // What it waits for, and its family: the children its steps started, by step.
        const waitingFor = (await c.query(`SELECT step, kind, until, signal, children, children_left, mode AS join, repeats, since FROM walflow.waits w
                                            WHERE run_id = $1 AND $2 = 'waiting'`, [id, run.status])).rows[0] ?? null;
        const { rows: children } = await c.query(
          `SELECT parent_step_index AS step_index, child_index, id, pipeline, status FROM walflow.runs
            WHERE parent_run_id = $1 ORDER BY parent_step_index, child_index LIMIT 1000`, [id]);
        const { rows: steps } = await c.query(
          `SELECT t.step_index, t.step, t.outcome, t.attempt, t.duration_ms, t.started_at, t.finished_at, t.retry_at, t.error,
                  octet_length(s.output::text) AS output_bytes
             FROM walflow.run_timeline t
             LEFT JOIN walflow.steps s ON s.run_id = t.run_id AND s.step_index = t.step_index AND t.outcome = 'completed'
            WHERE t.run_id = $1 ORDER BY t.step_index, t.attempt, t.outcome DESC`,
          [id],
        );
        for (const s of steps) s.duration_ms = num(s.duration_ms);
        emit(opts.json, { run, steps, waiting_for: waitingFor, children }, () => {
          const version = run.loaded_version && run.loaded_version !== run.started_version ? `${run.started_version} (loaded now: ${run.loaded_version})` : run.started_version ?? '';
          const head = `run ${run.id}  pipeline=${run.pipeline}  version=${version}  key=${run.key ?? ''}  status=${run.status}  created=${run.created_at.toISOString()}`
            + (run.parent_run_id ? `\nchild ${run.child_index} of run ${run.parent_run_id}` : '');
          const table = formatTable(steps.map((s) => ({ ...s, error: s.error?.message ?? '' })), ['step_index', 'step', 'outcome', 'attempt', 'duration_ms', 'output_bytes', 'error']);
          const waits = waitingFor ? [`waiting in step "${waitingFor.step}" for ${describeWait(waitingFor)}`] : [];
          const family = children.length > 0 ? [`children (${children.length}${children.length === 1000 ? ', first 1000' : ''}):`, formatTable(children, ['step_index', 'child_index', 'id', 'pipeline', 'status'])] : [];
          const stacks = steps.filter((s) => s.error?.stack).map((s) => `\n-- ${s.step} attempt ${s.attempt}:\n${s.error.stack}`);
          return [head, table, ...waits, ...family, ...stacks].join('\n');
        });
      });
    });

  program
    .command('retry [run]')
    .description('re-run a failed (or cancelled) run from the step that failed; or every failed run of a pipeline')
    .option('--failed', 'retry all failed runs (with --pipeline)')
    .option('--pipeline <name>', 'the pipeline, with --failed')
    .option('--json', 'machine-readable output')
    .action(async (id: string | undefined, opts: { failed?: boolean; pipeline?: string; json?: boolean }) => {
      if (!id && !(opts.failed && opts.pipeline)) throw new UserError('name a run, or use --failed --pipeline NAME');
      if (id && opts.failed) throw new UserError('give either a run id or --failed, not both');
      if (id) runId(id);
      await withClient(async (c) => {
        if (id) {
          const ok = (await c.query('SELECT walflow.retry($1) AS ok', [id])).rows[0].ok as boolean;
          emit(opts.json, { retried: ok ? 1 : 0 }, () => (ok ? `run ${id} queued again` : `run ${id} is not failed or cancelled; nothing to retry`));
          if (!ok) process.exitCode = 3;
        } else {
          const n = (await c.query('SELECT walflow.retry_failed($1) AS n', [opts.pipeline])).rows[0].n as number;
          emit(opts.json, { retried: n }, () => (n > 0 ? `${n} failed run(s) of ${opts.pipeline} queued again` : `no failed runs of ${opts.pipeline}; nothing to retry`));
          if (n === 0) process.exitCode = 3;
        }
      });
    });

  program
    .command('signal <run-or-key> <name> [payload]')
    .description("send a signal to a run (a step's waitFor consumes it); payload is JSON. With --pipeline, the first argument is a key: the signal goes to that key's current run")
    .option('--pipeline <name>', 'address the run by pipeline and key')
    .option('--json', 'machine-readable output')
    .action(async (target: string, name: string, payload: string | undefined, opts: { pipeline?: string; json?: boolean }) => {
      let body: unknown = null;
      if (payload !== undefined) {
        try {
          body = JSON.parse(payload);
        } catch (err) {
          throw new UserError(`payload is not JSON: ${(err as Error).message} (quote it for the shell: '{"approved": true}')`);
        }
      }
      if (!opts.pipeline) runId(target);
      await withClient(async (c) => {
        const { rows } = opts.pipeline
          ? await c.query('SELECT walflow.signal_key($1, $2, $3, $4::jsonb) AS id', [opts.pipeline, target, name, JSON.stringify(body)])
          : await c.query('SELECT walflow.signal($1, $2, $3::jsonb) AS id', [target, name, JSON.stringify(body)]);
        emit(opts.json, { signal: Number(rows[0].id) }, () => `signal "${name}" sent (id ${rows[0].id})`);
      });
    });

  program
    .command('cancel <run>')
    .description('cancel a run that has not finished')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }) => {
      runId(id);
      await withClient(async (c) => {
        const ok = (await c.query('SELECT walflow.cancel($1) AS ok', [id])).rows[0].ok as boolean;
        emit(opts.json, { cancelled: ok }, () => (ok ? `run ${id} cancelled` : `run ${id} has already finished`));
        if (!ok) process.exitCode = 3;
      });
    });
}

/** One column for the parked runs, by what they wait for ("2 signal, 1 sleep"; the --json output has each count). */
function parkedText(p: { sleeping: number | null; awaiting_signal: number | null; awaiting_children: number | null; repeating: number | null }): string {
  const parts = ([['sleep', p.sleeping], ['signal', p.awaiting_signal], ['children', p.awaiting_children], ['again', p.repeating]] as const)
    .filter(([, n]) => (n ?? 0) > 0).map(([what, n]) => `${n} ${what}`);
  return parts.length > 0 ? parts.join(', ') : '0';
}

function describeWait(w: { kind: string; until: Date | null; signal: string | null; children: number | null; children_left: number | null; join: string | null; repeats: number }): string {
  const until = w.until ? ` until ${w.until.toISOString()}` : '';
  switch (w.kind) {
    case 'sleep': return `its time${until}`;
    case 'signal': return `signal "${w.signal}"${w.until ? ` (times out at ${w.until.toISOString()})` : ''}`;
    case 'children': return `${w.children_left} of ${w.children} children (${w.join})${w.until ? `, timeout ${w.until.toISOString()}` : ''}`;
    default: return `its next try (repeat ${w.repeats})${until}`;
  }
}

// `walflow schedules`: every schedule (declared in a pipeline file or created from SQL) with its
// next and last tick, and why it is late or broken.
import type { Command } from 'commander';
import { emit, formatTable, withClient } from '../output.js';

export function registerScheduleCommands(program: Command): void {
  program
    .command('schedules')
    .description('schedules with their next and last tick, state (ok, pending, late, error) and error')
    .option('--json', 'machine-readable output: {schedules: [...]}')
    .action(async (opts: { json?: boolean }) => {
      await withClient(async (c) => {
        const { rows } = await c.query(
          `SELECT name, pipeline, cron, (extract(epoch FROM every) * 1000)::float8 AS every_ms, timezone, catch_up, origin, input,
                  next_tick, last_tick, state, error
             FROM walflow.schedule_status ORDER BY name`,
        );
        emit(opts.json, { schedules: rows }, () => formatTable(
          rows.map((r) => ({ ...r, when: r.cron ?? `every ${Number(r.every_ms) / 1000}s` })),
          ['name', 'pipeline', 'when', 'timezone', 'catch_up', 'origin', 'next_tick', 'last_tick', 'state', 'error'],
        ));
      });
    });
}

// `walflow doctor [--json]`: the checklist of src/ops/doctor.ts. Exit 0 when nothing failed
// (warnings allowed), 2 when a check failed; the checklist is printed either way.
import type { Command } from 'commander';
import { doctorExitCode, runDoctor, type Check } from '../doctor.js';
import { emit, withClient } from '../output.js';

const MARK: Record<Check['status'], string> = { ok: '[ok]  ', warn: '[warn]', fail: '[FAIL]' };

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('check the database (DATABASE_URL) for everything walflow needs: version, wal_level, slots and WAL senders, max_slot_wal_keep_size, privileges, pgvector, the slot\'s health; exit 2 when a check fails')
    .option('--json', 'machine-readable output: {ok, checks: [{check, status, detail, fix?}]}')
    .action(async (opts: { json?: boolean }) => {
      await withClient(async (c, config) => {
        const checks = await runDoctor(c, { slotName: config.slotName });
        const code = doctorExitCode(checks);
        emit(opts.json, { ok: code === 0, checks }, () =>
          checks.map((k) => `${MARK[k.status]} ${k.check}: ${k.detail}${k.fix ? `\n       fix: ${k.fix}` : ''}`).join('\n'));
        process.exitCode = code;
      });
    });
}

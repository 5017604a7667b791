// The walflow command line. Exit codes: 0 ok; 1 unexpected error (a bug: the stack is printed);
// 2 user error (bad usage, configuration or input; cannot connect); 3 what was named does not
// exist, or there was nothing to do. A failed command prints one line on stderr, nothing on stdout.
import { Command, CommanderError } from 'commander';
import { isUserError, redactSecrets } from '../../errors.js';
import { registerDbCommands } from './db-commands.js';
import { registerRunCommands } from './runs-commands.js';
import { registerScheduleCommands } from './schedule-commands.js';
import { registerPipelineCommands } from './pipeline-commands.js';
import { registerDoctorCommand } from './doctor-command.js';
import { registerUiCommand } from './ui-command.js';

/** Exit codes of walflow's own SQL errors (sql/definitions/functions/*.sql). */
const SQL_EXIT: Record<string, number> = { WF001: 3, WF002: 2, WF003: 3, WF004: 3 };

function fail(message: string, code: number): void {
  process.stderr.write(`walflow: ${redactSecrets(message)}\n`);
  process.exitCode = code;
}

function unexpected(err: unknown): never {
  process.stderr.write(`walflow: unexpected error: ${redactSecrets(err instanceof Error ? (err.stack ?? err.message) : String(err))}\n`);
  process.exit(1);
}
// Even a crash after startup (in a worker, a timer) prints no secret.
process.on('uncaughtException', unexpected);
process.on('unhandledRejection', unexpected);

const program = new Command()
  .name('walflow')
  .description('Durable, WAL-driven pipelines for PostgreSQL')
  .version('0.1.0')
  // Usage errors are reported below as one line with exit code 2, not by commander (exit 1).
  .exitOverride()
  .configureOutput({ outputError: () => undefined });

registerDbCommands(program);
registerPipelineCommands(program);
registerRunCommands(program);
registerScheduleCommands(program);
registerDoctorCommand(program);
registerUiCommand(program);

/** `walflow runs` or `walflow db url`: the command the arguments name, for the usage hint. */
function commandOf(argv: string[]): string {
  const words = argv.filter((a) => !a.startsWith('-'));
  const top = program.commands.find((c) => c.name() === words[0]);
  if (!top) return 'walflow';
  const sub = top.commands.find((c) => c.name() === words[1]);
  return ['walflow', top.name(), ...(sub ? [sub.name()] : [])].join(' ');
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const code = (err as { code?: unknown }).code;
  if (err instanceof CommanderError) {
    if (code === 'commander.helpDisplayed' || code === 'commander.version') process.exitCode = 0;
    else if (code === 'commander.help') process.exitCode = 2; // no command given: usage went to stderr
    else fail(`${err.message.replace(/^error: /, '')} (see \`${commandOf(process.argv.slice(2))} --help\`)`, 2);
  } else if (typeof code === 'string' && code in SQL_EXIT) {
    // walflow's own SQL errors (unknown pipeline, no such run, bad input) are user errors.
    fail((err as Error).message.replace(/^walflow: /, ''), SQL_EXIT[code]!);
  } else if ((code === '42P01' || code === '3F000' || code === '42883') && /walflow/.test((err as Error).message)) {
    fail(`this database has no walflow schema, or an older one (${(err as Error).message}): run \`walflow migrate\``, 2);
  } else if (isUserError(err)) {
    fail(err.message, err.exitCode);
  } else {
    unexpected(err);
  }
}

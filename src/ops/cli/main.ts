// The walflow command line. User errors print one line and exit non-zero; bugs print a stack.
import { Command } from 'commander';
import { isUserError, redactSecrets } from '../../errors.js';
import { registerDbCommands } from './db-commands.js';

const program = new Command()
  .name('walflow')
  .description('Durable, WAL-driven pipelines for PostgreSQL')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)');

registerDbCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (isUserError(err)) {
    process.stderr.write(`walflow: ${redactSecrets(err.message)}\n`);
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write(`walflow: unexpected error: ${redactSecrets(err instanceof Error ? (err.stack ?? err.message) : String(err))}\n`);
    process.exitCode = 1;
  }
}

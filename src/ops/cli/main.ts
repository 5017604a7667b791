// The walflow command line. User errors print one line and exit non-zero; bugs print a stack.
import { Command } from 'commander';
import { isUserError, redactSecrets } from '../../errors.js';
import { registerDbCommands } from './db-commands.js';
import { registerRunCommands } from './runs-commands.js';
import { registerPipelineCommands } from './pipeline-commands.js';

const program = new Command()
  .name('walflow')
  .description('Durable, WAL-driven pipelines for PostgreSQL')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)');

registerDbCommands(program);
registerPipelineCommands(program);
registerRunCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('WF')) {
    // walflow's own SQL errors (unknown pipeline, no such run…) are user errors.
    process.stderr.write(`walflow: ${(err as Error).message.replace(/^walflow: /, '')}\n`);
    process.exitCode = code === 'WF003' ? 3 : 2;
  } else if (isUserError(err)) {
    process.stderr.write(`walflow: ${redactSecrets(err.message)}\n`);
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write(`walflow: unexpected error: ${redactSecrets(err instanceof Error ? (err.stack ?? err.message) : String(err))}\n`);
    process.exitCode = 1;
  }
}

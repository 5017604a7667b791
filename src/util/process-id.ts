// How a walflow process names itself in walflow.workers (run leases) and walflow.replication_state.
import { randomBytes } from 'node:crypto';
import os from 'node:os';

/** host:pid:random — readable by an operator, unique even when a pid is reused in a container. */
export function newProcessId(): string {
  return `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

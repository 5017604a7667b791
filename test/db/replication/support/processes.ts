// Spawns consumer fixtures as real processes and watches their status lines.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const FIXTURE = fileURLToPath(new URL('../../../fixtures/replication/consumer.ts', import.meta.url));
const ROOT = path.resolve(path.dirname(FIXTURE), '../../..');

export interface Consumer {
  child: ChildProcess;
  roles: string[];
  lines: Record<string, unknown>[];
  exited: Promise<number | null>;
  waitForRole(role: string, timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function spawnConsumer(env: Record<string, string>): Consumer {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const roles: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (l) => {
    try {
      const msg = JSON.parse(l) as { role: string };
      lines.push(msg);
      roles.push(msg.role);
      for (const w of waiters.splice(0)) w();
    } catch {
      /* not a status line */
    }
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child, roles, lines, exited,
    async waitForRole(role, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (roles.at(-1) !== role) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`consumer ${child.pid} never became ${role} (roles ${roles.join(',')}); stderr: ${stderr}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
      }
    },
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

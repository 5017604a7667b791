// Spawning real walflow processes for crash tests (killed with SIGKILL, not simulated).
import { spawn, type ChildProcess } from 'node:child_process';

export interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts `node --import tsx <script> ...args` and resolves once it prints `ready`. */
export async function startTsProcess(script: string, args: string[], readyTimeoutMs = 20_000): Promise<Proc> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + readyTimeoutMs;
  while (!out.includes('ready')) {
    if (child.exitCode !== null) throw new Error(`${script} exited early (${child.exitCode}):\n${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${script} did not become ready:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { child, output: () => out, exited };
}

export async function sigkill(p: Proc): Promise<void> {
  p.child.kill('SIGKILL');
  await p.exited;
}

// Runs the real walflow command (node bin/walflow.js) as a child process, for the operator-surface
// tests: one-shot commands with their exit code and output, and `walflow run` until it is ready.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const BIN = fileURLToPath(new URL('../../../../bin/walflow.js', import.meta.url));
export const FIXTURE_PIPELINES = fileURLToPath(new URL('../../../fixtures/ops/pipelines/', import.meta.url));
export const SECRET_PIPELINES = fileURLToPath(new URL('../../../fixtures/ops/secret-pipelines/', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of a walflow child: this one's, without any walflow setting, plus `env`. */
export function childEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'DATABASE_URL' && !k.startsWith('WALFLOW_')));
  const merged: NodeJS.ProcessEnv = { ...base, WALFLOW_LOG_PRETTY: 'false' };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete merged[k];
    else merged[k] = v;
  }
  return merged;
}

export function walflow(args: string[], env: Record<string, string | undefined>, timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`walflow ${args.join(' ')} did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs a command with --json and parses its one JSON document (fails the test with the output otherwise). */
export async function walflowJson<T = Record<string, unknown>>(args: string[], env: Record<string, string | undefined>, expectCode = 0): Promise<{ json: T } & CliResult> {
  const r = await walflow([...args, '--json'], env);
  if (r.code !== expectCode) throw new Error(`walflow ${args.join(' ')} exited ${r.code} (expected ${expectCode})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  if (lines.length !== 1) throw new Error(`walflow ${args.join(' ')} --json printed ${lines.length} lines:\n${r.stdout}`);
  return { ...r, json: JSON.parse(lines[0]!) as T };
}

/** Asserts the shape of a failed command: exit code, nothing on stdout, one line on stderr without a stack. */
export function failure(r: CliResult): { code: number | null; line: string; lines: number; stack: boolean; stdout: string } {
  const lines = r.stderr.trimEnd().split('\n');
  return { code: r.code, line: lines[0] ?? '', lines: lines.length, stack: /\n\s+at /.test(r.stderr), stdout: r.stdout };
}

export interface RunningWalflow {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** pino JSON lines written so far. */
  logs: () => Record<string, unknown>[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `walflow run …` and resolves once it logged "walflow running". */
export async function startWalflowRun(args: string[], env: Record<string, string | undefined>, readyTimeoutMs = 60_000): Promise<RunningWalflow> {
  const child = spawn(process.execPath, [BIN, 'run', ...args], { cwd: ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const logs = () =>
    stderr.split('\n').filter((l) => l.startsWith('{')).flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  const deadline = Date.now() + readyTimeoutMs;
  while (!logs().some((l) => l.msg === 'walflow running')) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`walflow run exited early (${child.exitCode ?? child.signalCode}):\n${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`walflow run did not become ready within ${readyTimeoutMs} ms:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child, exited, logs,
    stdout: () => stdout,
    stderr: () => stderr,
    async stop(signal = 'SIGTERM', timeoutMs = 30_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([
        exited,
        new Promise<never>((_, reject) => (timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`walflow run did not exit within ${timeoutMs} ms of ${signal}:\n${stderr.slice(-3000)}`));
        }, timeoutMs))),
      ]);
      clearTimeout(timer);
      return result;
    },
  };
}

/** A TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Parses Prometheus text into `name{labels}` → value (labels sorted as printed). */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** The value of metric `name` with exactly these labels (0 when absent). */
export function metric(metrics: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  for (const [k, v] of metrics) {
    const m = /^([^{]+)(?:\{(.*)\})?$/.exec(k)!;
    if (m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    const want = Object.entries(labels);
    if (want.length === Object.keys(got).length && want.every(([lk, lv]) => got[lk] === lv)) return v;
  }
  return 0;
}

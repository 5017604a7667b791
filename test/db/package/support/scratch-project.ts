// Scratch projects for the consumer test: the package as `npm pack` makes it, installed into a
// fresh CommonJS or ESM project the way a user installs it, and the files such a user writes.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment of a child npm/node: without the npm_* variables of an enclosing `npm test`
 * (npm_config_prefix and the like would redirect the nested npm) and without walflow settings.
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'DATABASE_URL' && !k.startsWith('WALFLOW_')));
  return { ...base, WALFLOW_LOG_PRETTY: 'false', ...extra };
}

export function run(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}, timeoutMs = 240_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env: cleanEnv(env), timeout: timeoutMs, maxBuffer: 32 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export async function mustRun(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<Result> {
  const r = await run(cmd, args, cwd, env);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** `npm pack` of this checkout (its prepack script builds dist/): the tarball's path. */
export async function pack(into: string): Promise<string> {
  const r = await mustRun('npm', ['pack', '--json', '--pack-destination', into], ROOT);
  const [info] = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as [{ filename: string }];
  return path.join(into, info.filename);
}

export type Kind = 'cjs' | 'esm';

/**
 * A fresh project (`npm init -y`; "type": "module" for esm) with the tarball installed as a user
 * would, from the registry through the npm cache. @types/node is what any TypeScript user has.
 */
export async function makeProject(dir: string, kind: Kind, tarball: string): Promise<string> {
  fs.mkdirSync(path.join(dir, 'pipelines'), { recursive: true });
  const pkg: Record<string, unknown> = { name: `walflow-consumer-${kind}`, version: '1.0.0', private: true };
  if (kind === 'esm') pkg.type = 'module';
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  await mustRun('npm', ['install', tarball, '@types/node@20.19.43', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], dir);
  return dir;
}

/** A pipeline file of every kind walflow loads; `.js` follows the project's module system. */
export function pipelineFiles(kind: Kind): Record<string, string> {
  const esm = (name: string) => `import { definePipeline } from 'walflow';\nexport default definePipeline({ name: '${name}', steps: [{ name: 'only', run: () => null }] });\n`;
  const cjs = (name: string) => `const { definePipeline } = require('walflow');\nmodule.exports = definePipeline({ name: '${name}', steps: [{ name: 'only', run: () => null }] });\n`;
  return {
    'p-ts.ts': esm(`${kind}-ts`),
    'p-mts.mts': esm(`${kind}-mts`),
    'p-cts.cts': esm(`${kind}-cts`),
    'p-js.js': kind === 'esm' ? esm(`${kind}-js`) : cjs(`${kind}-js`),
    'p-mjs.mjs': esm(`${kind}-mjs`),
    'p-cjs.cjs': cjs(`${kind}-cjs`),
  };
}

/** Typechecked against the published .d.ts: real types, not `any` (the @ts-expect-error lines). */
export const CONSUMER_TS = `import { definePipeline, Engine, NonRetryableError, type Pipeline } from 'walflow';

const greet: Pipeline = definePipeline<{ name: string }>({
  name: 'greet',
  steps: [{ name: 'hello', run: (ctx) => ({ text: 'hello ' + ctx.runInput.name }) }],
});
// @ts-expect-error runInput is typed: no such property
definePipeline<{ name: string }>({ name: 'x', steps: [{ name: 's', run: (ctx) => ctx.runInput.nmae }] });
// @ts-expect-error an Engine needs its pipelines
new Engine({ url: 'postgres://localhost/x' });
export const engine = new Engine({ url: 'postgres://localhost/x', pipelines: [greet] });
export const err = new NonRetryableError('bad input');
`;

export const CONSUMER_TSCONFIG = JSON.stringify({
  compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: false, types: ['node'] },
  files: ['consumer.ts'],
});

/**
 * An application embedding the Engine (CommonJS: require; ESM: import): a run that completes and
 * one whose step throws NonRetryableError (failed after one attempt). Prints one JSON line.
 */
export function engineApp(kind: Kind): string {
  const load = kind === 'esm' ? `import * as walflow from 'walflow';\nimport pg from 'pg';` : `const walflow = require('walflow');\nconst pg = require('pg');`;
  return `${load}
const { Engine, definePipeline, NonRetryableError } = walflow;
const url = process.argv[2];
const ok = definePipeline({ name: 'app-${kind}-ok', steps: [
  { name: 'hello', run: (ctx) => ({ text: 'hello ' + ctx.runInput.name }) },
  { name: 'shout', run: (_ctx, prev) => ({ text: prev.text.toUpperCase() }) },
] });
const bad = definePipeline({ name: 'app-${kind}-bad', steps: [{ name: 'refuse', run: () => { throw new NonRetryableError('no'); } }] });
const engine = new Engine({ url, pipelines: [ok, bad], pollIntervalMs: 50 });
const db = new pg.Client({ connectionString: url });
async function finished(id) {
  for (;;) {
    const { rows } = await db.query('SELECT status, attempt, walflow.result(id) AS result FROM walflow.runs WHERE id = $1', [id]);
    if (['completed', 'failed'].includes(rows[0].status)) return rows[0];
    await new Promise((r) => setTimeout(r, 50));
  }
}
async function main() {
  await db.connect();
  await engine.register();
  await engine.runWorkers();
  const okRun = await finished(await engine.start('app-${kind}-ok', { name: 'ada' }));
  const badRun = await finished(await engine.start('app-${kind}-bad', {}));
  await engine.stop();
  await db.end();
  console.log(JSON.stringify({ ok: okRun, bad: badRun }));
}
main().catch((err) => { console.error(err); process.exit(1); });
`;
}

/** Starts `npx walflow run` in `dir` like a user does, stdout and stderr collected. */
export function spawnNpx(dir: string, env: Record<string, string>) {
  const child = spawn('npx', ['walflow', 'run'], { cwd: dir, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stdout.resume();
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const logs = () => stderr.split('\n').filter((l) => l.startsWith('{')).flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
  return { child, logs, closed, stderr: () => stderr };
}

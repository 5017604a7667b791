// The image, without a Docker engine: the Dockerfile's own instructions, parsed from it, replayed in
// a scratch directory. The build stage's COPYs and RUNs (npm ci, build, prune), the runtime stage's
// COPY --from=build, ENV and WORKDIR, then its ENTRYPOINT + CMD with DATABASE_URL of the test cluster
// and a pipeline mounted where compose mounts ./pipelines. It must answer /readyz, pass its own
// HEALTHCHECK command, run a run, and exit 0 on SIGTERM. Not replayed: FROM (this machine's Node 20
// stands for node:20-bookworm-slim) and USER (the test runs as whoever runs the tests).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../harness/db.js';
import { waitFor } from '../../harness/wait.js';
import { childEnv, freePort, ROOT } from './support/cli.js';

interface Instruction { op: string; args: string }
interface Stage { name: string; instructions: Instruction[] }

/** Dockerfile → stages of instructions (comments dropped, `\` continuations joined). */
export function parseDockerfile(text: string): Stage[] {
  const logical = text.split('\n').filter((l) => !/^\s*#/.test(l)).join('\n').replace(/\\\n\s*/g, ' ').split('\n').map((l) => l.trim()).filter(Boolean);
  const stages: Stage[] = [];
  for (const line of logical) {
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`cannot parse Dockerfile line: ${line}`);
    const op = m[1]!.toUpperCase();
    if (op === 'FROM') stages.push({ name: /\s+AS\s+(\S+)$/i.exec(m[2]!)?.[1] ?? String(stages.length), instructions: [] });
    else stages.at(-1)!.instructions.push({ op, args: m[2]! });
  }
  return stages;
}

const exec = (args: string): string[] => {
  const v = JSON.parse(args) as unknown;
  if (!Array.isArray(v)) throw new Error(`not exec form: ${args}`);
  return v as string[];
};

function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of stage.instructions.filter((x) => x.op === 'ENV')) for (const [, k, v] of i.args.matchAll(/(\w+)=(\S+)/g)) env[k!] = v!;
  return env;
}

/** COPY [--from=s] [--chown=…] src… dest, with dest relative to the stage's WORKDIR (/app). */
function copies(stage: Stage): { from?: string; sources: string[]; dest: string }[] {
  return stage.instructions.filter((i) => i.op === 'COPY').map((i) => {
    const words = i.args.split(/\s+/);
    const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
    const paths = words.filter((w) => !w.startsWith('--'));
    return { ...(from ? { from } : {}), sources: paths.slice(0, -1), dest: paths.at(-1)! };
  });
}

const db = useTestDatabase();
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'walflow-image-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

describe('the Dockerfile', () => {
  const stages = parseDockerfile(fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));

  it('is what the image needs: multi-stage, non-root, exec-form entry on node, a healthcheck on /readyz', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', 'runtime']);
    const runtime = stages[1]!;
    const one = (op: string) => runtime.instructions.filter((i) => i.op === op).map((i) => i.args);
    expect(one('USER')).toEqual(['node']);
    expect(exec(one('ENTRYPOINT')[0]!)).toEqual(['node', 'bin/walflow.js']);
    expect(exec(one('CMD')[0]!)).toEqual(['run']);
    expect(one('HEALTHCHECK')[0]).toMatch(/CMD \["node", "-e", ".*\/readyz/);
    // Only the build stage installs anything; the runtime stage copies what the build pruned.
    expect(runtime.instructions.some((i) => i.op === 'RUN')).toBe(false);
    expect(stages[0]!.instructions.filter((i) => i.op === 'RUN').map((i) => i.args).join(' ')).toMatch(/npm ci .*&& npm run build && npm prune --omit=dev/);
  });

  it("builds and starts with its own commands: /readyz, its HEALTHCHECK, a run, SIGTERM → exit 0", async () => {
    const [build, runtime] = stages as [Stage, Stage];
    const buildDir = path.join(scratch, 'build');
    const runDir = path.join(scratch, 'runtime');
    fs.mkdirSync(buildDir);
    fs.mkdirSync(runDir);
    const workdir = (s: Stage) => s.instructions.find((i) => i.op === 'WORKDIR')!.args;
    expect(workdir(build)).toBe('/app');

    for (const c of copies(build)) {
      for (const src of c.sources) {
        const target = c.dest.endsWith('/') ? path.join(buildDir, c.dest, path.basename(src)) : path.join(buildDir, c.dest);
        fs.cpSync(path.join(ROOT, src), target, { recursive: true });
      }
    }
    const buildEnv = childEnv({ ...envOf(build), npm_config_update_notifier: 'false' });
    for (const run of build.instructions.filter((i) => i.op === 'RUN')) {
      const r = spawnSync('sh', ['-c', run.args], { cwd: buildDir, env: buildEnv, encoding: 'utf8', timeout: 480_000 });
      expect(r.status, `RUN ${run.args}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-4000)}`).toBe(0);
    }
    // The prune left no dev dependency behind.
    expect(fs.existsSync(path.join(buildDir, 'node_modules', 'vitest'))).toBe(false);

    for (const c of copies(runtime)) {
      expect(c.from).toBe('build');
      const src = c.sources[0]!.replace(/^\/app\//, '');
      fs.cpSync(path.join(buildDir, src), path.join(runDir, c.dest), { recursive: true, verbatimSymlinks: true });
    }
    // What compose mounts at /app/pipelines: a user's pipeline importing the package by name.
    fs.mkdirSync(path.join(runDir, 'pipelines'));
    fs.writeFileSync(path.join(runDir, 'pipelines', 'hello.ts'),
      `import { definePipeline } from 'walflow';\nexport default definePipeline({ name: 'image-hello', steps: [{ name: 'greet', run: (ctx) => ({ hello: (ctx.runInput as { who: string }).who }) }] });\n`);

    const port = await freePort();
    const env = childEnv({ ...envOf(runtime), DATABASE_URL: db.url, WALFLOW_METRICS_PORT: String(port) });
    const [cmd, ...args] = [...exec(runtime.instructions.find((i) => i.op === 'ENTRYPOINT')!.args), ...exec(runtime.instructions.find((i) => i.op === 'CMD')!.args)];
    expect(cmd).toBe('node');
    const child = spawn(process.execPath, args, { cwd: runDir, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor('/readyz 200', async () => {
        if (child.exitCode !== null) throw new Error(`walflow exited ${child.exitCode}: ${stderr}`);
        return (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200;
      }, 120_000, 200);

      const health = runtime.instructions.find((i) => i.op === 'HEALTHCHECK')!.args.replace(/^.*?CMD\s+/, '');
      const [hcmd, ...hargs] = exec(health);
      expect(hcmd).toBe('node');
      expect(spawnSync(process.execPath, hargs, { env, encoding: 'utf8' }).status).toBe(0);

      const id = (await db.pool.query(`SELECT walflow.start('image-hello', '{"who": "docker"}') AS id`)).rows[0].id as string;
      await waitFor('the run completed', async () => (await db.pool.query('SELECT walflow.status($1) AS s', [id])).rows[0].s === 'completed');
      expect((await db.pool.query('SELECT walflow.result($1) AS r', [id])).rows[0].r).toEqual({ hello: 'docker' });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited, stderr.slice(-3000)).toBe(0);
    // Unhealthy once it stops: the HEALTHCHECK command fails when nothing answers.
    const after = runtime.instructions.find((i) => i.op === 'HEALTHCHECK')!.args.replace(/^.*?CMD\s+/, '');
    expect(spawnSync(process.execPath, exec(after).slice(1), { env, encoding: 'utf8' }).status).toBe(1);
  }, 600_000);
});

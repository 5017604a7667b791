// Loads pipeline definitions from a directory: every .ts .mts .cts .js .mjs .cjs file's default export (a
// pipeline or an array of them) and any named exports that are pipelines. Which files, and how they
// are imported (TypeScript through tsx, CommonJS or ESM): ./import-module.ts.
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import type { Pipeline } from './define.js';
import { importModule, PIPELINE_FILE } from './import-module.js';

function isPipeline(v: unknown): v is Pipeline {
  return !!v && typeof v === 'object' && typeof (v as Pipeline).name === 'string' && Array.isArray((v as Pipeline).steps) && Array.isArray((v as Pipeline).stepNames);
}

export async function loadPipelines(dir: string, only?: string[]): Promise<Pipeline[]> {
  if (!fs.existsSync(dir)) throw new UserError(`pipelines directory ${dir} does not exist: create it, or pass --pipelines DIR`);
  const files = fs
    .readdirSync(dir)
    .filter((f) => PIPELINE_FILE.test(f) && !/\.d\.[mc]?ts$/.test(f) && !f.startsWith('_') && !/\.test\./.test(f))
    .sort();
  const found = new Map<string, { pipeline: Pipeline; file: string }>();
  for (const file of files) {
    let mod: Record<string, unknown>;
    try {
      mod = await importModule(path.join(dir, file));
    } catch (err) {
      if (err instanceof UserError) throw new UserError(`${file}: ${err.message}`);
      throw new UserError(`could not load ${path.join(dir, file)}: ${(err as Error).message}`);
    }
    const candidates = Object.values(mod).flatMap((v) => (Array.isArray(v) ? v : [v]));
    for (const p of candidates.filter(isPipeline)) {
      const prior = found.get(p.name);
      if (prior && prior.pipeline !== p) throw new UserError(`pipeline "${p.name}" is defined in both ${prior.file} and ${file}`);
      found.set(p.name, { pipeline: p, file });
    }
  }
  let pipelines = [...found.values()].map((f) => f.pipeline);
  if (only && only.length > 0) {
    const missing = only.filter((n) => !found.has(n));
    if (missing.length) throw new UserError(`no pipeline named ${missing.map((m) => `"${m}"`).join(', ')} in ${dir} (found: ${[...found.keys()].join(', ') || 'none'})`);
    pipelines = pipelines.filter((p) => only.includes(p.name));
  }
  return pipelines;
}

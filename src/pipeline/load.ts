// Loads pipeline definitions from a directory: every .ts .mts .cts .js .mjs .cjs file's default export
// (a pipeline or an array of them, possibly empty) and any named exports that are pipelines. A file
// without a default export, or whose default export is not a pipeline, is an error naming the file.
// How a file is imported (TypeScript through tsx, CommonJS or ESM, afresh on a reload): ./import-module.ts.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import type { Pipeline } from './define.js';
import { importModule, PIPELINE_FILE } from './import-module.js';

function isPipeline(v: unknown): v is Pipeline {
  return !!v && typeof v === 'object' && typeof (v as Pipeline).name === 'string' && Array.isArray((v as Pipeline).steps) && Array.isArray((v as Pipeline).stepNames);
}

export function pipelineFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) throw new UserError(`pipelines directory ${dir} does not exist: create it, or pass --pipelines DIR`);
  return fs
    .readdirSync(dir)
    .filter((f) => PIPELINE_FILE.test(f) && !/\.d\.[mc]?ts$/.test(f) && !f.startsWith('_') && !/\.test\./.test(f))
    .sort();
}

/** The pipelines of one file; throws a UserError naming the file. */
export async function loadPipelineFile(dir: string, file: string): Promise<Pipeline[]> {
  const full = path.join(dir, file);
  let mod: Record<string, unknown>;
  try {
    const revision = createHash('sha256').update(fs.readFileSync(full)).digest('hex').slice(0, 16);
    mod = await importModule(full, revision);
  } catch (err) {
    if (err instanceof UserError) throw new UserError(`${file}: ${err.message}`);
    throw new UserError(`could not load ${full}: ${(err as Error).message}`);
  }
  if (!('default' in mod) || mod.default === undefined) {
    throw new UserError(`${full} has no default export: end it with \`export default definePipeline({...})\` (or an array of pipelines)`);
  }
  const defaults = Array.isArray(mod.default) ? (mod.default as unknown[]) : [mod.default];
  const bad = defaults.findIndex((v) => !isPipeline(v));
  // An empty array is allowed: a file that defines its pipeline only under some condition.
  if (bad >= 0) {
    throw new UserError(`${full}: the default export is not a pipeline (export the result of definePipeline(), or an array of them)`);
  }
  // Named exports first (in name order, as before default exports were required), then the default.
  const candidates = [...Object.keys(mod).filter((k) => k !== 'default'), 'default'].flatMap((k) => (Array.isArray(mod[k]) ? (mod[k] as unknown[]) : [mod[k]]));
  return [...new Set(candidates.filter(isPipeline))];
}

/** Rejects two files defining the same pipeline name. */
export function mergeFiles(files: readonly { file: string; pipelines: readonly Pipeline[] }[]): Pipeline[] {
  const found = new Map<string, { pipeline: Pipeline; file: string }>();
  for (const { file, pipelines } of files) {
    for (const p of pipelines) {
      const prior = found.get(p.name);
      if (prior && prior.pipeline !== p) throw new UserError(`pipeline "${p.name}" is defined in both ${prior.file} and ${file}`);
      found.set(p.name, { pipeline: p, file });
    }
  }
  return [...found.values()].map((f) => f.pipeline);
}

/** Every file's pipelines; throws (a UserError naming the file) at the first that fails. */
export async function loadPipelineDir(dir: string): Promise<{ file: string; pipelines: Pipeline[] }[]> {
  const loaded: { file: string; pipelines: Pipeline[] }[] = [];
  for (const file of pipelineFiles(dir)) loaded.push({ file, pipelines: await loadPipelineFile(dir, file) });
  return loaded;
}

export async function loadPipelines(dir: string): Promise<Pipeline[]> {
  return mergeFiles(await loadPipelineDir(dir));
}

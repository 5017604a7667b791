// Imports one pipeline file from the user's project, whatever its kind: JavaScript (.js .mjs .cjs)
// as Node loads it, TypeScript (.ts .mts .cts) through tsx, in CommonJS and ESM projects alike.
//
// - tsx is registered on the first TypeScript file only: the published CLI is compiled JavaScript
//   and should not pay for the loader when there is nothing to compile (`walflow --help`).
// - Both of tsx's hooks: a .ts file in a project without "type": "module" is CommonJS to Node, and
//   its `import` statements need tsx's require() hook; with the ESM hook alone Node 20.19 fails with
//   "Cannot require() ES Module ... in a cycle".
// - .cts goes through require(): tsx's ESM hook cannot import it ("reading 'exports'").
// - A CommonJS pipeline's require('walflow') may get its own copy of walflow's modules (tsx compiles
//   the ESM it requires): harmless, the engine recognises a NonRetryableError by its `retryable`
//   flag, not by instanceof.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/** File names loadPipelines accepts. */
export const PIPELINE_FILE = /\.(ts|mts|cts|js|mjs|cjs)$/;
const TYPESCRIPT = /\.(ts|mts|cts)$/;

let tsxReady: Promise<void> | undefined;

function registerTsx(): Promise<void> {
  tsxReady ??= (async () => {
    const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
    esm.register();
    cjs.register();
  })();
  return tsxReady;
}

/**
 * The module namespace of `file` (an absolute path), its exports as an ES module would show them.
 * `revision` (the file's content hash) makes a live reload import an edited file afresh: ES modules
 * are cached by URL, so the revision goes into the URL's query, and every distinct revision stays in
 * memory until the process exits (ESM cannot unload a module); a .cts/.cjs file is dropped from the
 * require cache instead.
 */
export async function importModule(file: string, revision?: string): Promise<Record<string, unknown>> {
  if (TYPESCRIPT.test(file)) await registerTsx();
  let mod: Record<string, unknown>;
  if (/\.c[tj]s$/.test(file)) {
    const require = createRequire(import.meta.url);
    if (revision !== undefined) delete require.cache[require.resolve(file)];
    mod = { default: require(file) as unknown };
  } else {
    mod = (await import(pathToFileURL(file).href + (revision === undefined ? '' : `?rev=${revision}`))) as Record<string, unknown>;
  }
  // TypeScript compiled to CommonJS sets module.exports = { __esModule: true, default, ...named },
  // which import() hands back whole as `default`: its properties are the module's exports.
  const cjs = mod.default as { __esModule?: unknown } | undefined;
  return cjs && typeof cjs === 'object' && cjs.__esModule === true ? (cjs as Record<string, unknown>) : mod;
}

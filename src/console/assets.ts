// Every asset the console serves ships with the package: htmx and uPlot from their npm packages
// (dependencies of walflow), the console's own script and style from this directory. No CDN.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const own = (name: string) => fileURLToPath(new URL(`./assets/${name}`, import.meta.url));

const FILES: Record<string, string> = {
  'htmx.min.js': require.resolve('htmx.org/dist/htmx.min.js'),
  'uPlot.iife.min.js': require.resolve('uplot/dist/uPlot.iife.min.js'),
  'uPlot.min.css': require.resolve('uplot/dist/uPlot.min.css'),
  'console.js': own('console.js'),
  'console.css': own('console.css'),
};

export interface Asset { body: Buffer; type: string }

/** Reads every asset once (about 100 kB in all). */
export function loadAssets(): Map<string, Asset> {
  const out = new Map<string, Asset>();
  for (const [name, file] of Object.entries(FILES)) {
    out.set(name, { body: fs.readFileSync(file), type: name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8' });
  }
  return out;
}

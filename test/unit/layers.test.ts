// The layer table in docs/architecture.md is the rule for src/ imports: each file may import its own
// layer and the layers its row names, all of them above it. Reading the table from the doc keeps the
// doc true of the code: a new upward import fails here, and so does a doc row that lies.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Layer {
  name: string;
  /** Path prefixes (folders end with '/') under src/. */
  where: string[];
  imports: Set<string>;
}

function readLayerTable(): Layer[] {
  const doc = fs.readFileSync(path.join(ROOT, 'docs/architecture.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Layers'));
  const rows = section.split('\n').filter((l) => l.startsWith('|')).slice(2); // header, separator
  const layers: Layer[] = [];
  for (const row of rows) {
    const [name, where, imports] = row.split('|').slice(1, 4).map((c) => c.trim());
    if (!name || where === undefined || imports === undefined) break;
    layers.push({
      name,
      where: [...where.matchAll(/`(src\/[^`]*)`/g)].map((m) => m[1]!),
      imports: new Set(imports === '—' ? [] : imports.split(',').map((s) => s.trim())),
    });
  }
  return layers;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return sourceFiles(rel);
    return e.name.endsWith('.ts') ? [rel] : [];
  });
}

/** Relative imports of a file: static, `import type`, re-exports and dynamic `import()`. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const specs = [...text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]!);
  return specs.map((s) => path.posix.normalize(path.posix.join(path.posix.dirname(file), s)).replace(/\.js$/, '.ts'));
}

const layers = readLayerTable();

function layerOf(file: string): Layer | undefined {
  let best: { layer: Layer; length: number } | undefined;
  for (const layer of layers) {
    for (const prefix of layer.where) {
      const hit = prefix.endsWith('/') ? file.startsWith(prefix) : file === prefix;
      if (hit && (!best || prefix.length > best.length)) best = { layer, length: prefix.length };
    }
  }
  return best?.layer;
}

describe('layers (docs/architecture.md)', () => {
  it('the table lists each layer once and lets a layer import only layers above it', () => {
    expect(layers.length).toBeGreaterThan(5);
    layers.forEach((layer, i) => {
      const above = new Set(layers.slice(0, i).map((l) => l.name));
      expect([...layer.imports].filter((name) => !above.has(name)), `row "${layer.name}" names layers not above it`).toEqual([]);
    });
    expect(new Set(layers.map((l) => l.name)).size).toBe(layers.length);
  });

  it('every src/ file belongs to a layer and imports only what its row allows', () => {
    const violations: string[] = [];
    for (const file of sourceFiles('src')) {
      const from = layerOf(file);
      if (!from) {
        violations.push(`${file}: in no layer of the table`);
        continue;
      }
      for (const target of importsOf(file)) {
        const to = layerOf(target);
        if (!to) violations.push(`${file} imports ${target}, which is in no layer`);
        else if (to !== from && !from.imports.has(to.name)) violations.push(`${file} (${from.name}) imports ${target} (${to.name})`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('outside src/replication, replication is imported only through its front door (index.ts)', () => {
    const violations = sourceFiles('src')
      .filter((f) => !f.startsWith('src/replication/'))
      .flatMap((f) => importsOf(f).filter((t) => t.startsWith('src/replication/') && t !== 'src/replication/index.ts').map((t) => `${f} imports ${t}`));
    expect(violations).toEqual([]);
  });
});

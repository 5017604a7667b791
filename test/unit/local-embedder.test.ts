import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createLocalEmbedder,
  createLocalTokenizer,
  createPackageTokenizer,
  spawnLocalWorker,
  WorkerPool,
  type LocalTokenizer,
} from '../../src/steps/embedders/local-model.js';
import type { Embedder } from '../../src/steps/embedders/embedder.js';
import { mulberry32 as rng } from '../harness/random.js';

const MODEL_TIMEOUT = 60_000;
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const modelModule = new URL('../../src/steps/embedders/local-model.ts', import.meta.url).href;

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}


const WORDS =
  'the of and to in is was for on that with as by at from it his an were are which this be or has had not first one their its new after who they have her she two been other when there all during into school time may years more most only over city some world would where later up such used many can state about national out known university united then made'.split(
    ' ',
  );

/** Adds words until the text has exactly `n` model tokens. */
function textWithTokens(tokenizer: LocalTokenizer, n: number, seed: number): string {
  const random = rng(seed);
  let text = '';
  for (;;) {
    const word = WORDS[Math.floor(random() * WORDS.length)]!;
    const next = text === '' ? word : `${text} ${word}`;
    const count = tokenizer.countTokens(next);
    if (count === n) return next;
    if (count < n) text = next;
  }
}

describe('local tokenizer', () => {
  it('gives exactly the ids of the package tokenizer', async () => {
    const ours = await createLocalTokenizer();
    const pkg = await createPackageTokenizer();
    const fixed = [
      '',
      ' ',
      'hello world',
      '  two  spaces  ',
      'tab\there\nnewline\n\nblank line',
      'émoji 😀 test 👩‍👩‍👧 ok',
      'CJK 中文字符 mixed with English',
      'ｆｕｌｌｗｉｄｔｈ ﬁ ligature (NFKC)',
      'time 12:30 or 12:00 :) :-) http://example.com/a?b=c',
      '\u0000\u0001 control characters',
      'a'.repeat(300),
      'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(10),
    ];
    const alphabet = ['a', 'e', 'i', 'o', 'n', 's', 't', 'r', 'th', 'ing', ' ', ' ', '  ', '\n', '.', ',', ':', '0', '3', 'é', '😀', '中', '\u0301', 'Z'];
    const random = rng(42);
    const generated = Array.from({ length: 300 }, () => {
      let s = '';
      const len = Math.floor(random() * 120);
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(random() * alphabet.length)];
      return s;
    });
    for (const text of [...fixed, ...generated]) expect(ours.encode(text), JSON.stringify(text)).toEqual(pkg.encode(text));
  });

  it('counts long texts in linear time', async () => {
    const tokenizer = await createLocalTokenizer();
    const text = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod. '.repeat(14_000); // ~1 MB
    const started = performance.now();
    expect(tokenizer.countTokens(text)).toBeGreaterThan(200_000);
    // The package's own encode() would take hours here (32 kB already takes seconds).
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

describe('local embedder (real model, offline)', () => {
  let embedder: Embedder;
  beforeAll(async () => {
    embedder = await createLocalEmbedder();
  }, MODEL_TIMEOUT);
  afterAll(async () => {
    await embedder?.close();
  });

  it('describes the model', () => {
    expect(embedder.model).toBe('use-lite-512');
    expect(embedder.dimensions).toBe(512);
    expect(embedder.maxInputTokens).toBe(128);
  });

  it('returns one 512-dim unit vector per text, in order', async () => {
    const texts = ['The cat sat on the mat.', 'Stock markets fell sharply today.', 'A recipe for banana bread.'];
    const vectors = await embedder.embed(texts);
    expect(vectors).toHaveLength(3);
    for (const v of vectors) {
      expect(v).toBeInstanceOf(Float32Array);
      expect(v).toHaveLength(512);
      expect(Math.hypot(...v)).toBeCloseTo(1, 3);
    }
    const reversed = await embedder.embed([...texts].reverse());
    for (let i = 0; i < 3; i++) expect(maxDiff(vectors[i]!, reversed[2 - i]!)).toBeLessThan(1e-5);
  });

  it('keeps the order across worker batches (70 texts, batches of 16)', async () => {
    const texts = Array.from({ length: 70 }, (_, i) => `sentence number ${i} about ${WORDS[i % WORDS.length]}`);
    const all = await embedder.embed(texts);
    expect(all).toHaveLength(70);
    for (const i of [0, 63, 64, 69]) {
      const [alone] = await embedder.embed([texts[i]!]);
      expect(maxDiff(all[i]!, alone!)).toBeLessThan(1e-5);
    }
  });

  it('puts similar sentences closer than unrelated ones', async () => {
    const [a, b, c] = await embedder.embed([
      'The cat is sleeping on the sofa.',
      'A kitten naps on the couch.',
      'The central bank raised interest rates again.',
    ]);
    expect(cosine(a!, b!)).toBeGreaterThan(cosine(a!, c!) + 0.1);
    expect(cosine(a!, b!)).toBeGreaterThan(cosine(b!, c!) + 0.1);
  });

  it('counts tokens up to the model truncation boundary', async () => {
    const tokenizer = await createLocalTokenizer();
    const at128 = textWithTokens(tokenizer, 128, 1);
    const at127 = textWithTokens(tokenizer, 127, 2);
    expect(embedder.countTokens(at128)).toBe(128);
    const tail = ' elephants and giraffes';
    expect(embedder.countTokens(at128 + tail)).toBeGreaterThan(128);
    const [full, extended, partial, partialExtended] = await embedder.embed([at128, at128 + tail, at127, at127 + tail]);
    // Tokens past the 128th are not seen by the model...
    expect(maxDiff(full!, extended!)).toBeLessThan(1e-6);
    // ...while the 128th is.
    expect(maxDiff(partial!, partialExtended!)).toBeGreaterThan(1e-3);
  });

  it('cuts very long texts without changing their vector', async () => {
    const text = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(2_000); // 114 kB
    const [long, short] = await embedder.embed([text, text.slice(0, 3_000)]);
    expect(maxDiff(long!, short!)).toBeLessThan(1e-6);
  });

  it('rejects bad input clearly', async () => {
    await expect(embedder.embed([42 as unknown as string])).rejects.toThrow(/texts\[0\] is a number, expected a string/);
    await expect(embedder.embed(['ok', null as unknown as string])).rejects.toThrow(/texts\[1\] is null/);
    await expect(embedder.embed('text' as unknown as string[])).rejects.toThrow(/array of strings/);
    await expect(embedder.embed(['fine', ''])).rejects.toThrow(/texts\[1\] is empty/);
    expect(await embedder.embed([])).toEqual([]);
    await expect(embedder.embed(['x'], AbortSignal.abort(new Error('stop')))).rejects.toThrow('stop');
  });

  it('spreads work over two threads with the same results', async () => {
    const two = await createLocalEmbedder({ threads: 2 });
    try {
      const texts = Array.from({ length: 130 }, (_, i) => `item ${i}: ${WORDS.slice(i % 50, (i % 50) + 8).join(' ')}`);
      const [a, b] = await Promise.all([two.embed(texts), embedder.embed(texts)]);
      for (let i = 0; i < texts.length; i++) expect(maxDiff(a[i]!, b[i]!)).toBeLessThan(1e-5);
    } finally {
      await two.close();
    }
    await expect(two.embed(['after close'])).rejects.toThrow(/closed/);
  }, MODEL_TIMEOUT);

  it('reports an error raised inside the real worker instead of hanging', async () => {
    // The validation in embed() is bypassed: an empty text makes the graph itself throw.
    const pool = new WorkerPool(spawnLocalWorker, 1, 512);
    try {
      await pool.ready();
      await expect(pool.run([''])).rejects.toThrow(/local embedder: embedding 1 texts failed: .*sparseIndices/);
      expect(await pool.run(['still works'])).toHaveLength(1);
    } finally {
      await pool.close();
    }
  }, MODEL_TIMEOUT);
});

describe('worker pool failure handling (fake workers)', () => {
  // A stand-in worker speaking the same protocol; some texts make it misbehave.
  const FAKE = `
    const { parentPort } = require('node:worker_threads');
    // What the Emscripten glue of the WASM backend installs in the real worker.
    process.on('uncaughtException', (ex) => { throw ex; });
    process.on('unhandledRejection', (reason) => { throw reason; });
    parentPort.postMessage({ type: 'ready', backend: 'fake', loadMs: 1 });
    parentPort.on('message', (m) => {
      const t = m.texts[0];
      if (t === 'throw') throw new Error('kaboom');
      if (t === 'exit') process.exit(3);
      if (t === 'fail') return parentPort.postMessage({ type: 'error', id: m.id, message: 'bad things' });
      if (t === 'hang') return;
      if (t === 'reject') return void Promise.reject(new Error('unhandled'));
      const vectors = new Float32Array(m.texts.length * 4).fill(m.texts.length);
      parentPort.postMessage({ type: 'result', id: m.id, count: m.texts.length, vectors });
    });`;
  const fake = (): Worker => new Worker(FAKE, { eval: true });

  it('rejects every pending call when the worker crashes, then starts a new one', async () => {
    const pool = new WorkerPool(fake, 1, 4);
    await pool.ready();
    const hung = pool.run(['hang']);
    const crash = pool.run(['throw']);
    await expect(crash).rejects.toThrow(/the worker crashed: kaboom/);
    await expect(hung).rejects.toThrow(/the worker crashed: kaboom/);
    expect(await pool.run(['a', 'b'])).toEqual([new Float32Array(4).fill(2), new Float32Array(4).fill(2)]);
    await pool.close();
  });

  it('treats an unhandled rejection in the worker as a crash', async () => {
    const pool = new WorkerPool(fake, 1, 4);
    await pool.ready();
    await expect(pool.run(['reject'])).rejects.toThrow(/the worker crashed: unhandled/);
    expect(await pool.run(['after'])).toHaveLength(1);
    await pool.close();
  });

  it('rejects pending calls when the worker exits', async () => {
    const pool = new WorkerPool(fake, 1, 4);
    await pool.ready();
    await expect(pool.run(['exit'])).rejects.toThrow(/the worker exited \(code 3\)/);
    await pool.close();
  });

  it('passes an error reported by the worker to its call only', async () => {
    const pool = new WorkerPool(fake, 2, 4);
    await pool.ready();
    const [failed, ok] = await Promise.allSettled([pool.run(['fail']), pool.run(['fine'])]);
    expect(failed.status === 'rejected' && String(failed.reason)).toMatch(/local embedder: bad things/);
    expect(ok.status).toBe('fulfilled');
    await pool.close();
  });

  it('reports a model that fails to load', async () => {
    const broken = (): Worker =>
      new Worker(`require('node:worker_threads').parentPort.postMessage({ type: 'init-error', message: 'no weights' })`, { eval: true });
    const pool = new WorkerPool(broken, 1, 4);
    await expect(pool.ready()).rejects.toThrow(/could not load the model: no weights/);
    await pool.close();
  });

  it('aborts a call and closes with calls pending', async () => {
    const pool = new WorkerPool(fake, 1, 4);
    await pool.ready();
    const controller = new AbortController();
    const aborted = pool.run(['hang'], controller.signal);
    controller.abort(new Error('user abort'));
    await expect(aborted).rejects.toThrow('user abort');
    const pending = expect(pool.run(['hang'])).rejects.toThrow(/closed/);
    await pool.close();
    await pending;
  });
});

it('leaves the main thread free of the WASM glue\'s process listeners', async () => {
  const before = process.listenerCount('unhandledRejection') + process.listenerCount('uncaughtException');
  await createLocalTokenizer();
  expect(process.listenerCount('unhandledRejection') + process.listenerCount('uncaughtException')).toBe(before);
});

describe('process exit', () => {
  const run = promisify(execFile);
  const script = (close: boolean): string => `
    const { createLocalEmbedder } = await import(${JSON.stringify(modelModule)});
    const e = await createLocalEmbedder();
    const [v] = await e.embed(['hello']);
    console.log('dims', v.length);
    ${close ? 'await e.close();' : '/* no close(): an idle worker must not keep the process alive */'}`;

  it('exits after close() under node --import tsx', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(true)], { cwd: repoRoot, timeout: 30_000 });
    expect(stdout).toContain('dims 512');
  }, MODEL_TIMEOUT);

  it('exits without close() under the tsx register() API (as bin/walflow.js loads)', async () => {
    const boot = `const { register } = await import('tsx/esm/api'); register(); ${script(false)}`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', boot], { cwd: repoRoot, timeout: 30_000 });
    expect(stdout).toContain('dims 512');
  }, MODEL_TIMEOUT);
});

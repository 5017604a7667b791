// Chunk templates: a placeholder names any column PostgreSQL allows (non-ASCII letters, spaces,
// emoji, braces with escapes), and a malformed template is an error, never literal text.
import { describe, expect, it } from 'vitest';
import { chunkText } from '../../src/steps/chunk/splitter.js';
import { parseTemplate, placeholderFor, templateFields } from '../../src/steps/chunk/template.js';

const countTokens = (s: string): number => s.split(/\s+/).filter(Boolean).length;
const opts = { chunkSize: 50, chunkOverlap: 0 };

describe('chunk templates', () => {
  it('fills a placeholder naming a column with non-ASCII letters, spaces and an emoji', async () => {
    const [c] = await chunkText('the body', countTokens, { ...opts, template: '{Заголовок 📌}: {chunk}' }, { 'Заголовок 📌': 'Хлеб' });
    expect(c!.text).toBe('Хлеб: the body');
  });

  it('takes names exactly: spaces, case and punctuation are part of the name', () => {
    expect(templateFields('{ title }|{Title}|{"q"}|{a.b-c}|{chunk}')).toEqual([' title ', 'Title', '"q"', 'a.b-c']);
  });

  it('escapes: {{ and }} are literal braces; in a name a backslash escapes the next character', async () => {
    expect(parseTemplate('{{"k": {a\\{b\\}}}} {C:\\\\x} {chunk}')).toEqual([
      { text: '{"k": ' }, { field: 'a{b}' }, { text: '} ' }, { field: 'C:\\x' }, { text: ' ' }, { field: 'chunk' },
    ]);
    const [c] = await chunkText('body', countTokens, { ...opts, template: '{{{a\\{b\\}}}}: {chunk}' }, { 'a{b}': 'v' });
    expect(c!.text).toBe('{v}: body');
  });

  it('placeholderFor writes a name so that it parses back to itself', () => {
    for (const name of ['title', 'Заголовок 📌', 'a{b}', 'C:\\x', '}{', ' ']) {
      expect(parseTemplate(placeholderFor(name))).toEqual([{ field: name }]);
    }
  });

  it('refuses malformed templates, naming the position', () => {
    expect(() => parseTemplate('{title')).toThrow(/placeholder opened at character 1 .* is never closed/);
    expect(() => parseTemplate('a } b')).toThrow(/unmatched "}" at character 3/);
    expect(() => parseTemplate('{} {chunk}')).toThrow(/empty placeholder/);
    expect(() => parseTemplate('{a{b} {chunk}')).toThrow(/"\{" inside a placeholder at character 3/);
  });
});

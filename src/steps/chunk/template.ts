/**
 * Chunk templates such as `{title}: {chunk}`: literal text and `{name}` placeholders.
 *
 * A placeholder names a column exactly as PostgreSQL stores it, so any name a column can have
 * works: letters of any script, digits, spaces, emoji, punctuation (`{Заголовок 📌}`, `{My Title}`,
 * `{"quoted"}`). Nothing is trimmed or case-folded: `{ title }` names the column " title ".
 * Escaping:
 * - in literal text, `{{` stands for a literal `{` and `}}` for a literal `}` (JSON-like text
 *   `{"k": 1}` is written `{{"k": 1}}`);
 * - in a placeholder, the first `}` ends the name and a backslash takes the next character as it
 *   is: a column named `a{b}` is written `{a\{b\}}` (in a JS string literal '{a\\{b\\}}'), one
 *   named `C:\x` is written `{C:\\x}`.
 * A `{` that is never closed, a lone `}`, `{}`, or an unescaped `{` inside a placeholder is a
 * syntax error naming its position, so a typo fails when the pipeline loads instead of being left
 * as literal text in every chunk.
 *
 * `{chunk}` is the chunk text itself (a column named `chunk` cannot be used in a template).
 */

export type TemplatePart = { text: string } | { field: string };

export const CHUNK_PLACEHOLDER = 'chunk';

export class TemplateSyntaxError extends Error {
  override name = 'TemplateSyntaxError';
}

/** The template as literal parts and placeholders, in order; throws TemplateSyntaxError. */
export function parseTemplate(template: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let text = '';
  const flushText = (): void => {
    if (text) parts.push({ text });
    text = '';
  };
  const where = (i: number): string => `at character ${i + 1} of template ${JSON.stringify(template)}`;
  let i = 0;
  while (i < template.length) {
    const ch = template[i]!;
    if (ch === '}') {
      if (template[i + 1] !== '}') throw new TemplateSyntaxError(`unmatched "}" ${where(i)} (write "}}" for a literal "}")`);
      text += '}';
      i += 2;
      continue;
    }
    if (ch !== '{') {
      text += ch;
      i++;
      continue;
    }
    if (template[i + 1] === '{') {
      text += '{';
      i += 2;
      continue;
    }
    // A placeholder: up to the first unescaped "}"; a backslash takes the next character as is.
    const start = i;
    let name = '';
    i++;
    for (;;) {
      if (i >= template.length) throw new TemplateSyntaxError(`placeholder opened ${where(start)} is never closed (write "{{" for a literal "{")`);
      const c = template[i]!;
      if (c === '}') {
        i++;
        break;
      }
      if (c === '{') throw new TemplateSyntaxError(`"{" inside a placeholder ${where(i)} (write "\\{" for a "{" in a column name)`);
      if (c === '\\') {
        if (i + 1 >= template.length) throw new TemplateSyntaxError(`"\\" at the end ${where(i)}`);
        name += template[i + 1]!;
        i += 2;
        continue;
      }
      name += c;
      i++;
    }
    if (name === '') throw new TemplateSyntaxError(`empty placeholder "{}" ${where(start)}`);
    flushText();
    parts.push({ field: name });
  }
  flushText();
  return parts;
}

/** The column names a template reads (every placeholder but {chunk}), each once, in order. */
export function templateFields(template: string): string[] {
  const names = parseTemplate(template).flatMap((p) => ('field' in p && p.field !== CHUNK_PLACEHOLDER ? [p.field] : []));
  return [...new Set(names)];
}

/** How a column name is written as a placeholder: `{`, `}` and backslashes escaped with a backslash. */
export function placeholderFor(name: string): string {
  return `{${name.replace(/[{}\\]/g, (c) => `\\${c}`)}}`;
}

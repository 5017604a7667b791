// HTML that is escaped by construction: `html` is the only way pages build markup, and every value
// interpolated into it is escaped unless it is itself Html made by `html` (or the few helpers here).
// Row data is user data: markup, quotes, control and bidirectional-override characters must all
// render as inert, visible text.
import { redactSecrets } from '../errors.js';

export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/**
 * Text for an element or a quoted attribute. Bidi controls (U+202A–U+202E, U+2066–U+2069, U+200E/F,
 * U+061C) and other C0/C1 controls are shown as `⟨U+202E⟩` so that row data cannot reorder what the
 * operator reads around it; secrets registered with the process are replaced by `***`.
 */
export function escapeText(value: string): string {
  return redactSecrets(value)
    .replace(/[&<>"'`]/g, (c) => ENTITIES[c]!)
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
      (c) => `⟨U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}⟩`);
}

type Value = Html | string | number | boolean | null | undefined | Value[];

function render(v: Value): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  return escapeText(String(v));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** A value for a data-* attribute: JSON, escaped like any text (the client reads it with JSON.parse). */
export function dataJson(value: unknown): string {
  return JSON.stringify(value);
}

/** At most `max` characters of `text`, and whether some were cut. */
export function truncate(text: string, max: number): { text: string; cut: boolean } {
  return text.length > max ? { text: text.slice(0, max), cut: true } : { text, cut: false };
}

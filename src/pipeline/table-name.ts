// Table names as pipelines declare them ("documents", "app.documents", quoted parts) and as run
// inputs and pgoutput Relation messages spell them ("public.documents": unquoted, schema-qualified).

export interface TableName {
  schema: string;
  name: string;
}

/** "schema.table" as SourceRunInput.table and the Relation messages spell it (unquoted). */
export function qualified(t: TableName): string {
  return `${t.schema}.${t.name}`;
}

function unquote(part: string): string {
  const p = part.trim();
  if (p.startsWith('"') && p.endsWith('"') && p.length >= 2) return p.slice(1, -1).replace(/""/g, '"');
  return p.toLowerCase(); // PostgreSQL folds unquoted identifiers to lower case
}

/** Parses `table`, `schema.table` or quoted parts; a bare name means schema public. */
export function parseTableName(text: string): TableName {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    if (ch === '.' && !quoted) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  if (parts.length > 2 || parts.some((p) => p.trim() === '')) throw new Error(`"${text}" is not a table name (use table or schema.table)`);
  return parts.length === 2 ? { schema: unquote(parts[0]!), name: unquote(parts[1]!) } : { schema: 'public', name: unquote(parts[0]!) };
}

// Which source columns an embedding pipeline's chunk template reads, checked when the pipeline is
// defined (syntax, {chunk}, templateColumns) and at setup (every placeholder is a column), so that a
// placeholder never reaches the model as literal text and never fails runs one by one.
import { UserError } from '../../errors.js';
import { CHUNK_PLACEHOLDER, parseTemplate, placeholderFor, templateFields, TemplateSyntaxError } from '../chunk/template.js';

/** The columns the template reads (default: the ones its placeholders name); a UserError naming the pipeline for a bad template. */
export function resolveTemplateColumns(pipeline: string, template: string | undefined, declared: string[] | undefined): string[] {
  if (template === undefined) return declared ?? [];
  let fields: string[];
  try {
    const parts = parseTemplate(template);
    if (!parts.some((p) => 'field' in p && p.field === CHUNK_PLACEHOLDER)) throw new UserError(`pipeline "${pipeline}": template must contain {chunk}`);
    fields = templateFields(template);
  } catch (err) {
    if (err instanceof TemplateSyntaxError) throw new UserError(`pipeline "${pipeline}": template: ${err.message}`);
    throw err;
  }
  if (declared === undefined) return fields;
  const missing = fields.filter((f) => !declared.includes(f));
  if (missing.length) throw new UserError(`pipeline "${pipeline}": template placeholder(s) ${missing.map(placeholderFor).join(', ')} not in templateColumns (omit templateColumns to read every column the template names)`);
  return declared;
}

/** The table's columns for a message: quoted, so that spaces and case show. */
export function columnList(types: ReadonlyMap<string, unknown>): string {
  return [...types.keys()].map((c) => JSON.stringify(c)).join(', ');
}

/** At setup: every placeholder names a column of the source table (`types`: its columns). */
export function checkTemplateColumns(pipeline: string, template: string | undefined, table: string, types: ReadonlyMap<string, unknown>): void {
  if (template === undefined) return;
  for (const field of templateFields(template)) {
    if (!types.has(field)) {
      throw new UserError(`pipeline "${pipeline}": template placeholder ${placeholderFor(field)} names no column of ${table} (columns: ${columnList(types)}; column names are case- and space-sensitive)`);
    }
  }
}

// Test helper: everything schema walflow defines, as the server describes it (columns, defaults,
// constraints, indexes, functions with their settings and privileges, views), so that two databases
// reached by different paths can be compared for equality. Migration bookkeeping is left out.
import type pg from 'pg';

const QUERIES: Record<string, string> = {
  columns: `
    SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
           pg_get_expr(d.adbin, d.adrelid) AS default, a.attidentity, c.reloptions
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname = 'walflow' AND c.relkind IN ('r', 'v') AND a.attnum > 0 AND NOT a.attisdropped
      AND c.relname NOT IN ('schema_migrations', 'schema_definitions')
    ORDER BY 1, 2`,
  constraints: `
    SELECT c.relname, pg_get_constraintdef(k.oid) AS def
    FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'walflow' AND c.relname NOT IN ('schema_migrations', 'schema_definitions')
    ORDER BY 1, 2`,
  indexes: `
    SELECT indexname, indexdef FROM pg_indexes
    WHERE schemaname = 'walflow' AND tablename NOT IN ('schema_migrations', 'schema_definitions')
    ORDER BY 1`,
  functions: `
    SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args, pg_get_functiondef(p.oid) AS def,
           p.prosecdef, p.proconfig, p.provolatile, p.proacl::text AS acl
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'walflow'
    ORDER BY 1, 2`,
  views: `
    SELECT viewname, definition FROM pg_views WHERE schemaname = 'walflow' ORDER BY 1`,
  tablePrivileges: `
    SELECT c.relname, c.relacl::text AS acl
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'walflow' AND c.relname !~ '^schema_(migrations|definitions)'
    ORDER BY 1`,
};

export async function schemaFingerprint(client: pg.Client): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const [name, sql] of Object.entries(QUERIES)) out[name] = (await client.query(sql)).rows;
  return out;
}

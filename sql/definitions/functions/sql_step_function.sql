-- walflow.sql_step_function(pipeline, step, version): the function (schema walflow_steps, quoted)
-- that runs a SQL step of that version of a SQL-defined pipeline. Readable when it fits in an
-- identifier (63 bytes), else a hash of the same text: two steps never share a function.
CREATE OR REPLACE FUNCTION walflow.sql_step_function(pipeline text, step text, version integer) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT 'walflow_steps.' || quote_ident(CASE WHEN octet_length(n) <= 63 THEN n ELSE md5(n) || '/v' || version END)
  FROM (SELECT pipeline || '/' || step || '/v' || version AS n) x
$$;

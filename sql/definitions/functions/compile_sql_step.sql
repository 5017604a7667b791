-- walflow.compile_sql_step(statement): the PL/pgSQL body of a SQL step's function (see sql_step.sql).
-- Every :input… :steps… :prev… :run… placeholder outside quotes and comments becomes
-- ($1 #>> ARRAY[…]), the value at that path of the step's context as text; "::" casts, array slices
-- (a[1:n]) and other colons are left alone. A statement that returns rows (SELECT, WITH, VALUES,
-- TABLE, or RETURNING) gives them as JSON; any other gives its row count.
CREATE OR REPLACE FUNCTION walflow.compile_sql_step(statement text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s text := regexp_replace(coalesce(statement, ''), '[\s;]+$', '');
  out text := '';
  i integer := 1;
  n integer := length(s);
  c text;
  m text[];
  quote text;
  segs text[];
  seg text;
  path text;
BEGIN
  IF btrim(s) = '' THEN
    RAISE EXCEPTION 'walflow: a SQL step needs a statement' USING ERRCODE = '22023';
  END IF;
  WHILE i <= n LOOP
    c := substr(s, i, 1);
    IF c IN ('''', '"') THEN
      -- A quoted literal or identifier, copied whole (a doubled quote inside it stays inside).
      quote := substring(s FROM i);
      m := regexp_match(quote, CASE c WHEN '''' THEN '^''(?:[^'']|'''')*(?:''|$)' ELSE '^"(?:[^"]|"")*(?:"|$)' END);
      out := out || m[1];
      i := i + length(m[1]);
      CONTINUE;
    ELSIF c = '-' AND substr(s, i, 2) = '--' THEN
      m := regexp_match(substring(s FROM i), '^--[^\n]*');
      out := out || m[1];
      i := i + length(m[1]);
      CONTINUE;
    ELSIF c = ':' AND substr(s, i, 2) <> '::' AND (i = 1 OR substr(s, i - 1, 1) <> ':') THEN
      m := regexp_match(substring(s FROM i), '^:(input|steps|prev|run)((?:\.(?:[A-Za-z0-9_]+|"(?:[^"]|"")+"))*)');
      IF m IS NOT NULL THEN
        segs := ARRAY[m[1]];
        FOREACH seg IN ARRAY coalesce((SELECT array_agg(x[1] ORDER BY o) FROM regexp_matches(m[2], '\.([A-Za-z0-9_]+|"(?:[^"]|"")+")', 'g') WITH ORDINALITY AS r(x, o)), '{}') LOOP
          segs := segs || CASE WHEN left(seg, 1) = '"' THEN replace(substr(seg, 2, length(seg) - 2), '""', '"') ELSE seg END;
        END LOOP;
        SELECT string_agg(quote_literal(x), ', ') INTO path FROM unnest(segs) AS x;
        out := out || '($1 #>> ARRAY[' || path || ']::text[])';
        i := i + length(m[1]) + length(m[2]) + 1;
        CONTINUE;
      END IF;
    END IF;
    out := out || c;
    i := i + 1;
  END LOOP;
  IF out ~* '^\s*(select|with|values|table)\M' OR out ~* '\mreturning\M' THEN
    RETURN format(E'DECLARE r jsonb; n bigint;\nBEGIN\n  WITH t AS (\n%s\n  ) SELECT coalesce(jsonb_agg(to_jsonb(t)), ''[]''), count(*) INTO r, n FROM t;\n  RETURN jsonb_build_object(''rows'', r, ''count'', n);\nEND', out);
  END IF;
  RETURN format(E'DECLARE n bigint;\nBEGIN\n%s;\n  GET DIAGNOSTICS n = ROW_COUNT;\n  RETURN jsonb_build_object(''rows'', ''[]''::jsonb, ''count'', n);\nEND', out);
END;
$$;

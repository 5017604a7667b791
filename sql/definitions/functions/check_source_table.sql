-- walflow.check_source_table(pipeline, table_name): for a pipeline defined from SQL, the source table
-- as schema.name, checked at call time: it exists, has a primary key (or replica identity index),
-- and the calling role may SELECT it (a pipeline's runs carry its rows: a role must not read through
-- a pipeline what it cannot read itself).
CREATE OR REPLACE FUNCTION walflow.check_source_table(pipeline text, table_name text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_oid oid;
  v_name text;
BEGIN
  BEGIN
    v_oid := pg_catalog.to_regclass(table_name);
  EXCEPTION WHEN others THEN
    RAISE EXCEPTION 'walflow: pipeline "%": % is not a table name (%)', pipeline, table_name, SQLERRM USING ERRCODE = '42P01';
  END;
  IF v_oid IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE oid = v_oid AND relkind IN ('r', 'p')) THEN
    RAISE EXCEPTION 'walflow: pipeline "%": source table % does not exist (create it first, or qualify it with its schema)', pipeline, table_name
      USING ERRCODE = '42P01';
  END IF;
  SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) INTO v_name FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = v_oid;
  IF (SELECT relnamespace::regnamespace::text FROM pg_catalog.pg_class WHERE oid = v_oid) IN ('walflow', 'walflow_steps') THEN
    RAISE EXCEPTION 'walflow: pipeline "%": % is walflow''s own table and cannot be a source', pipeline, v_name USING ERRCODE = '22023';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index WHERE indrelid = v_oid AND (indisprimary OR indisreplident)) THEN
    RAISE EXCEPTION 'walflow: pipeline "%": % has no primary key (walflow keys runs by it): ALTER TABLE % ADD PRIMARY KEY (...)', pipeline, v_name, v_name
      USING ERRCODE = '22023';
  END IF;
  IF NOT pg_catalog.has_table_privilege(v_oid, 'SELECT') THEN
    RAISE EXCEPTION 'walflow: pipeline "%": role "%" may not SELECT from %, so it may not define a pipeline on it', pipeline, current_user, v_name
      USING ERRCODE = '42501';
  END IF;
  RETURN v_name;
END;
$$;

-- walflow.caller_starter(): the caller as a starter of runs: NULL when it is walflow's own principal, else its role.
CREATE OR REPLACE FUNCTION walflow.caller_starter() RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN pg_catalog.has_table_privilege(walflow.caller_role(), 'walflow.runs', 'INSERT') THEN NULL
              ELSE walflow.caller_role() END
$$;

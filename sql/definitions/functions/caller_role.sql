-- walflow.caller_role(): the role the caller acts as: the role of its SET ROLE, else its login role
-- (inside a SECURITY DEFINER function current_user is walflow's owner; see
-- sql/migrations/0008_run_starters.sql and docs/guarantees.md "Authorization"). 'none' is what PostgreSQL reports without SET ROLE, and
-- cannot be a role's name.
CREATE OR REPLACE FUNCTION walflow.caller_role() RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE pg_catalog.current_setting('role') WHEN 'none' THEN session_user::text ELSE pg_catalog.current_setting('role') END
$$;

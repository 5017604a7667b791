-- walflow.status(run): the run's status.
CREATE OR REPLACE FUNCTION walflow.status(run uuid) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT status FROM walflow.runs WHERE id = run
$$;

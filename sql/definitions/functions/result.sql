-- walflow.result(run): the output of the last step of a completed run; NULL while it is not completed.
CREATE OR REPLACE FUNCTION walflow.result(run uuid) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT (SELECT s.output FROM walflow.steps s WHERE s.run_id = r.id ORDER BY s.step_index DESC LIMIT 1)
  FROM walflow.runs r
  WHERE r.id = run AND r.status = 'completed'
$$;
